/*
 * ring.c - 10,000 strands in a ring, each receiving on its own unbuffered channel and
 * forwarding to the next; a token makes LAPS laps; ns per hop.
 *
 * Usage: ring [ring] [LAPS]. Go twin: bench/go/micro ring.
 * The token counts down the hops left; at 0 the strand holding it sends -1 round the
 * ring once, every strand forwards it and exits, and the starter exits when it comes
 * back. That stop lap is timed and counted as hops too (the Go twin does the same).
 */
#include "bench_util.h"

#include <strand.h>

#define SIZE 10000

static strand_chan *g_chans[SIZE];

static void *member(void *arg)
{
    intptr_t i = (intptr_t)arg;
    strand_chan *in = g_chans[i], *out = g_chans[(i + 1) % SIZE];
    int64_t v;
    for (;;) {
        BENCH_CHECK(strand_chan_recv(in, &v, STRAND_FOREVER));
        int64_t next = v <= 0 ? -1 : v - 1;
        BENCH_CHECK(strand_chan_send(out, &next, STRAND_FOREVER));
        if (v < 0)
            return NULL;
        if (v == 0) {
            BENCH_CHECK(strand_chan_recv(in, &v, STRAND_FOREVER)); /* the -1 coming home */
            return NULL;
        }
    }
}

static void *bench_main(void *arg)
{
    long laps = (long)(intptr_t)arg;
    static int64_t ids[SIZE];
    for (int i = 0; i < SIZE; i++)
        BENCH_CHECK(strand_chan_create(&g_chans[i], sizeof(int64_t), 0));
    for (int i = 0; i < SIZE; i++) {
        ids[i] = strand_spawn(member, (void *)(intptr_t)i);
        BENCH_CHECK(ids[i]);
    }
    int64_t hops = (int64_t)laps * SIZE;
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(strand_chan_send(g_chans[0], &hops, STRAND_FOREVER));
    for (int i = 0; i < SIZE; i++)
        BENCH_CHECK(strand_join(ids[i], NULL));
    int64_t el = bench_now_ns() - t0;
    for (int i = 0; i < SIZE; i++)
        strand_chan_release(g_chans[i]);
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    long laps = bench_arg(argc, argv, 2, 100);
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, (void *)(intptr_t)laps, &res));
    double hops = (double)laps * SIZE + 1 + SIZE; /* injection + laps + stop lap */
    printf("ring: %d strands, %ld laps\n", SIZE, laps);
    bench_result("ring", (double)(intptr_t)res / hops, "ns/hop");
    return 0;
}
