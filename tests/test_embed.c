/*
 * test_embed.c - embedding strand in a host's own loop (strand_config.host_driven = 1):
 * strand_run_until_idle runs at most `budget` slices and says whether more work remains,
 * strand_poll_fd becomes readable when a plain thread spawns or a timer falls due,
 * strand_next_timeout, strand_run driving the runtime itself, and the -EINVAL cases
 * (worker threads, from inside a strand, a bad budget). Also: bad STRAND_WORKERS values
 * each produce exactly one warning and the default is used.
 *
 * Structure: each test body runs in a forked child (the parent never starts a runtime);
 * the host thread of the embedding tests is the child's main thread. Inside a child,
 * checks are CHECK/CHECK_EQ (see test_child.h for why not cmocka's assert_*).
 */
// ctest-timeout: 120
#include "test_child.h"

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---------------------------------------------------------------- one child process per test */

/* A host-driven runtime (the child's main thread is the host), 30 s. */
#define HOST_TEST(name)                                                                  \
    static void test_##name(void **state)                                                \
    {                                                                                    \
        (void)state;                                                                     \
        body_spec b = {.body = body_##name,                                              \
                       .cfg = {.host_driven = 1, .no_signals = 1},                       \
                       .init = 1};                                                       \
        test_child c;                                                                    \
        run_spec(#name, &b, 30, &c);                                                     \
    }

static int readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    return n == 1 && (p.revents & POLLIN);
}

/* ---------------------------------------------------------------- budget and `more` */

enum { NS = 10, YIELDS = 5 };
static atomic_int slices;

static void *yielder(void *arg)
{
    for (int i = 0; i < YIELDS; i++) {
        atomic_fetch_add(&slices, 1);
        strand_yield();
    }
    atomic_fetch_add(&slices, 1);
    return arg;
}

static void body_budget(void)
{
    int more = 7;
    CHECK_EQ(strand_run_until_idle(0, &more), -EINVAL);
    CHECK_EQ(strand_run_until_idle(-3, NULL), -EINVAL);
    CHECK_EQ(strand_run_until_idle(5, &more), 0); /* nothing to run yet */
    CHECK_EQ(more, 0);
    int64_t ids[NS];
    for (int i = 0; i < NS; i++)
        CHECK((ids[i] = strand_spawn(yielder, (void *)(intptr_t)(i + 1))) > 0);
    /* nothing runs until the host says so */
    usleep(20000);
    CHECK_EQ(atomic_load(&slices), 0);
    int total = 0, calls = 0;
    for (;;) {
        more = -1;
        int ran = strand_run_until_idle(3, &more);
        CHECK(ran >= 0 && ran <= 3);
        total += ran;
        calls++;
        CHECK_EQ(atomic_load(&slices), total); /* one slice = one strand run until it yields */
        if (!more)
            break;
        CHECK_EQ(ran, 3);
        CHECK(calls < 1000);
        if (calls >= 1000)
            break;
    }
    CHECK_EQ(total, NS * (YIELDS + 1));
    CHECK_EQ(calls, (NS * (YIELDS + 1) + 2) / 3);
    for (int i = 0; i < NS; i++) {
        void *r = NULL;
        CHECK_EQ(strand_join_until(ids[i], &r, 0), 0); /* all done: no blocking */
        CHECK_EQ((intptr_t)r, i + 1);
    }
    CHECK_EQ(strand_run_until_idle(100, &more), 0);
    CHECK_EQ(more, 0);
}

/* ---------------------------------------------------------------- strand_poll_fd */

static void *quick(void *arg)
{
    return arg;
}

static void *spawn_from_thread(void *arg)
{
    int64_t *id = arg;
    *id = strand_spawn(quick, (void *)(intptr_t)99);
    return NULL;
}

static void *napper(void *arg)
{
    (void)arg;
    CHECK_EQ(strand_sleep(30000000), 0);
    return (void *)(intptr_t)1;
}

static void body_poll_fd(void)
{
    int fd = strand_poll_fd();
    CHECK(fd >= 0);
    int more = 0;
    strand_run_until_idle(10, &more);
    CHECK_EQ(readable(fd, 0), 0); /* idle runtime: nothing to do */
    CHECK_EQ(strand_next_timeout(), -1);

    /* a plain thread spawns: the fd wakes the host */
    int64_t id = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, spawn_from_thread, &id), 0);
    pthread_join(t, NULL);
    CHECK(id > 0);
    CHECK(readable(fd, 2000));
    CHECK_EQ(strand_run_until_idle(10, &more), 1);
    void *r = NULL;
    CHECK_EQ(strand_join_until(id, &r, 0), 0);
    CHECK_EQ((intptr_t)r, 99);
    strand_run_until_idle(10, &more);
    CHECK_EQ(readable(fd, 0), 0);

    /* a timer: the strand sleeps, the host waits on the fd with the advertised timeout */
    int64_t t0 = strand_now();
    int64_t nid = strand_spawn(napper, NULL);
    CHECK_EQ(strand_run_until_idle(10, &more), 1);
    CHECK_EQ(more, 0);
    int64_t next = strand_next_timeout();
    CHECK(next > 0 && next <= 30000000);
    int woke = 0;
    while (strand_join_until(nid, &r, 0) == -EAGAIN && strand_now() - t0 < 5000000000LL) {
        int64_t n = strand_next_timeout();
        int ms = n < 0 ? 1000 : (int)((n + 999999) / 1000000);
        woke += readable(fd, ms);
        strand_run_until_idle(10, &more);
    }
    int64_t took = strand_now() - t0;
    CHECK_EQ((intptr_t)r, 1);
    CHECK(woke >= 1);
    CHECK(took >= 30000000 && took < 1000000000);
    printf("    host-driven sleep of 30 ms took %.1f ms (the fd woke the host %d time(s))\n",
           (double)took / 1e6, woke);
}

