/*
 * demo.c - the showcase run by `make demo`: what strand does, in plain words and measured
 * figures, on this machine.
 *
 *   1. a million strands spawned and joined (time per strand)
 *   2. a ring of 10,000 strands yielding to each other (time per switch)
 *   3. a million strands alive at the same time (memory per strand)
 *   4. skynet: a tree of a million strands summing their numbers, on every worker
 *   5. a ping-pong over an unbuffered channel (time per round trip)
 *   (later parts add their demonstrations at the marked spot in main)
 *
 * Everything runs inside one first strand (strand_run); nothing here is shared between
 * threads except the atomics noted. Pass a smaller count as argv[1] (e.g. 100000) to run
 * a quicker version.
 */
#include "strand.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long million = 1000000;

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    long v = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static int failed;

static void expect(int ok, const char *what)
{
    if (!ok) {
        printf("   !! unexpected: %s\n", what);
        failed = 1;
    }
}

/* ---------------------------------------------------------------- 1. spawn and join */

static void *identity(void *arg)
{
    return arg;
}

static void spawn_join(void)
{
    enum { BATCH = 1000 };
    int64_t ids[BATCH];
    long bad = 0;
    int64_t t0 = strand_now();
    for (long done = 0; done < million; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            ids[i] = strand_spawn(identity, (void *)(intptr_t)i);
        for (int i = 0; i < BATCH; i++) {
            void *r = NULL;
            bad += strand_join(ids[i], &r) != 0 || (intptr_t)r != i;
        }
    }
    int64_t ns = strand_now() - t0;
    printf("1. Spawned and joined %ld strands (in batches of %d) in %.3f s: %.0f ns per "
           "strand.\n", million, BATCH, secs(ns), (double)ns / (double)million);
    expect(bad == 0, "a join failed or returned the wrong result");
}

/* ---------------------------------------------------------------- 2. yield ring */

enum { RING = 10000, LAPS = 100 };
static atomic_long ring_yields;

static void *ring_member(void *arg)
{
    (void)arg;
    for (int i = 0; i < LAPS; i++)
        strand_yield();
    atomic_fetch_add(&ring_yields, LAPS);
    return NULL;
}

static void yield_ring(void)
{
    static int64_t ids[RING];
    struct strand_stats a, b;
    strand_stats(&a);
    int64_t t0 = strand_now();
    for (int i = 0; i < RING; i++)
        ids[i] = strand_spawn(ring_member, NULL);
    for (int i = 0; i < RING; i++)
        strand_join(ids[i], NULL);
    int64_t ns = strand_now() - t0;
    strand_stats(&b);
    long yields = atomic_load(&ring_yields);
    uint64_t sw = b.switches - a.switches;
    printf("2. %d strands each yielded %d times (%ld yields, %llu context switches) in "
           "%.3f s: %.0f ns per switch of wall time, on %d workers.\n",
           RING, LAPS, yields, (unsigned long long)sw, secs(ns), (double)ns / (double)sw,
           b.workers);
    expect(yields == (long)RING * LAPS, "yields lost");
}

/* ---------------------------------------------------------------- 3. a million alive */

static strand_wg gate;
static atomic_long arrived;

static void *wait_at_gate(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    strand_wg_wait(&gate, STRAND_FOREVER);
    return NULL;
}

static void million_alive(void)
{
    int64_t *ids = malloc((size_t)million * sizeof *ids);
    if (!ids)
        return;
    strand_wg_init(&gate);
    strand_wg_add(&gate, 1);
    long rss0 = rss_kib();
    int64_t t0 = strand_now();
    long n = 0;
    for (; n < million; n++) {
        ids[n] = strand_spawn(wait_at_gate, NULL);
        if (ids[n] <= 0) {
            printf("   spawn #%ld failed with %lld\n", n, (long long)ids[n]);
            break;
        }
    }
    while (atomic_load(&arrived) < n)
        strand_sleep(1000000);
    int64_t ns = strand_now() - t0;
    long rss1 = rss_kib();
    struct strand_stats st;
    strand_stats(&st);
    printf("3. %ld strands alive at the same time, all waiting on one wait group, after "
           "%.2f s: RSS grew by %ld MiB, %.0f bytes per strand (a 128 KiB stack each, of which "
           "only the touched page is memory). %llu stacks have a guard page, %llu a canary "
           "(past the kernel's mapping limit); peak %llu strands.\n",
           n, secs(ns), (rss1 - rss0) / 1024, (double)(rss1 - rss0) * 1024.0 / (double)n,
           (unsigned long long)st.stacks_guarded, (unsigned long long)st.stacks_canary,
           (unsigned long long)st.peak);
    t0 = strand_now();
    strand_wg_done(&gate);
    long bad = 0;
    for (long i = 0; i < n; i++)
        bad += strand_join(ids[i], NULL) != 0;
    printf("   Released and joined them all in %.2f s.\n", secs(strand_now() - t0));
    expect(n == million && bad == 0, "not every strand was spawned and joined");
    free(ids);
}

