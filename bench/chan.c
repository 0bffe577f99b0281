/*
 * chan.c - buffered channel throughput (capacity 1024, 8-byte elements): p producers
 * and p consumers share one channel; ns per message.
 *
 * Usage: chan [chan_1p1c|chan_2x2] [N]
 *   chan_1p1c  1 producer, 1 consumer, default workers
 *   chan_2x2   2 producers, 2 consumers, 2 workers
 * Go twin: bench/go/micro chan_1p1c|chan_2x2. Each producer sends N/p values; each
 * consumer receives N/p and keeps its own sum, checked at the end.
 */
#include "bench_util.h"

#include <strand.h>

static long g_per;
static strand_chan *g_ch;

static void *producer(void *arg)
{
    (void)arg;
    for (int64_t j = 0; j < g_per; j++)
        BENCH_CHECK(strand_chan_send(g_ch, &j, STRAND_FOREVER));
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    int64_t v, sum = 0;
    for (long j = 0; j < g_per; j++) {
        BENCH_CHECK(strand_chan_recv(g_ch, &v, STRAND_FOREVER));
        sum += v;
    }
    return (void *)(intptr_t)sum;
}

static void *bench_main(void *arg)
{
    int p = (int)(intptr_t)arg;
    int64_t ids[4];
    BENCH_CHECK(strand_chan_create(&g_ch, sizeof(int64_t), 1024));
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < p; i++) {
        ids[2 * i] = strand_spawn(producer, NULL);
        ids[2 * i + 1] = strand_spawn(consumer, NULL);
        BENCH_CHECK(ids[2 * i]);
        BENCH_CHECK(ids[2 * i + 1]);
    }
    intptr_t total = 0;
    for (int i = 0; i < 2 * p; i++) {
        void *r = NULL;
        BENCH_CHECK(strand_join(ids[i], &r));
        total += (intptr_t)r;
    }
    int64_t el = bench_now_ns() - t0;
    strand_chan_release(g_ch);
    if (total != (intptr_t)p * g_per * (g_per - 1) / 2) {
        fprintf(stderr, "chan: wrong sum\n");
        exit(1);
    }
    return (void *)(intptr_t)el;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "chan_1p1c";
    int p = strcmp(name, "chan_2x2") == 0 ? 2 : 1;
    if (p == 1 && strcmp(name, "chan_1p1c") != 0) {
        fprintf(stderr, "usage: %s [chan_1p1c|chan_2x2] [N]\n", argv[0]);
        return 2;
    }
    long n = bench_arg(argc, argv, 2, 4000000);
    g_per = n / p;
    strand_config cfg = { .workers = p == 2 ? 2 : 0 };
    BENCH_CHECK(strand_init(&cfg));
    void *res = NULL;
    BENCH_CHECK(strand_run(bench_main, (void *)(intptr_t)p, &res));
    printf("%s: %ld messages through a 1024-slot channel\n", name, g_per * p);
    bench_result(name, (double)(intptr_t)res / (double)(g_per * p), "ns/msg");
    return 0;
}
