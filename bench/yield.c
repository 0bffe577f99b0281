/*
 * yield.c - cost of strand_yield(): k strands each yield N times; ns per switch.
 *
 * Usage: yield [yield|yield_busy2] [N]
 *   yield        1 worker, 2 strands: every yield is one switch to the other strand.
 *   yield_busy2  2 workers, 4 strands: throughput of yields with both workers busy.
 * Go twin: bench/go/micro yield|yield_busy2 (GOMAXPROCS 1 / 2, runtime.Gosched).
 * The timed strand only spawns and joins; it is parked while the yielders run.
 */
#include "bench_util.h"

#include <strand.h>

static long g_n;

static void *yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < g_n; i++)
        strand_yield();
    return NULL;
}

static void *bench_main(void *arg)
{
    int k = (int)(intptr_t)arg;
    int64_t ids[8];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < k; i++) {
        ids[i] = strand_spawn(yielder, NULL);
        BENCH_CHECK(ids[i]);
    }
    for (int i = 0; i < k; i++)
        BENCH_CHECK(strand_join(ids[i], NULL));
    int64_t el = bench_now_ns() - t0;
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "yield";
    int busy2 = strcmp(name, "yield_busy2") == 0;
    if (!busy2 && strcmp(name, "yield") != 0) {
        fprintf(stderr, "usage: %s [yield|yield_busy2] [N]\n", argv[0]);
        return 2;
    }
    g_n = bench_arg(argc, argv, 2, busy2 ? 1000000 : 2000000);
    int k = busy2 ? 4 : 2;
    strand_config cfg = { .workers = busy2 ? 2 : 1 };
    BENCH_CHECK(strand_init(&cfg));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, (void *)(intptr_t)k, &res));
    double ns = (double)(intptr_t)res / ((double)k * (double)g_n);
    printf("%s: %d strands x %ld yields on %d worker(s)\n", name, k, g_n, cfg.workers);
    bench_result(name, ns, "ns/switch");
    return 0;
}
