/*
 * spawn_row.c - spawning in bulk, two variants:
 *   spawn_row   N trivial strands spawned in a row from one strand, then all joined in
 *               spawn order; ns per strand (spawn + run + exit + join, no batching).
 *   first_park  N fresh strands, each run until its first park (a wait on a wait group):
 *               time from the first spawn until all N are parked, ns per strand. Every
 *               strand is alive at the end, so each needs a stack of its own.
 *
 * Usage: spawn_row <spawn_row|first_park> [N] (defaults 1,000,000 and 100,000). Go twins:
 * bench/go/micro spawn_row (goroutines, then a WaitGroup) and first_park (goroutines blocked
 * on a channel receive).
 */
#include "bench_util.h"

#include <stdbool.h>
#include <strand.h>
#include <string.h>

static long g_n;
static strand_wg g_started, g_release;

static void *trivial(void *arg)
{
    return arg;
}

static void *row_main(void *arg)
{
    (void)arg;
    int64_t *ids = malloc((size_t)g_n * sizeof *ids);
    if (!ids)
        exit(1);
    intptr_t sum = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++) {
        ids[i] = strand_spawn(trivial, (void *)(intptr_t)1);
        BENCH_CHECK(ids[i]);
    }
    for (long i = 0; i < g_n; i++) {
        void *r = NULL;
        BENCH_CHECK(strand_join(ids[i], &r));
        sum += (intptr_t)r;
    }
    int64_t el = bench_now_ns() - t0;
    free(ids);
    if (sum != g_n) {
        fprintf(stderr, "spawn_row: lost results (%ld)\n", (long)sum);
        exit(1);
    }
    return (void *)(intptr_t)el;
}

static void *parker(void *arg)
{
    (void)arg;
    strand_wg_done(&g_started);
    strand_wg_wait(&g_release, STRAND_FOREVER);
    return NULL;
}

static void *park_main(void *arg)
{
    (void)arg;
    strand_attr attr = { .detached = 1 };
    BENCH_CHECK(strand_wg_init(&g_started));
    BENCH_CHECK(strand_wg_init(&g_release));
    BENCH_CHECK(strand_wg_add(&g_started, g_n));
    BENCH_CHECK(strand_wg_add(&g_release, 1));
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++)
        BENCH_CHECK(strand_spawn_attr(parker, NULL, &attr));
    BENCH_CHECK(strand_wg_wait(&g_started, STRAND_FOREVER));
    int64_t el = bench_now_ns() - t0;
    BENCH_CHECK(strand_wg_done(&g_release)); /* strand_run returns once they all ended */
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "spawn_row";
    bool row = strcmp(mode, "spawn_row") == 0;
    if (!row && strcmp(mode, "first_park") != 0) {
        fprintf(stderr, "usage: spawn_row <spawn_row|first_park> [N]\n");
        return 2;
    }
    g_n = bench_arg(argc, argv, 2, row ? 1000000 : 100000);
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(row ? row_main : park_main, NULL, &res));
    printf("%s: %ld strands\n", mode, g_n);
    bench_result(mode, (double)(intptr_t)res / (double)g_n, "ns/strand");
    return 0;
}
