/*
 * test_handoff.c - hand-off and the time slice (src/sched_monitor.c): a worker stuck in a
 * plain blocking call or a loop that never yields gives its queue to a spare thread, so
 * other strands keep running; timers fire while every worker computes; strand_maybe_yield()
 * honours the slice (and the count-based interval); spares are reaped; running out of
 * threads degrades to waiting; the dump and the watchdog say what happened; the monitor
 * costs nothing while all is idle; STRAND_HANDOFF_MS, STRAND_SLICE_MS and
 * STRAND_MAX_THREADS parse strictly.
 *
 * Structure: each runtime-starting test runs its body in a forked child (test_child.h), so
 * each gets a runtime of its own shape. Timing bounds are generous (the machine is shared
 * and loaded, and the sanitizers slow everything), but each one stays well below what the
 * test would see without hand-off (a second or more), so it still fails if hand-off breaks.
 */
// ctest-timeout: 600
// ctest-label: serial
#define TEST_CHILD_SHOW_STDERR 1 /* the RESULT lines: the figures the notes quote */
#include "test_child.h"
#include "test_settings.h"

#include "internal.h"

#include <stdatomic.h>
#include <sys/mman.h>

static const int64_t MS = 1000000LL;
static const int64_t SEC = 1000000000LL;

/* Under a sanitizer or valgrind everything is several times slower. */
static int64_t slow(int64_t ns)
{
    return test_is_small() || test_under_valgrind() ? ns * 3 : ns;
}

