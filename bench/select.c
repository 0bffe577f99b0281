/*
 * select.c - strand_select costs: a 2-case select on ready channels, and a fan-in of 8
 * senders to one receiver through an 8-case select.
 *
 * Usage: select [select2|select_fanin8] [N]
 *   select2        two 1-slot buffered channels, each holding a value; the loop selects
 *                  a receive on both (both ready) and puts the value back on the channel
 *                  it came from (a non-blocking send): ns per select (the refill included)
 *   select_fanin8  8 strands each send N/8 values on their own unbuffered channel; one
 *                  strand takes them all with an 8-case select: ns per message, default
 *                  workers
 * Go twin: bench/go/micro select2|select_fanin8 (the same loops with Go's select).
 */
#include "bench_util.h"

#include <strand.h>

#include <stdbool.h>

#define FANIN 8

static long g_n;
static strand_chan *g_ch[FANIN];

static void *select2_main(void *arg)
{
    (void)arg;
    int64_t v = 1;
    for (int i = 0; i < 2; i++) {
        BENCH_CHECK(strand_chan_create(&g_ch[i], sizeof(int64_t), 1));
        BENCH_CHECK(strand_chan_send(g_ch[i], &v, 0));
    }
    int64_t got[2] = { 0, 0 }, hits[2] = { 0, 0 };
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++) {
        strand_select_case c[2] = {
            { g_ch[0], STRAND_SELECT_RECV, &got[0], 0 },
            { g_ch[1], STRAND_SELECT_RECV, &got[1], 0 },
        };
        int k = strand_select(c, 2, 0);
        BENCH_CHECK(k);
        hits[k]++;
        BENCH_CHECK(strand_chan_send(g_ch[k], &got[k], 0));
    }
    int64_t el = bench_now_ns() - t0;
    if (hits[0] == 0 || hits[1] == 0) {
        fprintf(stderr, "select2: one case never chosen\n");
        exit(1);
    }
    for (int i = 0; i < 2; i++)
        strand_chan_release(g_ch[i]);
    return (void *)(intptr_t)el;
}

static void *fanin_sender(void *arg)
{
    strand_chan *ch = arg;
    for (int64_t j = 1; j <= g_n / FANIN; j++)
        BENCH_CHECK(strand_chan_send(ch, &j, STRAND_FOREVER));
    return NULL;
}

static void *fanin_main(void *arg)
{
    (void)arg;
    int64_t ids[FANIN], v[FANIN];
    strand_select_case c[FANIN];
    for (int i = 0; i < FANIN; i++)
        BENCH_CHECK(strand_chan_create(&g_ch[i], sizeof(int64_t), 0));
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < FANIN; i++) {
        ids[i] = strand_spawn(fanin_sender, g_ch[i]);
        BENCH_CHECK(ids[i]);
    }
    long per = g_n / FANIN, total = per * FANIN;
    int64_t sum = 0;
    for (long i = 0; i < total; i++) {
        for (int k = 0; k < FANIN; k++)
            c[k] = (strand_select_case){ g_ch[k], STRAND_SELECT_RECV, &v[k], 0 };
        int k = strand_select(c, FANIN, STRAND_FOREVER);
        BENCH_CHECK(k);
        sum += v[k];
    }
    int64_t el = bench_now_ns() - t0;
    for (int i = 0; i < FANIN; i++) {
        BENCH_CHECK(strand_join(ids[i], NULL));
        strand_chan_release(g_ch[i]);
    }
    if (sum != (int64_t)FANIN * per * (per + 1) / 2) {
        fprintf(stderr, "select_fanin8: wrong sum\n");
        exit(1);
    }
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "select2";
    bool fanin = strcmp(name, "select_fanin8") == 0;
    if (!fanin && strcmp(name, "select2") != 0) {
        fprintf(stderr, "usage: %s [select2|select_fanin8] [N]\n", argv[0]);
        return 2;
    }
    g_n = bench_arg(argc, argv, 2, fanin ? 2000000 : 4000000);
    g_n -= g_n % FANIN;
    BENCH_CHECK(strand_init(NULL));
    void *res = NULL;
    BENCH_CHECK(strand_run(fanin ? fanin_main : select2_main, NULL, &res));
    printf("%s: %ld %s\n", name, g_n, fanin ? "messages from 8 senders" : "selects");
    bench_result(name, (double)(intptr_t)res / (double)g_n, fanin ? "ns/msg" : "ns/select");
    return 0;
}
