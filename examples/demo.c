/*
 * demo.c - the showcase run by `make demo`: what strand does, in plain words and figures
 * measured just now on this machine.
 *
 *   1. a million strands started and waited for (time per strand)
 *   2. a ring of 10,000 strands taking turns (time per switch)
 *   3. a million strands alive at the same time (memory per strand)
 *   4. skynet: a tree of a million strands adding up their numbers, on every worker
 *   5. a ping-pong over an unbuffered channel (time per round trip)
 *   (later parts add their demonstrations at the marked spot in demo_main)
 *
 * Memory: part 3 keeps every strand alive at once, about 5 KiB each (the one stack page a
 * parked strand touches, plus its bookkeeping and page tables): 1,000,000 strands need some
 * 4-5 GiB. Before it starts, the demo reads what this machine (or its cgroup) can still give
 * (MemAvailable in /proc/meminfo, memory.max in /sys/fs/cgroup) and, when that is short,
 * runs fewer strands in parts 3 and 4 and says so. Parts 1, 2 and 5 keep only a few
 * thousand strands alive and always run in full.
 *
 * Everything runs inside one first strand (strand_run); nothing here is shared between
 * threads except the atomics noted. `demo COUNT` (at least 1000) runs a quicker version.
 */
#include "strand.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long million = 1000000; /* parts 1 and 4 (skynet's leaves), from argv[1] */
static long alive_n;           /* part 3, `million` capped by the memory available */
static long sky_leaves;        /* part 4: a power of ten, capped by the memory available */

/* What part 3 needs per strand, and skynet per leaf (its tree lives only partly at once;
 * measured: ~420 MiB at a million leaves). A fifth of the memory is left for the rest. */
enum { ALIVE_BYTES = 5 * 1024, SKY_BYTES = 512 };
#define MEM_SHARE 0.8

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* n with thousands separators ("1,000,000"); eight rotating buffers, so up to eight
 * calls may appear in one printf. Only the first strand prints. */
static const char *num(long long n)
{
    static char bufs[8][32];
    static int next;
    char *out = bufs[next++ % 8], digits[24];
    int len = snprintf(digits, sizeof digits, "%lld", n < 0 ? -n : n), o = 0;
    if (n < 0)
        out[o++] = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return out;
}

/* Prints one paragraph, word-wrapped to WIDTH columns; lines after the first are indented
 * by `indent` spaces. The demo's sentences are longer than a terminal is wide. NBSP joins a
 * figure to its unit ("0.25" NBSP "s"), so a line never ends between the two. */
enum { WIDTH = 88 };
#define NBSP "\x1f"

static void say(int indent, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int indent, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const char *p = text;
    int col = (int)strspn(p, " "), first = 1;
    printf("%*s", col, "");
    while (*p) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == 0)
            break;
        if (!first && col + 1 + (int)w > WIDTH) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (!first) {
            putchar(' ');
            col++;
        }
        for (size_t i = 0; i < w; i++)
            putchar(p[i] == NBSP[0] ? ' ' : p[i]);
        col += (int)w;
        p += w;
        first = 0;
    }
    putchar('\n');
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

/* The first number in a one-number file, or -1 ("max" and missing files included). */
static long long read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long v = -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

/* Bytes this process can still use: MemAvailable, lowered to the cgroup v2 limit's
 * headroom when that is smaller; DEMO_MEMORY_MIB=n pretends there are n MiB (to see the
 * scaled-down demo on a big machine). -1 when none of these can be read. */
static long long mem_available(void)
{
    const char *fake = getenv("DEMO_MEMORY_MIB");
    if (fake && *fake) {
        char *end;
        long long mib = strtoll(fake, &end, 10);
        if (*end == '\0' && mib >= 0)
            return mib * 1024 * 1024;
    }
    long long avail = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        long long kib;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1) {
                avail = kib * 1024;
                break;
            }
        fclose(f);
    }
    long long max = read_number("/sys/fs/cgroup/memory.max");
    long long cur = read_number("/sys/fs/cgroup/memory.current");
    if (max > 0 && cur >= 0 && (avail < 0 || max - cur < avail))
        avail = max > cur ? max - cur : 0;
    return avail;
}

/* Round down to two significant digits (188,743 -> 180,000): a count that reads as chosen. */
static long round_nice(long n)
{
    long p = 1;
    while (p * 100 <= n)
        p *= 10;
    return n / p * p;
}

