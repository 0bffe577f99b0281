/*
 * test_diag.c - diagnostics: strand_dump() content for strands blocked in every way (the
 * "waits on" field of each), the SIGQUIT dump (the program keeps running), the watchdog
 * (fires for a spinning strand, once; not for a yielding one), the registry's overflow
 * accounting, strand_stats() counters, and the documented codes for bad arguments.
 *
 * Tests that need their own runtime settings (watchdog, registry size, signal handlers) run
 * in forked children (test_child_run), so they come first in main(): fork only before this
 * process has started worker threads. Children report failures on stderr and exit non-zero.
 */
// ctest-timeout: 120
#include "test_util.h"

#include <stdatomic.h>

#include <stdbool.h>
#include <sys/mman.h>

/* ------------------------------------------------------------------ helpers */

static int64_t spawn_named(strand_fn fn, void *arg, const char *name)
{
    strand_attr a = { .name = name };
    int64_t id = strand_spawn_attr(fn, arg, &a);
    assert_true(id > 0);
    return id;
}

/* The dump, into a NUL-terminated malloc'd string. */
static char *dump_to_string(void)
{
    int fd = memfd_create("dump", 0);
    if (fd < 0)
        return NULL;
    int n = strand_dump(fd);
    off_t len = lseek(fd, 0, SEEK_END);
    char *s = malloc((size_t)len + 1);
    ssize_t got = pread(fd, s, (size_t)len, 0);
    s[got > 0 ? got : 0] = '\0';
    close(fd);
    if (n < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* The dump line of the strand named `name` (copied into line), or false. */
static bool find_line(const char *dump, const char *name, char *line, size_t cap)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\"", name);
    const char *p = strstr(dump, needle);
    if (p == NULL)
        return false;
    while (p > dump && p[-1] != '\n')
        p--;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap)
        n = cap - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    return true;
}

/* ------------------------------------------------------------------ blocked in every way */

typedef struct world {
    strand_chan *recv_ch, *send_ch;
    int          pipefd[2];
    strand_mutex mu;
    strand_sem   sem;
    strand_wg    wg;
    strand_cond  cv;
    strand_mutex cv_mu;
    int          cv_flag;
    int64_t      recv_id;
} world;

static void *w_recv(void *arg)
{
    world *w = arg;
    int v = 0;
    return (void *)(intptr_t)strand_chan_recv(w->recv_ch, &v, STRAND_FOREVER);
}

static void *w_send(void *arg)
{
    world *w = arg;
    int v = 7;
    return (void *)(intptr_t)strand_chan_send(w->send_ch, &v, STRAND_FOREVER);
}

static void *w_mbox(void *arg)
{
    (void)arg;
    char buf[16];
    int64_t from;
    return (void *)(intptr_t)strand_recv(buf, sizeof buf, &from, STRAND_FOREVER);
}

static void *w_read(void *arg)
{
    world *w = arg;
    char c;
    return (void *)(intptr_t)strand_read(w->pipefd[0], &c, 1, STRAND_FOREVER);
}

static void *w_sleep(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)strand_sleep(1500 * 1000000LL);
}

static void *w_join(void *arg)
{
    world *w = arg;
    return (void *)(intptr_t)strand_join(w->recv_id, NULL);
}

static void *w_mutex(void *arg)
{
    world *w = arg;
    int rc = strand_mutex_lock(&w->mu, STRAND_FOREVER);
    if (rc == 0)
        strand_mutex_unlock(&w->mu);
    return (void *)(intptr_t)rc;
}

static void *w_sem(void *arg)
{
    world *w = arg;
    return (void *)(intptr_t)strand_sem_wait(&w->sem, STRAND_FOREVER);
}

static void *w_wg(void *arg)
{
    world *w = arg;
    return (void *)(intptr_t)strand_wg_wait(&w->wg, STRAND_FOREVER);
}

static void *w_cond(void *arg)
{
    world *w = arg;
    int rc = strand_mutex_lock(&w->cv_mu, STRAND_FOREVER);
    while (rc == 0 && !w->cv_flag)
        rc = strand_cond_wait(&w->cv, &w->cv_mu, STRAND_FOREVER);
    strand_mutex_unlock(&w->cv_mu);
    return (void *)(intptr_t)rc;
}

typedef struct expect {
    const char *name;
    char        want[96]; /* text after "waits on: " */
} expect;

