/*
 * timer_churn.c - timer load: N sleeps of pseudo-random length in [0, 100) µs spread
 * over 10,000 strands (N/10,000 each); total ms from first spawn to last join.
 *
 * Usage: timer_churn [timer_churn] [N]. Go twin: bench/go/micro timer_churn, which uses
 * the same xorshift sequence per strand, so both sides sleep the same total.
 */
#include "bench_util.h"

#include <strand.h>

#define STRANDS 10000

static long g_per;

static void *sleeper(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull | 1;
    for (long j = 0; j < g_per; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        BENCH_CHECK(strand_sleep((int64_t)(x % 100000)));
    }
    return NULL;
}

static void *bench_main(void *arg)
{
    (void)arg;
    static int64_t ids[STRANDS];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < STRANDS; i++) {
        ids[i] = strand_spawn(sleeper, (void *)(uintptr_t)(i + 1));
        BENCH_CHECK(ids[i]);
    }
    for (int i = 0; i < STRANDS; i++)
        BENCH_CHECK(strand_join(ids[i], NULL));
    return (void *)(intptr_t)(bench_now_ns() - t0);
}

int main(int argc, char **argv)
{
    long n = bench_arg(argc, argv, 2, 1000000);
    g_per = n / STRANDS;
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, NULL, &res));
    printf("timer_churn: %ld sleeps over %d strands\n", g_per * STRANDS, STRANDS);
    bench_result("timer_churn", (double)(intptr_t)res / 1e6, "ms");
    return 0;
}