/* Sizes parts 3 and 4 to the memory there is, and says so when it had to shrink them. */
static void size_to_memory(void)
{
    alive_n = million;
    sky_leaves = 1;
    while (sky_leaves * 10 <= million)
        sky_leaves *= 10;
    long long avail = mem_available();
    if (avail < 0) {
        printf("(Could not read the memory available; running the full sizes.)\n\n");
        return;
    }
    double budget = (double)avail * MEM_SHARE;
    double gib = (double)avail / (1024.0 * 1024.0 * 1024.0);
    if ((double)alive_n * ALIVE_BYTES > budget) {
        long fit = round_nice((long)(budget / ALIVE_BYTES));
        alive_n = fit < 1000 ? 1000 : fit;
        say(0, "This machine has %.1f" NBSP "GiB available: part 3 runs %s strands instead of %s "
               "(it needs about 5" NBSP "KiB per strand).", gib, num(alive_n), num(million));
    }
    long sky0 = sky_leaves;
    while (sky_leaves > 1000 && (double)sky_leaves * SKY_BYTES > budget)
        sky_leaves /= 10;
    if (sky_leaves != sky0)
        say(0, "This machine has %.1f" NBSP "GiB available: part 4 runs %s leaf strands instead of "
               "%s.", gib, num(sky_leaves), num(sky0));
    if (alive_n != million || sky_leaves != sky0)
        printf("\n");
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
    say(3, "1. Starting a strand is cheap.");
    say(3, "   %s strands were started and waited for, %s at a time, in %.2f" NBSP "s: "
           "%.0f" NBSP "ns each.", num(million), num(BATCH), secs(ns),
           (double)ns / (double)million);
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
    say(3, "2. Switching from one strand to another is cheap.");
    say(3, "   %s strands took turns on %d worker threads, %d turns each: %s switches in "
           "%.2f" NBSP "s, %.0f" NBSP "ns per switch.",
           num(RING), b.workers, LAPS, num((long long)sw), secs(ns),
           (double)ns / (double)sw);
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
    int64_t *ids = malloc((size_t)alive_n * sizeof *ids);
    if (!ids) {
        expect(0, "no memory for the list of strands");
        return;
    }
    strand_wg_init(&gate);
    strand_wg_add(&gate, 1);
    long rss0 = rss_kib();
    int64_t t0 = strand_now();
    long n = 0;
    for (; n < alive_n; n++) {
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
    t0 = strand_now();
    strand_wg_done(&gate);
    long bad = 0;
    for (long i = 0; i < n; i++)
        bad += strand_join(ids[i], NULL) != 0;
    int64_t release_ns = strand_now() - t0;
    say(3, "3. A waiting strand costs little memory.");
    say(3, "   %s strands were alive at once, all waiting on one signal: memory grew by "
           "%s" NBSP "MiB, %s" NBSP "bytes per strand (each has a 128" NBSP "KiB stack, but "
           "only the page it touched is real memory). Starting them took %.2f" NBSP "s; "
           "waking and finishing them all, %.2f" NBSP "s.",
           num(n), num((rss1 - rss0) / 1024),
           num((long long)((double)(rss1 - rss0) * 1024.0 / (double)(n ? n : 1))), secs(ns),
           secs(release_ns));
    expect(n == alive_n && bad == 0, "not every strand was spawned and joined");
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
    long size = sky_leaves;
    sky root = {0, size};
    struct strand_stats st;
    strand_stats(&st);
    int64_t t0 = strand_now();
    intptr_t sum = (intptr_t)skynet(&root);
    int64_t ns = strand_now() - t0;
    long long want = (long long)size * (size - 1) / 2;
    say(3, "4. Work spreads over every CPU.");
    say(3, "   Skynet: a tree of %s strands, each starting 10 children and adding up their "
           "answers, summed 0 to %s (%s, %s) in %.2f" NBSP "s on %d worker threads.",
           num(size + size / 9), num(size - 1), num((long long)sum),
           sum == want ? "correct" : "WRONG", secs(ns), st.workers);
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
    say(3, "5. Channels hand values from strand to strand quickly.");
    say(3, "   Two strands passed a counter back and forth %s times over a channel, each "
           "waiting for the other: %.0f" NBSP "ns per round trip (%.2f" NBSP "s in all).",
           num(ROUNDS), (double)ns / ROUNDS, secs(ns));
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

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s [COUNT]\n"
            "Runs strand's showcase and prints what each part measured on this machine.\n"
            "COUNT (at least 1000, default 1000000) is how many strands parts 1, 3 and 4 use;\n"
            "parts 3 and 4 use fewer when the machine's free memory is short, and say so\n"
            "(DEMO_MEMORY_MIB=n in the environment pretends there are n MiB free).\n",
            prog);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, argv[0]);
        return 0;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        if (argc == 2)
            fprintf(stderr, "demo: unknown option '%s'\n", argv[1]);
        usage(stderr, argv[0]);
        return 2;
    }
    if (argc > 1) {
        char *end;
        long n = strtol(argv[1], &end, 10);
        if (end == argv[1] || *end || n < 1000) {
            fprintf(stderr, "demo: bad COUNT '%s'\n", argv[1]);
            usage(stderr, argv[0]);
            return 2;
        }
        million = n;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    say(0, "strand demo: green threads for C. Every figure below was measured just now, "
           "on this machine.");
    printf("\n");
    size_to_memory();
    int rc = strand_run(demo_main, NULL, NULL);
    if (rc != 0) {
        printf("strand_run failed: %d\n", rc);
        return 1;
    }
    printf("\n%s\n", failed ? "Something above was wrong (marked !!)."
                             : "Parts 1 to 5 ran as expected.");
    return failed;
}