static void *dump_world_main(void *arg)
{
    (void)arg;
    world *w = calloc(1, sizeof *w);
    assert_int_equal(strand_chan_create(&w->recv_ch, sizeof(int), 0), 0);
    assert_int_equal(strand_chan_create(&w->send_ch, sizeof(int), 0), 0);
    assert_int_equal(pipe(w->pipefd), 0);
    assert_int_equal(strand_mutex_init(&w->mu), 0);
    assert_int_equal(strand_sem_init(&w->sem, 0), 0);
    assert_int_equal(strand_wg_init(&w->wg), 0);
    assert_int_equal(strand_wg_add(&w->wg, 1), 0);
    assert_int_equal(strand_cond_init(&w->cv), 0);
    assert_int_equal(strand_mutex_init(&w->cv_mu), 0);
    assert_int_equal(strand_mutex_lock(&w->mu, STRAND_FOREVER), 0);

    int64_t ids[10];
    int k = 0;
    w->recv_id = ids[k++] = spawn_named(w_recv, w, "w-recv");
    ids[k++] = spawn_named(w_send, w, "w-send");
    int64_t mbox_id = ids[k++] = spawn_named(w_mbox, w, "w-mbox");
    ids[k++] = spawn_named(w_read, w, "w-read");
    ids[k++] = spawn_named(w_sleep, w, "w-sleep");
    ids[k++] = spawn_named(w_join, w, "w-join");
    ids[k++] = spawn_named(w_mutex, w, "w-mutex");
    ids[k++] = spawn_named(w_sem, w, "w-sem");
    ids[k++] = spawn_named(w_wg, w, "w-wg");
    ids[k++] = spawn_named(w_cond, w, "w-cond");

    expect ex[10];
    memset(ex, 0, sizeof ex);
    int e = 0;
    ex[e].name = "w-recv";  snprintf(ex[e++].want, 96, "channel %p (recv)", (void *)w->recv_ch);
    ex[e].name = "w-send";  snprintf(ex[e++].want, 96, "channel %p (send)", (void *)w->send_ch);
    ex[e].name = "w-mbox";  snprintf(ex[e++].want, 96, "mailbox");
    ex[e].name = "w-read";  snprintf(ex[e++].want, 96, "fd %d (read)", w->pipefd[0]);
    ex[e].name = "w-sleep"; snprintf(ex[e++].want, 96, "timer (due in ");
    ex[e].name = "w-join";  snprintf(ex[e++].want, 96, "join of strand %lld",
                                     (long long)w->recv_id);
    ex[e].name = "w-mutex"; snprintf(ex[e++].want, 96, "mutex %p", (void *)&w->mu);
    ex[e].name = "w-sem";   snprintf(ex[e++].want, 96, "semaphore %p", (void *)&w->sem);
    ex[e].name = "w-wg";    snprintf(ex[e++].want, 96, "wait group %p", (void *)&w->wg);
    ex[e].name = "w-cond";  snprintf(ex[e++].want, 96, "cond %p", (void *)&w->cv);

    /* Everyone parks within a moment; retry the dump for up to 1 s. */
    char *dump = NULL;
    int missing = e;
    char report[4096] = "";
    for (int attempt = 0; attempt < 20 && missing > 0; attempt++) {
        strand_sleep(50 * 1000000LL);
        free(dump);
        dump = dump_to_string();
        assert_non_null(dump);
        missing = 0;
        report[0] = '\0';
        for (int i = 0; i < e; i++) {
            char line[512], want[128];
            snprintf(want, sizeof want, "[parked]");
            bool ok = find_line(dump, ex[i].name, line, sizeof line) &&
                      strstr(line, want) != NULL;
            char *wo = ok ? strstr(line, "waits on: ") : NULL;
            if (wo == NULL || strncmp(wo + 10, ex[i].want, strlen(ex[i].want)) != 0) {
                missing++;
                size_t used = strlen(report);
                snprintf(report + used, sizeof report - used, "  %s: want \"waits on: %s\"\n",
                         ex[i].name, ex[i].want);
            }
        }
    }
    if (missing > 0) {
        print_error("dump:\n%s\n", dump);
        fail_msg("%d strands without the expected wait:\n%s", missing, report);
    }
    /* Every line also carries the priority, the age, and a backtrace follows a parked one. */
    char line[512];
    assert_true(find_line(dump, "w-recv", line, sizeof line));
    assert_non_null(strstr(line, "prio=normal"));
    assert_non_null(strstr(line, "age="));
    const char *after = strstr(dump, line) + strlen(line);
    assert_true(strncmp(after, "\n    #0 ", 8) == 0);
    assert_non_null(strstr(dump, "=== strand dump:"));
    assert_non_null(strstr(dump, "=== end of strand dump"));
    free(dump);

    /* Release everyone and check they all finished normally. */
    int v = 1;
    assert_int_equal(strand_chan_send(w->recv_ch, &v, STRAND_FOREVER), 0);
    assert_int_equal(strand_chan_recv(w->send_ch, &v, STRAND_FOREVER), 0);
    assert_int_equal(strand_send(mbox_id, "hi", 2), 0);
    assert_int_equal(write(w->pipefd[1], "x", 1), 1);
    assert_int_equal(strand_mutex_unlock(&w->mu), 0);
    assert_int_equal(strand_sem_post(&w->sem), 0);
    assert_int_equal(strand_wg_done(&w->wg), 0);
    strand_mutex_lock(&w->cv_mu, STRAND_FOREVER);
    w->cv_flag = 1;
    strand_cond_broadcast(&w->cv);
    strand_mutex_unlock(&w->cv_mu);
    /* ids[0] (w-recv) is joined by w-join, whose own result says how that went. */
    for (int i = 1; i < k; i++) {
        void *r = (void *)-1;
        assert_int_equal(strand_join(ids[i], &r), 0);
        if ((intptr_t)r < 0)
            fail_msg("strand %d ended with %d", i, (int)(intptr_t)r);
    }
    strand_chan_release(w->recv_ch);
    strand_chan_release(w->send_ch);
    close(w->pipefd[0]);
    close(w->pipefd[1]);
    free(w);
    return NULL;
}