/* ---------------------------------------------------------------- 4. skynet */

typedef struct sky {
    long num, size;
} sky;

static void *skynet(void *arg)
{
    sky *me = arg;
    if (me->size == 1)
        return (void *)(intptr_t)me->num;
    sky kids[10];
    int64_t ids[10];
    long part = me->size / 10;
    for (int i = 0; i < 10; i++) {
        kids[i] = (sky){me->num + i * part, part};
        ids[i] = strand_spawn(skynet, &kids[i]);
    }
    intptr_t sum = 0;
    for (int i = 0; i < 10; i++) {
        void *r = NULL;
        strand_join(ids[i], &r);
        sum += (intptr_t)r;
    }
    return (void *)sum;
}

static void skynet_demo(void)
{
    long size = 1;
    while (size * 10 <= million)
        size *= 10;
    sky root = {0, size};
    struct strand_stats st;
    strand_stats(&st);
    int64_t t0 = strand_now();
    intptr_t sum = (intptr_t)skynet(&root);
    int64_t ns = strand_now() - t0;
    long long want = (long long)size * (size - 1) / 2;
    printf("4. Skynet: a tree of %ld leaf strands (%ld in all), each level spawning 10 and "
           "summing their results, on %d workers: sum %lld in %.3f s.\n",
           size, size + size / 9, st.workers, (long long)sum, secs(ns));
    expect(sum == want, "skynet sum is wrong");
}

/* ---------------------------------------------------------------- 5. channel ping-pong */

enum { ROUNDS = 200000 };

static void *ponger(void *arg)
{
    strand_chan **ch = arg;
    long v;
    while (strand_chan_recv(ch[0], &v, STRAND_FOREVER) == 0) {
        v++;
        if (strand_chan_send(ch[1], &v, STRAND_FOREVER) != 0)
            break;
    }
    return NULL;
}

static void chan_pingpong(void)
{
    strand_chan *ch[2];
    if (strand_chan_create(&ch[0], sizeof(long), 0) != 0 ||
        strand_chan_create(&ch[1], sizeof(long), 0) != 0) {
        printf("5. (channels are not available in this build)\n");
        return;
    }
    int64_t p = strand_spawn(ponger, ch);
    long v = 0;
    int64_t t0 = strand_now();
    for (int i = 0; i < ROUNDS; i++) {
        strand_chan_send(ch[0], &v, STRAND_FOREVER);
        strand_chan_recv(ch[1], &v, STRAND_FOREVER);
    }
    int64_t ns = strand_now() - t0;
    strand_chan_close(ch[0]);
    strand_join(p, NULL);
    strand_chan_release(ch[0]);
    strand_chan_release(ch[1]);
    printf("5. Ping-pong over an unbuffered channel: %d round trips in %.3f s, %.0f ns per "
           "round trip (two hand-offs).\n", ROUNDS, secs(ns), (double)ns / ROUNDS);
    expect(v == ROUNDS, "the counter did not make every round trip");
}

static void *demo_main(void *arg)
{
    (void)arg;
    spawn_join();
    yield_ring();
    million_alive();
    skynet_demo();
    chan_pingpong();
    /* ---- later parts: add their demonstrations here (mailboxes, I/O, ...) ---- */
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        char *end;
        long n = strtol(argv[1], &end, 10);
        if (*end || n < 1000) {
            fprintf(stderr, "usage: %s [count >= 1000, default 1000000]\n", argv[0]);
            return 2;
        }
        million = n;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("strand demo: green threads for C. Every figure below was measured just now.\n\n");
    int rc = strand_run(demo_main, NULL, NULL);
    if (rc != 0) {
        printf("strand_run failed: %d\n", rc);
        return 1;
    }
    printf("\n%s\n", failed ? "Something above was wrong (marked !!)." : "All done.");
    return failed;
}