/* ---------------------------------------------------------------- strand_run drives it */

static void *child_sum(void *arg)
{
    strand_sleep(1000000);
    return (void *)((intptr_t)arg * 2);
}

static void *host_main(void *arg)
{
    (void)arg;
    int more = 0;
    CHECK_EQ(strand_run_until_idle(1, &more), -EINVAL); /* not from inside a strand */
    int64_t ids[20];
    for (int i = 0; i < 20; i++)
        CHECK((ids[i] = strand_spawn(child_sum, (void *)(intptr_t)i)) > 0);
    intptr_t sum = 0;
    for (int i = 0; i < 20; i++) {
        void *r = NULL;
        CHECK_EQ(strand_join(ids[i], &r), 0);
        sum += (intptr_t)r;
    }
    return (void *)sum;
}

static void body_run_host(void)
{
    void *r = NULL;
    CHECK_EQ(strand_run(host_main, NULL, &r), 0);
    CHECK_EQ((intptr_t)r, 2 * (19 * 20 / 2));
    struct strand_stats st;
    strand_stats(&st);
    CHECK_EQ(st.active, 0);
    CHECK_EQ(strand_wait_all(), 0);
}

HOST_TEST(budget)
HOST_TEST(poll_fd)
HOST_TEST(run_host)

/* ---------------------------------------------------------------- with worker threads */

static void body_workers_einval(void)
{
    int more = 5;
    CHECK_EQ(strand_run_until_idle(10, &more), -EINVAL);
    CHECK_EQ(more, 0);
    CHECK_EQ(strand_run_until_idle(10, NULL), -EINVAL);
    int64_t id = strand_spawn(quick, (void *)(intptr_t)3); /* the workers still work */
    void *r = NULL;
    CHECK_EQ(strand_join(id, &r), 0);
    CHECK_EQ((intptr_t)r, 3);
}

static void test_workers_einval(void **state)
{
    (void)state;
    body_spec b = {.body = body_workers_einval,
                   .cfg = {.workers = 2, .no_signals = 1},
                   .init = 1};
    test_child c;
    run_spec("workers_einval", &b, 30, &c);
}

/* ---------------------------------------------------------------- bad STRAND_WORKERS */

static void body_env_workers(void)
{
    CHECK_EQ(strand_init(NULL), 0);
    int64_t id = strand_spawn(quick, (void *)(intptr_t)4);
    void *r = NULL;
    CHECK_EQ(strand_join(id, &r), 0);
    CHECK_EQ((intptr_t)r, 4);
    struct strand_stats st;
    strand_stats(&st);
    fprintf(stderr, "workers=%d\n", st.workers);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_bad_workers_env(void **state)
{
    (void)state;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    static const char *bad[] = {
        "STRAND_WORKERS=abc", "STRAND_WORKERS=0",    "STRAND_WORKERS=-1",
        "STRAND_WORKERS=2x",  "STRAND_WORKERS=99999", "STRAND_WORKERS= 2",
        "STRAND_WORKERS=1.5", "STRAND_WORKERS=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        body_spec b = {.body = body_env_workers, .env = bad[i]};
        test_child c;
        run_spec(bad[i], &b, 30, &c);
        int warnings = count_of(c.err, "STRAND_WORKERS");
        int workers = -1;
        const char *w = strstr(c.err, "workers=");
        if (w)
            sscanf(w, "workers=%d", &workers);
        if (warnings != 1 || !strstr(c.err, "warning") || workers != (int)cpus)
            fail_msg("%s: want one warning naming STRAND_WORKERS and the default %ld workers; "
                     "got %d mention(s), %d workers; stderr:\n%s",
                     bad[i], cpus, warnings, workers, c.err);
    }
    /* a good value: no warning, and it is used */
    body_spec good = {.body = body_env_workers, .env = "STRAND_WORKERS=1"};
    test_child c;
    run_spec("STRAND_WORKERS=1", &good, 30, &c);
    assert_null(strstr(c.err, "warning"));
    assert_non_null(strstr(c.err, "workers=1\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_poll_fd),
        cmocka_unit_test(test_run_host),
        cmocka_unit_test(test_workers_einval),
        cmocka_unit_test(test_bad_workers_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
