/*
 * skynet.c - the skynet benchmark: a 10-ary tree of strands with N leaves (1,000,000
 * by default, 1,111,111 strands in all); leaf i returns i, every inner node joins its
 * ten children and returns the sum through strand_join's result; ms for the whole tree.
 *
 * Usage: skynet [skynet|skynet_1w] [N]   (skynet: all workers; skynet_1w: one worker)
 * Go twin: bench/go/micro skynet|skynet_1w (the classic version with channels).
 * A node's (num, size) pair is packed into its argument, so no memory is allocated
 * per strand besides the strand itself.
 */
#include "bench_util.h"

#include <strand.h>

#define DIV 10

static void *node(void *arg)
{
    uintptr_t a = (uintptr_t)arg;
    intptr_t num = (intptr_t)(a >> 32), size = (intptr_t)(a & 0xffffffffu);
    if (size == 1)
        return (void *)num;
    intptr_t sub = size / DIV, sum = 0;
    int64_t kids[DIV];
    for (int i = 0; i < DIV; i++) {
        uintptr_t ka = ((uintptr_t)(num + i * sub) << 32) | (uintptr_t)sub;
        kids[i] = strand_spawn(node, (void *)ka);
        BENCH_CHECK(kids[i]);
    }
    for (int i = 0; i < DIV; i++) {
        void *r = NULL;
        BENCH_CHECK(strand_join(kids[i], &r));
        sum += (intptr_t)r;
    }
    return (void *)sum;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "skynet";
    int one = strcmp(name, "skynet_1w") == 0;
    if (!one && strcmp(name, "skynet") != 0) {
        fprintf(stderr, "usage: %s [skynet|skynet_1w] [N]\n", argv[0]);
        return 2;
    }
    long n = bench_arg(argc, argv, 2, 1000000);
    strand_config cfg = { .workers = one ? 1 : 0 };
    BENCH_CHECK(strand_init(&cfg));
    void *res = NULL;
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(strand_run(node, (void *)(uintptr_t)n, &res));
    int64_t el = bench_now_ns() - t0;
    intptr_t want = (intptr_t)n * (n - 1) / 2;
    if ((intptr_t)res != want) {
        fprintf(stderr, "skynet: wrong sum %ld (want %ld)\n", (long)(intptr_t)res, (long)want);
        return 1;
    }
    printf("skynet: %ld leaves, sum %ld\n", n, (long)want);
    bench_result(name, el / 1e6, "ms");
    return 0;
}
