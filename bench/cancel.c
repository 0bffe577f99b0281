/*
 * cancel.c - the cost of ending strands on purpose:
 *
 *   cancel_latency  a strand parked in strand_recv() is cancelled; ns from strand_cancel()
 *                   to the target running again (its recv returned -ECANCELED), the
 *                   median of N rounds. Each round spawns a fresh target and waits until
 *                   it is parked.
 *   monitor_rtt     spawn a strand, monitor it, it fails (strand_fail), receive the DOWN
 *                   notice: ns per round trip (mean of N).
 *
 * Usage: cancel {cancel_latency|monitor_rtt} [N]. Go twin: bench/go/micro cancel_latency
 * (a goroutine blocked in a select on ctx.Done() and its inbox, context.CancelFunc) and
 * monitor_rtt (a goroutine that panics, recovers in a deferred call and reports on a
 * channel, which is what a Go program does to learn of a death).
 */
#include "bench_util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strand.h>

static long g_n;
static const char *g_name;

typedef struct target {
    atomic_int  parked;  /* set just before the recv */
    int64_t     woke_ns; /* when recv returned */
    int         rc;
} target;

static void *parked_target(void *arg)
{
    target *t = arg;
    char b[8];
    atomic_store_explicit(&t->parked, 1, memory_order_release);
    t->rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER);
    t->woke_ns = bench_now_ns();
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void *latency_main(void *arg)
{
    (void)arg;
    int64_t *lat = malloc((size_t)g_n * sizeof *lat);
    for (long i = 0; i < g_n; i++) {
        target t = { 0 };
        int64_t id = strand_spawn(parked_target, &t);
        BENCH_CHECK(id);
        while (!atomic_load_explicit(&t.parked, memory_order_acquire))
            strand_yield();
        strand_yield(); /* let it reach the park */
        int64_t t0 = bench_now_ns();
        BENCH_CHECK(strand_cancel(id));
        BENCH_CHECK(strand_join(id, NULL));
        if (t.rc != -ECANCELED) {
            fprintf(stderr, "cancel_latency: recv returned %d\n", t.rc);
            exit(1);
        }
        lat[i] = t.woke_ns - t0;
    }
    qsort(lat, (size_t)g_n, sizeof *lat, cmp64);
    int64_t med = lat[g_n / 2];
    free(lat);
    return (void *)(intptr_t)med;
}

static void *failing(void *arg)
{
    strand_fail((int)(intptr_t)arg);
}

static void *monitor_main(void *arg)
{
    (void)arg;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++) {
        int64_t id = strand_spawn_attr(failing, (void *)(intptr_t)7,
                                       &(strand_attr){ .detached = 1 });
        BENCH_CHECK(id);
        int64_t ref = strand_monitor(id);
        BENCH_CHECK(ref);
        strand_notice n;
        BENCH_CHECK(strand_recv(&n, sizeof n, NULL, STRAND_FOREVER));
        if (n.ref != ref || (n.reason != STRAND_EXIT_FAILED && n.reason != STRAND_EXIT_NOPROC)) {
            fprintf(stderr, "monitor_rtt: a wrong notice\n");
            exit(1);
        }
    }
    return (void *)(intptr_t)(bench_now_ns() - t0);
}

int main(int argc, char **argv)
{
    g_name = argc > 1 ? argv[1] : "cancel_latency";
    bool lat = strcmp(g_name, "cancel_latency") == 0;
    if (!lat && strcmp(g_name, "monitor_rtt") != 0) {
        fprintf(stderr, "usage: cancel {cancel_latency|monitor_rtt} [N]\n");
        return 2;
    }
    g_n = bench_arg(argc, argv, 2, lat ? 100000 : 500000);
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(lat ? latency_main : monitor_main, NULL, &res));
    if (lat) {
        printf("cancel_latency: median of %ld rounds\n", g_n);
        bench_result("cancel_latency", (double)(intptr_t)res, "ns");
    } else {
        printf("monitor_rtt: %ld round trips\n", g_n);
        bench_result("monitor_rtt", (double)(intptr_t)res / (double)g_n, "ns/rtt");
    }
    return 0;
}
