/*
 * spawn.c - cost of a strand's whole life: spawn + run + exit + join, N trivial strands
 * in batches of 1000 (spawn a batch, join each), on all workers; ns per strand.
 *
 * Usage: spawn [spawn] [N]. Go twin: bench/go/micro spawn (goroutine + WaitGroup).
 */
#include "bench_util.h"

#include <strand.h>

#define BATCH 1000

static long g_n;

static void *trivial(void *arg)
{
    return arg;
}

static void *bench_main(void *arg)
{
    (void)arg;
    int64_t ids[BATCH];
    intptr_t sum = 0;
    int64_t t0 = bench_now_ns();
    for (long done = 0; done < g_n; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            ids[i] = strand_spawn(trivial, (void *)(intptr_t)1);
            BENCH_CHECK(ids[i]);
        }
        for (int i = 0; i < BATCH; i++) {
            void *r = NULL;
            BENCH_CHECK(strand_join(ids[i], &r));
            sum += (intptr_t)r;
        }
    }
    int64_t el = bench_now_ns() - t0;
    if (sum != (g_n + BATCH - 1) / BATCH * BATCH) {
        fprintf(stderr, "spawn: lost results (%ld)\n", (long)sum);
        exit(1);
    }
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    g_n = bench_arg(argc, argv, 2, 1000000);
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, NULL, &res));
    long total = (g_n + BATCH - 1) / BATCH * BATCH;
    printf("spawn: %ld strands spawned and joined in batches of %d\n", total, BATCH);
    bench_result("spawn", (double)(intptr_t)res / (double)total, "ns/strand");
    return 0;
}