static void test_dump_waits_on(void **state)
{
    (void)state;
    test_run_strand(dump_world_main, NULL);
}

/* ------------------------------------------------------------------ bad arguments, stats */

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(strand_dump(-1), -EBADF);
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    assert_int_equal(strand_dump(p[1]), -EBADF); /* closed */
    assert_int_equal(strand_stats(NULL), -EINVAL);
}

static void *park_on(void *arg)
{
    int v;
    return (void *)(intptr_t)strand_chan_recv(arg, &v, STRAND_FOREVER);
}

static void *stats_main(void *arg)
{
    (void)arg;
    enum { N = 100 };
    struct strand_stats a, b, c;
    assert_int_equal(strand_stats(&a), 0);
    strand_chan *ch;
    assert_int_equal(strand_chan_create(&ch, sizeof(int), 0), 0);
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = strand_spawn(park_on, ch);
    strand_sleep(50 * 1000000LL);
    assert_int_equal(strand_stats(&b), 0);
    assert_true(b.spawned >= a.spawned + N);
    assert_true(b.active >= N + 1);
    assert_true(b.peak >= N + 1);
    assert_true(b.stack_bytes > 0);
    assert_true(b.workers >= 1);
    for (int i = 0; i < N; i++) {
        int v = i;
        assert_int_equal(strand_chan_send(ch, &v, STRAND_FOREVER), 0);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(strand_join(ids[i], NULL), 0);
    assert_int_equal(strand_send(strand_self(), "m", 1), 0);
    char buf[4];
    int64_t from;
    assert_int_equal(strand_recv(buf, sizeof buf, &from, STRAND_FOREVER), 1);
    assert_int_equal(strand_stats(&c), 0);
    assert_true(c.completed >= a.completed + N);
    assert_true(c.active <= c.spawned - c.completed + 1);
    assert_true(c.chan_ops >= a.chan_ops + 2 * N);
    /* A park is counted when it completes; a strand woken while still switching away
     * (its partner arrived at once) never finishes parking, so not every exchange counts. */
    assert_true(c.parks > a.parks);
    assert_true(c.switches >= a.switches + N);
    assert_true(c.mailbox_sent >= a.mailbox_sent + 1);
    assert_true(c.peak >= b.peak);
    strand_chan_release(ch);
    return NULL;
}

static void test_stats_counters(void **state)
{
    (void)state;
    test_run_strand(stats_main, NULL);
}

/* ------------------------------------------------------------------ children */

#define CHILD_FAIL(...)                                  \
    do {                                                 \
        fprintf(stderr, "CHILD FAILURE: " __VA_ARGS__);  \
        fprintf(stderr, "\n");                           \
        exit(3);                                         \
    } while (0)

/* cmocka's runner catches fatal signals to report a failed test; a child inherits that and
 * would go on running the rest of the list after a crash. Put the defaults back. */
static void child_defaults(void)
{
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

/* The signal is raised by the child's plain main thread (not from inside a strand): under
 * TSan a handler runs when the receiving thread next enters an intercepted call, which a
 * plain thread sleeping in usleep does at once. */
static void child_sigquit(void *arg)
{
    (void)arg;
    child_defaults();
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0)
        CHILD_FAIL("strand_init");
    strand_chan *ch;
    strand_chan_create(&ch, sizeof(int), 0);
    strand_attr a = { .name = "q-victim" };
    int64_t id = strand_spawn_attr(park_on, ch, &a);
    usleep(100 * 1000);
    raise(SIGQUIT);
    /* The dump happens on the diagnostics thread; this thread goes on meanwhile. */
    usleep(500 * 1000);
    int v = 1;
    strand_chan_send(ch, &v, STRAND_FOREVER);
    strand_join(id, NULL);
    strand_chan_release(ch);
    fprintf(stderr, "still running after SIGQUIT\n");
}

static void test_sigquit_dump(void **state)
{
    (void)state;
    test_child child;
    assert_int_equal(test_child_run(child_sigquit, NULL, 20, &child), 0);
    if (!child.exited || child.status != 0 || !strstr(child.err, "=== strand dump:") ||
        !strstr(child.err, "\"q-victim\" [parked]") ||
        !strstr(child.err, "waits on: channel") ||
        !strstr(child.err, "still running after SIGQUIT"))
        fail_msg("exited=%d status=%d signaled=%d sig=%d stderr:\n%s", child.exited,
                 child.status, child.signaled, child.sig, child.err);
}

static volatile int spin_stop;

static void *spinner(void *arg)
{
    (void)arg;
    int64_t end = strand_now() + 2600 * 1000000LL;
    while (strand_now() < end && !spin_stop)
        ;
    return NULL;
}

static void *yielder(void *arg)
{
    (void)arg;
    int64_t end = strand_now() + 2600 * 1000000LL;
    while (strand_now() < end)
        strand_yield();
    return NULL;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    int64_t a = spawn_named(spinner, NULL, "wd-spinner");
    int64_t b = spawn_named(yielder, NULL, "wd-yielder");
    strand_join(a, NULL);
    strand_join(b, NULL);
    return NULL;
}

static void child_watchdog(void *arg)
{
    (void)arg;
    child_defaults();
    /* Two workers: the spinner holds one; the yielder (and the joining main strand) use the
     * other, or share the spinner's until a steal. Few threads, so the yielder's thread is
     * not starved of CPU by the OS on a loaded machine (that would look like not yielding). */
    strand_config cfg = { .workers = 2, .watchdog_secs = 1 };
    if (strand_init(&cfg) != 0)
        CHILD_FAIL("strand_init");
    strand_run(watchdog_main, NULL, NULL);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_watchdog(void **state)
{
    (void)state;
    test_child child;
    assert_int_equal(test_child_run(child_watchdog, NULL, 30, &child), 0);
    /* Reported once (it spins ~2.6 s, past the 1 s limit for several samples), with its
     * dump line; the yielding strand never. */
    if (!child.exited || child.status != 0 ||
        count_of(child.err, "strand: watchdog:") != 1 ||
        !strstr(child.err, "\"wd-spinner\" [running]") ||
        strstr(child.err, "wd-yielder") != NULL ||
        !strstr(child.err, "STRAND_WATCHDOG_SECS=1"))
        fail_msg("exited=%d status=%d stderr:\n%s", child.exited, child.status, child.err);
}

static void child_watchdog_off(void *arg)
{
    (void)arg;
    child_defaults();
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0)
        CHILD_FAIL("strand_init");
    strand_run(watchdog_main, NULL, NULL);
}

static void test_watchdog_off_by_default(void **state)
{
    (void)state;
    unsetenv("STRAND_WATCHDOG_SECS");
    test_child child;
    assert_int_equal(test_child_run(child_watchdog_off, NULL, 30, &child), 0);
    assert_true(child.exited && child.status == 0);
    assert_null(strstr(child.err, "watchdog"));
}

static void *overflow_main(void *arg)
{
    (void)arg;
    strand_chan *ch;
    strand_chan_create(&ch, sizeof(int), 0);
    int64_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = strand_spawn(park_on, ch);
    strand_sleep(50 * 1000000LL);
    struct strand_stats st;
    strand_stats(&st);
    if (st.registry_overflow < 40 + 1 - 8)
        CHILD_FAIL("registry_overflow %llu, want >= 33", (unsigned long long)st.registry_overflow);
    int fd = memfd_create("d", 0);
    int n = strand_dump(fd);
    if (n < 1 || n > 8)
        CHILD_FAIL("dump listed %d strands, want 1..8", n);
    char buf[8192] = "";
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    buf[got > 0 ? got : 0] = '\0';
    if (!strstr(buf, "not tracked: registry full"))
        CHILD_FAIL("dump header: %s", buf);
    for (int i = 0; i < 40; i++) {
        int v = i;
        strand_chan_send(ch, &v, STRAND_FOREVER);
    }
    for (int i = 0; i < 40; i++)
        if (strand_join(ids[i], NULL) != 0)
            CHILD_FAIL("join");
    /* Slots come back: new strands are tracked again. */
    strand_stats(&st);
    uint64_t before = st.registry_overflow;
    int64_t again = strand_spawn(park_on, ch);
    strand_sleep(20 * 1000000LL);
    strand_stats(&st);
    if (st.registry_overflow != before)
        CHILD_FAIL("registry slots were not released");
    int v = 0;
    strand_chan_send(ch, &v, STRAND_FOREVER);
    strand_join(again, NULL);
    strand_chan_release(ch);
    return NULL;
}

static void child_registry_overflow(void *arg)
{
    (void)arg;
    child_defaults();
    strand_config cfg = { .workers = 2, .registry_size = 8 };
    if (strand_init(&cfg) != 0)
        CHILD_FAIL("strand_init");
    strand_run(overflow_main, NULL, NULL);
}

static void test_registry_overflow(void **state)
{
    (void)state;
    test_child child;
    assert_int_equal(test_child_run(child_registry_overflow, NULL, 20, &child), 0);
    if (!child.exited || child.status != 0)
        fail_msg("exited=%d status=%d signaled=%d stderr:\n%s", child.exited, child.status,
                 child.signaled, child.err);
}

/* ------------------------------------------------------------------ fate and symbols */

static _Atomic int64_t fate_kid_id;

/* Static on purpose: only the executable's .symtab names it (dladdr cannot). */
static __attribute__((noinline)) int parked_in_a_static_function(void)
{
    char b[4];
    int rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER);
    __asm__ __volatile__("" ::: "memory"); /* keep the frame: no tail call */
    return rc;
}

