/*
 * mailbox_rtt.c - mailbox round trip: main strand_send()s an 8-byte value to a partner,
 * which answers value+1 to the sender id strand_recv() reported; ns per round trip.
 *
 * Usage: mailbox_rtt [mailbox_rtt] [N]. Go twin: bench/go/micro mailbox_rtt (buffered
 * channels as inboxes). A negative value tells the partner to stop.
 */
#include "bench_util.h"

#include <strand.h>

static long g_n;

static void *partner(void *arg)
{
    (void)arg;
    for (;;) {
        int64_t v, from = 0;
        ssize_t r = strand_recv(&v, sizeof v, &from, STRAND_FOREVER);
        BENCH_CHECK(r);
        if (v < 0)
            return NULL;
        v++;
        BENCH_CHECK(strand_send(from, &v, sizeof v));
    }
}

static void *bench_main(void *arg)
{
    (void)arg;
    int64_t id = strand_spawn(partner, NULL);
    BENCH_CHECK(id);
    int64_t v = 0, from = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++) {
        BENCH_CHECK(strand_send(id, &v, sizeof v));
        BENCH_CHECK(strand_recv(&v, sizeof v, &from, STRAND_FOREVER));
    }
    int64_t el = bench_now_ns() - t0;
    int64_t stop = -1;
    BENCH_CHECK(strand_send(id, &stop, sizeof stop));
    BENCH_CHECK(strand_join(id, NULL));
    if (v != g_n || from != id) {
        fprintf(stderr, "mailbox_rtt: lost or misaddressed message\n");
        exit(1);
    }
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    g_n = bench_arg(argc, argv, 2, 500000);
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, NULL, &res));
    printf("mailbox_rtt: %ld round trips\n", g_n);
    bench_result("mailbox_rtt", (double)(intptr_t)res / (double)g_n, "ns/rtt");
    return 0;
}
