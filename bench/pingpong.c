/*
 * pingpong.c - unbuffered channel round trip between two strands: main sends on
 * `ping`, the partner answers value+1 on `pong`; ns per round trip, default workers.
 *
 * Usage: pingpong [pingpong] [N]. Go twin: bench/go/micro pingpong.
 * The partner owns nothing; both channels belong to main, which releases them after
 * the partner has been joined.
 */
#include "bench_util.h"

#include <strand.h>

static long g_n;
static strand_chan *g_ping, *g_pong;

static void *partner(void *arg)
{
    (void)arg;
    int64_t v;
    while (strand_chan_recv(g_ping, &v, STRAND_FOREVER) == 0) {
        v++;
        BENCH_CHECK(strand_chan_send(g_pong, &v, STRAND_FOREVER));
    }
    return NULL; /* -EPIPE: main closed ping */
}

static void *bench_main(void *arg)
{
    (void)arg;
    BENCH_CHECK(strand_chan_create(&g_ping, sizeof(int64_t), 0));
    BENCH_CHECK(strand_chan_create(&g_pong, sizeof(int64_t), 0));
    int64_t id = strand_spawn(partner, NULL);
    BENCH_CHECK(id);
    int64_t v = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++) {
        BENCH_CHECK(strand_chan_send(g_ping, &v, STRAND_FOREVER));
        BENCH_CHECK(strand_chan_recv(g_pong, &v, STRAND_FOREVER));
    }
    int64_t el = bench_now_ns() - t0;
    strand_chan_close(g_ping);
    BENCH_CHECK(strand_join(id, NULL));
    strand_chan_release(g_ping);
    strand_chan_release(g_pong);
    if (v != g_n) {
        fprintf(stderr, "pingpong: lost a message\n");
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
    printf("pingpong: %ld round trips\n", g_n);
    bench_result("pingpong", (double)(intptr_t)res / (double)g_n, "ns/rtt");
    return 0;
}