static void *fate_kid(void *arg)
{
    (void)arg;
    atomic_store(&fate_kid_id, strand_self());
    return (void *)(intptr_t)parked_in_a_static_function();
}

static void *fate_main(void *arg)
{
    (void)arg;
    strand_child_spec c = { fate_kid, NULL, "fate-kid", STRAND_PERMANENT, 0 };
    strand_sup_spec spec = { STRAND_ONE_FOR_ONE, 1, 0, &c, 1 };
    int64_t sup = strand_supervise(&spec);
    assert_true(sup > 0);
    while (atomic_load(&fate_kid_id) == 0)
        strand_sleep(1000000);
    int64_t kid = atomic_load(&fate_kid_id);
    int64_t ref = strand_monitor(kid);
    assert_true(ref > 0);
    char *dump = NULL;
    char want_sup[64], want_mon[96], want_link[64];
    snprintf(want_sup, sizeof want_sup, "supervised by: %lld", (long long)sup);
    snprintf(want_mon, sizeof want_mon, "monitored by: %lld (ref %lld)",
             (long long)strand_self(), (long long)ref);
    snprintf(want_link, sizeof want_link, "linked to: %lld", (long long)sup);
    bool ok = false;
    for (int i = 0; i < 200 && !ok; i++) {
        free(dump);
        strand_sleep(5000000);
        dump = dump_to_string();
        assert_non_null(dump);
        ok = strstr(dump, want_sup) && strstr(dump, want_mon) && strstr(dump, want_link) &&
             strstr(dump, "parked_in_a_static_function+0x") && strstr(dump, "[traps exits]");
    }
    if (!ok)
        fail_msg("dump without the supervision tree or the static name:\n%s", dump);
    free(dump);
    assert_int_equal(strand_cancel(sup), 0);
    assert_int_equal(strand_join(sup, NULL), 0);
    return NULL;
}

static void test_dump_fate_and_static_names(void **state)
{
    (void)state;
    test_run_strand(fate_main, NULL);
}

int main(void)
{
    test_deadline_named("test_diag", 110);
    const struct CMUnitTest tests[] = {
        /* forked children first: before this process starts any worker thread */
        cmocka_unit_test(test_sigquit_dump),
        cmocka_unit_test(test_watchdog),
        cmocka_unit_test(test_watchdog_off_by_default),
        cmocka_unit_test(test_registry_overflow),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_dump_waits_on),
        cmocka_unit_test(test_stats_counters),
        cmocka_unit_test(test_dump_fate_and_static_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