/* Busy for `ns` without a single strand call. */
static void compute(int64_t ns)
{
    int64_t end = strand_now() + ns;
    volatile uint64_t x = 1;
    while (strand_now() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ull + 1;
}

static void stats(struct strand_stats *st)
{
    CHECK_EQ(strand_stats(st), 0);
}

/* ---------------------------------------------------------------- a worker stuck */

enum { NPAIRS = 500 }; /* 1,000 strands; 50 pairs under the sanitizers (npairs()) */

static int npairs(void)
{
    return (int)test_scale(NPAIRS, 50);
}

static atomic_bool pp_stop;
static _Atomic int64_t pp_max_gap;
static atomic_long pp_rounds;

static void note_gap(int64_t gap)
{
    int64_t m = atomic_load(&pp_max_gap);
    while (gap > m && !atomic_compare_exchange_weak(&pp_max_gap, &m, gap))
        ;
}

typedef struct pair {
    strand_chan *to, *back;
} pair;

static void *pinger(void *arg)
{
    pair *p = arg;
    int64_t last = strand_now();
    while (!atomic_load(&pp_stop)) {
        int v = 1;
        if (strand_chan_send(p->to, &v, STRAND_FOREVER) != 0 ||
            strand_chan_recv(p->back, &v, STRAND_FOREVER) != 0)
            break;
        /* Paced by a 1 ms sleep: timers must keep firing too, and unpaced, 500 pairs on
         * one worker starve some pairs for the whole run even with no hand-off at all (the
         * run-next chains and the ring's overflow to the global queue: a scheduler matter
         * of its own, not this test's). */
        strand_sleep(MS);
        int64_t now = strand_now();
        note_gap(now - last - MS);
        last = now;
        atomic_fetch_add_explicit(&pp_rounds, 1, memory_order_relaxed);
    }
    strand_chan_close(p->to);
    return NULL;
}

static void *ponger(void *arg)
{
    pair *p = arg;
    int v;
    while (strand_chan_recv(p->to, &v, STRAND_FOREVER) == 0)
        if (strand_chan_send(p->back, &v, STRAND_FOREVER) != 0)
            break;
    strand_chan_close(p->back);
    return NULL;
}

static void *plain_sleeper(void *arg)
{
    (void)arg;
    sleep(1); /* a plain blocking call: no hook, no strand_* call */
    return NULL;
}

static void *computer(void *arg)
{
    compute((int64_t)(intptr_t)arg);
    return NULL;
}

/* One worker: a strand in sleep(1), another computing for 1 s without yielding, 1,000
 * strands ping-ponging. Without hand-off the ping-pong would stop for 2 s. */
static void body_stuck_worker(void)
{
    static pair pairs[NPAIRS];
    static int64_t ids[2 * NPAIRS];
    int np = npairs();
    for (int i = 0; i < np; i++) {
        CHECK_EQ(strand_chan_create(&pairs[i].to, sizeof(int), 0), 0);
        CHECK_EQ(strand_chan_create(&pairs[i].back, sizeof(int), 0), 0);
        ids[2 * i] = strand_spawn(pinger, &pairs[i]);
        ids[2 * i + 1] = strand_spawn(ponger, &pairs[i]);
        CHECK(ids[2 * i] > 0 && ids[2 * i + 1] > 0);
    }
    strand_sleep(20 * MS); /* all pairs under way, and the gap clock started */
    atomic_store(&pp_max_gap, 0);
    int64_t sl = strand_spawn(plain_sleeper, NULL);
    int64_t cp = strand_spawn(computer, (void *)(intptr_t)SEC);
    CHECK(sl > 0 && cp > 0);
    strand_sleep(1300 * MS);
    atomic_store(&pp_stop, true);
    CHECK_EQ(strand_join(sl, NULL), 0);
    CHECK_EQ(strand_join(cp, NULL), 0);
    for (int i = 0; i < 2 * np; i++)
        CHECK_EQ(strand_join(ids[i], NULL), 0);
    for (int i = 0; i < np; i++) {
        strand_chan_release(pairs[i].to);
        strand_chan_release(pairs[i].back);
    }
    int64_t gap = atomic_load(&pp_max_gap);
    struct strand_stats st;
    stats(&st);
    fprintf(stderr, "RESULT longest ping-pong pause %.1f ms, %ld rounds, %llu hand-offs, "
            "%llu strands moved, %llu spares started\n", (double)gap / 1e6,
            atomic_load(&pp_rounds), (unsigned long long)st.handoffs,
            (unsigned long long)st.handoff_strands, (unsigned long long)st.spares_started);
    /* Goal 50 ms; the bound that holds on a loaded 2-core box while still failing without
     * hand-off (the one worker would run the sleep and the loop one after the other: a
     * pause of 2 s): 300 ms, and 1 s under the sanitizers and valgrind, where spurious
     * hand-offs of slowed-down threads add up. */
    CHECK(gap < (test_is_small() || test_under_valgrind() ? SEC : 300 * MS));
    CHECK(st.handoffs >= 1);
    CHECK(st.spares_started >= 1);
    CHECK(atomic_load(&pp_rounds) > 10 * np);
}

static void test_stuck_worker(void **state)
{
    (void)state;
    body_spec b = {.body = body_stuck_worker, .init = 1,
                   .cfg = {.workers = 1, .no_signals = 1}};
    test_child c;
    run_spec("stuck worker", &b, 120, &c);
}

/* ---------------------------------------------------------------- timers while all compute */

static void *selector(void *arg)
{
    int64_t *late = arg;
    strand_chan *ch;
    CHECK_EQ(strand_chan_create(&ch, sizeof(int), 0), 0);
    int v;
    strand_select_case c = {.chan = ch, .op = STRAND_SELECT_RECV, .elem = &v};
    int64_t deadline = strand_now() + 200 * MS;
    CHECK_EQ(strand_select(&c, 1, deadline), -ETIMEDOUT);
    *late = strand_now() - deadline;
    strand_chan_release(ch);
    return NULL;
}

/* Computes like computer(), but calls strand_maybe_yield() as it goes. */
static void *polite_computer(void *arg)
{
    int64_t end = strand_now() + (int64_t)(intptr_t)arg;
    volatile uint64_t x = 1;
    while (strand_now() < end) {
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ull + 1;
        strand_maybe_yield();
    }
    return NULL;
}

static bool polite;

static void body_timer_all_busy(void)
{
    int64_t late = -1;
    int64_t s = strand_spawn(selector, &late);
    strand_sleep(5 * MS); /* the selector waits */
    strand_fn f = polite ? polite_computer : computer;
    int64_t a = strand_spawn(f, (void *)(intptr_t)(1200 * MS));
    int64_t b = strand_spawn(f, (void *)(intptr_t)(1200 * MS));
    CHECK(s > 0 && a > 0 && b > 0);
    CHECK_EQ(strand_join(s, NULL), 0);
    CHECK_EQ(strand_join(a, NULL), 0);
    CHECK_EQ(strand_join(b, NULL), 0);
    fprintf(stderr, "RESULT select deadline fired %.1f ms late\n", (double)late / 1e6);
    /* Goal 50 ms; without hand-off or the monitor it fires about 1 s late. */
    CHECK(late >= 0 && late < slow(250 * MS));
}

static void test_timer_all_busy(void **state)
{
    (void)state;
    test_child c;
    /* By hand-off: the spares have nothing to run and sleep in the poller, with the
     * timer's deadline. */
    body_spec b = {.body = body_timer_all_busy, .init = 1,
                   .cfg = {.workers = 2, .no_signals = 1}};
    run_spec("timer, all busy, hand-off", &b, 60, &c);
    /* Without hand-off: the monitor runs the due timer itself, and the computers, which
     * call strand_maybe_yield(), give the woken strand its turn at their next slice. */
    polite = true;
    body_spec m = {.body = body_timer_all_busy, .init = 1,
                   .cfg = {.workers = 2, .no_signals = 1, .handoff_ms = -1}};
    run_spec("timer, all busy, monitor alone", &m, 60, &c);
    polite = false;
}

/* ---------------------------------------------------------------- the time slice */

static _Atomic int64_t slice_gap[2];
static atomic_int slice_turn;
static int64_t slice_t0;

/* Loops for `arg` ns, calling strand_maybe_yield(); notes the longest time the other
 * strand kept it off the worker. */
static void *slicer(void *arg)
{
    int me = atomic_fetch_add(&slice_turn, 1);
    int64_t end = strand_now() + 600 * MS, last = slice_t0; /* waiting to start counts */
    (void)arg;
    while (strand_now() < end) {
        volatile int x = 0;
        for (int i = 0; i < 100; i++)
            x += i;
        strand_maybe_yield();
        int64_t now = strand_now();
        if (now - last > atomic_load(&slice_gap[me]))
            atomic_store(&slice_gap[me], now - last);
        last = now;
    }
    return NULL;
}

static int64_t run_slicers(void)
{
    atomic_store(&slice_turn, 0);
    atomic_store(&slice_gap[0], 0);
    atomic_store(&slice_gap[1], 0);
    slice_t0 = strand_now();
    int64_t a = strand_spawn(slicer, NULL), b = strand_spawn(slicer, NULL);
    CHECK(a > 0 && b > 0);
    CHECK_EQ(strand_join(a, NULL), 0);
    CHECK_EQ(strand_join(b, NULL), 0);
    int64_t g0 = atomic_load(&slice_gap[0]), g1 = atomic_load(&slice_gap[1]);
    return g0 > g1 ? g0 : g1;
}

static void body_slice(void)
{
    struct strand_stats before, after;
    stats(&before);
    int64_t gap = run_slicers();
    stats(&after);
    fprintf(stderr, "RESULT slice: longest wait %.1f ms, %llu requests, %llu slice yields\n",
            (double)gap / 1e6, (unsigned long long)(after.slice_requests - before.slice_requests),
            (unsigned long long)(after.slice_yields - before.slice_yields));
    /* Each waits about one slice (10 ms) at a time; without it the first runs 600 ms. The
     * bound leaves room for a loaded machine that deschedules the thread itself. */
    CHECK(gap < slow(300 * MS));
    CHECK(after.slice_yields - before.slice_yields >= 5);
}

static void body_slice_off(void)
{
    int64_t gap = run_slicers();
    struct strand_stats st;
    stats(&st);
    /* Slice and interval off: strand_maybe_yield() never yields, the second strand waits
     * for the whole 600 ms of the first. */
    CHECK(gap >= 550 * MS);
    CHECK_EQ(st.slice_yields, 0);
}

static void body_interval(void)
{
    int64_t gap = run_slicers();
    struct strand_stats st;
    stats(&st);
    CHECK(gap < slow(300 * MS)); /* every 1,000 calls */
    CHECK_EQ(st.slice_yields, 0);
}

static void test_slice(void **state)
{
    (void)state;
    test_child c;
    /* Hand-off off: the slice alone must share the worker (and on a loaded machine a
     * thread the OS stalls would be handed off, which says nothing about the slice). */
    body_spec b = {.body = body_slice, .init = 1,
                   .cfg = {.workers = 1, .no_signals = 1, .handoff_ms = -1}};
    run_spec("slice", &b, 60, &c);
    body_spec o = {.body = body_slice_off, .init = 1,
                   .cfg = {.workers = 1, .no_signals = 1, .handoff_ms = -1, .slice_ms = -1}};
    run_spec("slice off", &o, 60, &c);
    body_spec i = {.body = body_interval, .init = 1,
                   .cfg = {.workers = 1, .no_signals = 1, .handoff_ms = -1, .slice_ms = -1,
                           .yield_interval = 1000}};
    run_spec("yield interval", &i, 60, &c);
}

/* ---------------------------------------------------------------- spares reaped, threads */

static void *short_sleeper(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
    return NULL;
}

static atomic_int ran;
static void *mark(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return NULL;
}

/* A worker blocked 300 ms in usleep; a strand queued behind it runs long before that. */
static void body_reaped(void)
{
    int64_t t0 = strand_now();
    int64_t s = strand_spawn(short_sleeper, (void *)(intptr_t)300000);
    strand_yield(); /* let it take the worker first (one worker) */
    int64_t m = strand_spawn(mark, NULL);
    CHECK_EQ(strand_join(m, NULL), 0);
    int64_t waited = strand_now() - t0;
    CHECK_EQ(strand_join(s, NULL), 0);
    struct strand_stats st;
    stats(&st);
    CHECK(st.handoffs >= 1);
    CHECK(waited < slow(200 * MS));
    /* Idle spares end after about a second. */
    int64_t limit = strand_now() + slow(10 * SEC);
    do {
        strand_sleep(50 * MS);
        stats(&st);
    } while (st.spare_threads != 0 && strand_now() < limit);
    fprintf(stderr, "RESULT queued strand ran after %.1f ms; spares started %llu, reaped %llu\n",
            (double)waited / 1e6, (unsigned long long)st.spares_started,
            (unsigned long long)st.spares_reaped);
    CHECK_EQ(st.spare_threads, 0);
    CHECK(st.spares_reaped >= 1);
    CHECK_EQ(st.spares_reaped, st.spares_started);
}

/* STRAND_MAX_THREADS = workers: no spare can start; the queued strand waits for the
 * blocked one, and nothing breaks. */
static void body_no_threads(void)
{
    int64_t t0 = strand_now();
    int64_t s = strand_spawn(short_sleeper, (void *)(intptr_t)200000);
    strand_yield();
    int64_t m = strand_spawn(mark, NULL);
    CHECK_EQ(strand_join(m, NULL), 0);
    int64_t waited = strand_now() - t0;
    CHECK_EQ(strand_join(s, NULL), 0);
    struct strand_stats st;
    stats(&st);
    CHECK_EQ(st.handoffs, 0);
    CHECK(st.handoff_waits >= 1);
    CHECK_EQ(st.spares_started, 0);
    CHECK(waited >= 150 * MS); /* it did wait for the sleeper */
}

static void test_reaped_and_limits(void **state)
{
    (void)state;
    test_child c;
    body_spec b = {.body = body_reaped, .init = 1, .cfg = {.workers = 1, .no_signals = 1}};
    run_spec("spares reaped", &b, 60, &c);
    body_spec n = {.body = body_no_threads, .init = 1,
                   .cfg = {.workers = 1, .no_signals = 1, .max_threads = 1}};
    run_spec("no spare threads", &n, 60, &c);
}

/* Several workers stuck at once, many times over, with pinned strands among the queued
 * ones: every strand runs, pinned ones on their worker's role (a spare standing in or the
 * worker itself), and at the end one thread runs per worker again. */
static atomic_int pinned_ok, pinned_bad;
enum { CHURN_WORKERS = 2 };

static void *pinned_mark(void *arg)
{
    (void)arg;
    struct strand *s = strand__current();
    int idx = strand__worker_index(s->worker);
    /* The worker itself, or a spare (index >= workers) standing in for it. */
    if (idx == s->pinned || idx >= CHURN_WORKERS)
        atomic_fetch_add(&pinned_ok, 1);
    else
        atomic_fetch_add(&pinned_bad, 1);
    return NULL;
}

static void body_churn(void)
{
    int rounds = (int)test_scale(30, 8);
    for (int r = 0; r < rounds; r++) {
        int64_t ids[16];
        int k = 0;
        ids[k++] = strand_spawn(short_sleeper, (void *)(intptr_t)30000);
        ids[k++] = strand_spawn(short_sleeper, (void *)(intptr_t)30000);
        ids[k++] = strand_spawn(computer, (void *)(intptr_t)(25 * MS));
        for (int i = 0; i < 6; i++) {
            strand_attr a = {.worker = 1 + (i & 1)};
            ids[k++] = strand_spawn_attr(pinned_mark, NULL, &a);
        }
        for (int i = 0; i < 7; i++)
            ids[k++] = strand_spawn(mark, NULL);
        for (int i = 0; i < k; i++) {
            CHECK(ids[i] > 0);
            CHECK_EQ(strand_join(ids[i], NULL), 0);
        }
    }
    CHECK_EQ(atomic_load(&pinned_bad), 0);
    CHECK_EQ(atomic_load(&pinned_ok), rounds * 6);
    CHECK_EQ(atomic_load(&ran), rounds * 7);
    struct strand_stats st;
    stats(&st);
    fprintf(stderr, "RESULT churn: %llu hand-offs, %llu spares started\n",
            (unsigned long long)st.handoffs, (unsigned long long)st.spares_started);
}

static void test_churn(void **state)
{
    (void)state;
    test_child c;
    body_spec b = {.body = body_churn, .init = 1,
                   .cfg = {.workers = CHURN_WORKERS, .no_signals = 1}};
    run_spec("churn", &b, 180, &c);
}

/* ---------------------------------------------------------------- dump, watchdog, idle */

static char *capture_dump(void)
{
    int fd = memfd_create("dump", 0);
    CHECK(fd >= 0);
    CHECK(strand_dump(fd) >= 0);
    static char buf[65536];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void body_dump(void)
{
    int64_t s = strand_spawn(short_sleeper, (void *)(intptr_t)600000);
    strand_yield();
    strand_sleep(200 * MS); /* handed off by now, sleeper still in usleep */
    char *d = capture_dump();
    char want[64];
    /* Under valgrind, whose threads take turns on one big lock, /proc shows the sleeping
     * thread as running, so the dump says "running strand 1 without yielding" instead. */
    snprintf(want, sizeof want, test_under_valgrind() && !strstr(d, "in a blocking call")
                                    ? "worker 0: running strand "
                                    : "worker 0: in a blocking call for ");
    if (!strstr(d, want) || !strstr(d, "its queue runs on spare thread 1") ||
        !strstr(d, "spare thread 1: standing in for worker 0"))
        fprintf(stderr, "dump was:\n%s\n", d);
    CHECK(strstr(d, want) != NULL);
    CHECK(strstr(d, "its queue runs on spare thread 1") != NULL);
    CHECK(strstr(d, "spare thread 1: standing in for worker 0") != NULL);
    CHECK_EQ(strand_join(s, NULL), 0);
}

static void *watched_sleeper(void *arg)
{
    (void)arg;
    sleep(2);
    return NULL;
}

static void body_watchdog(void)
{
    int64_t s = strand_spawn(watched_sleeper, NULL);
    CHECK_EQ(strand_join(s, NULL), 0);
}

/* Idle for a while: the monitor does not wake at all. */
static void idle_monitor_child(void *arg)
{
    (void)arg;
    strand_config cfg = {.workers = 2, .no_signals = 1};
    CHECK_EQ(strand_init(&cfg), 0);
    int64_t s = strand_spawn(short_sleeper, (void *)(intptr_t)50000);
    CHECK(s > 0);
    CHECK_EQ(strand_join(s, NULL), 0);
    usleep(100000); /* settle: workers idle, monitor asleep */
    struct strand_stats a, b;
    stats(&a);
    usleep(500000);
    stats(&b);
    fprintf(stderr, "RESULT monitor ticks while idle for 500 ms: %llu\n",
            (unsigned long long)(b.monitor_ticks - a.monitor_ticks));
    CHECK(b.monitor_ticks - a.monitor_ticks <= 1);
    strand_shutdown();
}

static void test_dump_watchdog_idle(void **state)
{
    (void)state;
    test_child c;
    body_spec b = {.body = body_dump, .init = 1, .cfg = {.workers = 1, .no_signals = 1}};
    run_spec("dump", &b, 60, &c);
    body_spec w = {.body = body_watchdog, .init = 1,
                   .cfg = {.workers = 1, .no_signals = 1, .watchdog_secs = 1}};
    run_spec("watchdog", &w, 60, &c);
    if (!strstr(c.err, "handed to a spare thread") || !strstr(c.err, "worker 0: "))
        fprintf(stderr, "watchdog said:\n%s\n", c.err);
    assert_non_null(strstr(c.err, "handed to a spare thread"));
    assert_true(strstr(c.err, "worker 0: in a blocking call for ") != NULL ||
                (test_under_valgrind() && strstr(c.err, "worker 0: running strand ") != NULL));
    assert_int_equal(test_child_run(idle_monitor_child, NULL, 60, &c), 0);
    if (!c.exited || c.status != 0)
        fprintf(stderr, "%s\n", c.err);
    assert_true(c.exited && c.status == 0);
}

/* ---------------------------------------------------------------- settings */

static void test_settings(void **state)
{
    (void)state;
    static const char *const vars[] = {"STRAND_HANDOFF_MS", "STRAND_SLICE_MS",
                                       "STRAND_MAX_THREADS"};
    static const char *const bad[] = {"", "-1", "10ms", "1.5", " 5", "0x10", "3600001",
                                      "99999999999999999999"};
    char err[4096];
    strand__settings s;
    for (size_t v = 0; v < 3; v++) {
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            setenv(vars[v], bad[b], 1);
            load_capture(&s, NULL, err, sizeof err);
            unsetenv(vars[v]);
            if (!strstr(err, vars[v]) || !strstr(err, "using the default"))
                fprintf(stderr, "%s=\"%s\": %s\n", vars[v], bad[b], err);
            assert_non_null(strstr(err, vars[v]));
            assert_non_null(strstr(err, "using the default"));
            assert_int_equal(s.handoff_ms, 10);
            assert_int_equal(s.slice_ms, 10);
            assert_int_equal(s.max_threads, 256 > s.workers ? 256 : s.workers);
        }
    }
    setenv("STRAND_MAX_THREADS", "0", 1); /* zero means nothing here */
    load_capture(&s, NULL, err, sizeof err);
    unsetenv("STRAND_MAX_THREADS");
    assert_non_null(strstr(err, "STRAND_MAX_THREADS=\"0\""));

    setenv("STRAND_HANDOFF_MS", "0", 1);
    setenv("STRAND_SLICE_MS", "25", 1);
    setenv("STRAND_MAX_THREADS", "4096", 1);
    load_capture(&s, NULL, err, sizeof err);
    assert_string_equal(err, "");
    assert_int_equal(s.handoff_ms, 0);
    assert_int_equal(s.slice_ms, 25);
    assert_int_equal(s.max_threads, 4096);
    strand_config cfg = {.workers = 4, .handoff_ms = 7, .slice_ms = -1, .max_threads = 2};
    load_capture(&s, &cfg, err, sizeof err);
    assert_int_equal(s.handoff_ms, 7);
    assert_int_equal(s.slice_ms, 0);
    assert_int_equal(s.max_threads, 4); /* never below the workers */
    unsetenv("STRAND_HANDOFF_MS");
    unsetenv("STRAND_SLICE_MS");
    unsetenv("STRAND_MAX_THREADS");

    strand_config c1 = {.handoff_ms = -2}, c2 = {.slice_ms = 3600001}, c3 = {.max_threads = -1},
                  c4 = {.max_threads = 4097}, ok = {.handoff_ms = -1, .slice_ms = 3600000};
    assert_int_equal(strand__config_check(&c1), -EINVAL);
    assert_int_equal(strand__config_check(&c2), -EINVAL);
    assert_int_equal(strand__config_check(&c3), -EINVAL);
    assert_int_equal(strand__config_check(&c4), -EINVAL);
    assert_int_equal(strand__config_check(&ok), 0);
    assert_int_equal(strand_init(&c1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_stuck_worker),
        cmocka_unit_test(test_timer_all_busy),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_reaped_and_limits),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_dump_watchdog_idle),
    };
    if (getenv("TEST_FILTER")) /* one test while debugging: TEST_FILTER=test_slice */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
