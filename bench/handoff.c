/*
 * handoff.c - hand-off (src/sched_monitor.c), two figures:
 *
 *   handoff      latency from a worker blocking to its queue running elsewhere: on one
 *                worker, strand A queues strand B (run-next of that worker), notes the
 *                time and calls plain usleep(30 ms) (no strand call); B notes when it
 *                starts. Median over N rounds, in µs. Bounded below by STRAND_HANDOFF_MS
 *                (10 ms by default) plus up to one monitor period (a quarter of it).
 *                Go twin: bench/go/micro handoff (GOMAXPROCS=1, a raw nanosleep system
 *                call, which sysmon retakes the P from).
 *   maybe_yield  the cost of strand_maybe_yield() when nothing is requested: one strand
 *                calls it N times in a loop (the slice is on, as by default: the rare
 *                requests that do come are part of the figure); ns/call. No Go twin (Go
 *                preempts by signal and by the stack check in every function prologue).
 *
 * Usage: handoff [handoff|maybe_yield] [N]
 */
#include "bench_util.h"

#include <strand.h>
#include <unistd.h>

static int64_t t_block, t_ran;

static void *b_body(void *arg)
{
    (void)arg;
    t_ran = bench_now_ns();
    return NULL;
}

static void *a_body(void *arg)
{
    int64_t *b = arg;
    *b = strand_spawn(b_body, NULL); /* on this worker, run-next */
    t_block = bench_now_ns();
    usleep(30000);
    return NULL;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static void *handoff_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    BENCH_CHECK(lat ? 0 : -1);
    for (long i = 0; i < n; i++) {
        int64_t b = 0;
        int64_t a = strand_spawn(a_body, &b);
        BENCH_CHECK(a);
        BENCH_CHECK(strand_join(a, NULL));
        BENCH_CHECK(strand_join(b, NULL));
        lat[i] = t_ran - t_block;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp64);
    int64_t med = lat[n / 2];
    printf("handoff: %ld rounds, min %.1f us, median %.1f us, max %.1f us\n", n,
           (double)lat[0] / 1e3, (double)med / 1e3, (double)lat[n - 1] / 1e3);
    free(lat);
    return (void *)(intptr_t)med;
}

static void *maybe_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        strand_maybe_yield();
    return (void *)(intptr_t)(bench_now_ns() - t0);
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "handoff";
    int maybe = strcmp(name, "maybe_yield") == 0;
    if (!maybe && strcmp(name, "handoff") != 0) {
        fprintf(stderr, "usage: %s [handoff|maybe_yield] [N]\n", argv[0]);
        return 2;
    }
    long n = bench_arg(argc, argv, 2, maybe ? 200000000 : 21);
    strand_config cfg = { .workers = 1 };
    BENCH_CHECK(strand_init(&cfg));
    void *res = NULL;
    BENCH_CHECK(strand_run(maybe ? maybe_main : handoff_main, (void *)(intptr_t)n, &res));
    if (maybe)
        bench_result(name, (double)(intptr_t)res / (double)n, "ns/call");
    else
        bench_result(name, (double)(intptr_t)res / 1e3, "us");
    return 0;
}
