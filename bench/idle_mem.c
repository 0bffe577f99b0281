/*
 * idle_mem.c - memory per idle strand: N strands alive at once, each parked on a wait
 * group; VmRSS growth divided by N, in bytes per strand.
 *
 * Usage: idle_mem [idle_mem] [N]. Go twin: bench/go/micro idle_mem (goroutines blocked
 * on a channel receive). Strands are detached, so no id table is needed and nothing
 * but the runtime's own memory grows between the two RSS readings.
 */
#include "bench_util.h"

#include <strand.h>

static long g_n;
static strand_wg g_started, g_release, g_finished;

static void *idler(void *arg)
{
    (void)arg;
    strand_wg_done(&g_started);
    strand_wg_wait(&g_release, STRAND_FOREVER);
    strand_wg_done(&g_finished);
    return NULL;
}

static void *bench_main(void *arg)
{
    (void)arg;
    strand_attr attr = { .detached = 1 };
    BENCH_CHECK(strand_wg_init(&g_started));
    BENCH_CHECK(strand_wg_init(&g_release));
    BENCH_CHECK(strand_wg_init(&g_finished));
    BENCH_CHECK(strand_wg_add(&g_started, g_n));
    BENCH_CHECK(strand_wg_add(&g_release, 1));
    BENCH_CHECK(strand_wg_add(&g_finished, g_n));

    int64_t before = bench_rss_bytes();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++)
        BENCH_CHECK(strand_spawn_attr(idler, NULL, &attr));
    BENCH_CHECK(strand_wg_wait(&g_started, STRAND_FOREVER));
    int64_t after = bench_rss_bytes();
    int64_t el = bench_now_ns() - t0;

    struct strand_stats st;
    if (strand_stats(&st) == 0)
        printf("idle_mem: active %llu, stacks guarded %llu, canary %llu, stack space %llu MiB\n",
               (unsigned long long)st.active, (unsigned long long)st.stacks_guarded,
               (unsigned long long)st.stacks_canary, (unsigned long long)(st.stack_bytes >> 20));
    printf("idle_mem: %ld strands parked in %.0f ms, RSS %lld -> %lld MiB\n", g_n, el / 1e6,
           (long long)(before >> 20), (long long)(after >> 20));

    BENCH_CHECK(strand_wg_done(&g_release));
    BENCH_CHECK(strand_wg_wait(&g_finished, STRAND_FOREVER));
    return (void *)(intptr_t)(after - before);
}

int main(int argc, char **argv)
{
    g_n = bench_arg(argc, argv, 2, 1000000);
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, NULL, &res));
    bench_result("idle_mem", (double)(intptr_t)res / (double)g_n, "bytes/strand");
    return 0;
}
