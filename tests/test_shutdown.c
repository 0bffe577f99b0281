/*
 * test_shutdown.c - strand_shutdown ends the strands: 10,000 strands parked in assorted
 * calls all see -ECANCELED and the call returns within a second; init/run/shutdown
 * repeated many times in one process, with parked strands each time; a strand that will
 * not end is listed and the call returns -ETIMEDOUT after shutdown_ms (in a child
 * process); from inside a strand it returns -EDEADLK; a negative shutdown_ms is refused;
 * STRAND_REPORT=1 prints the run's summary at exit.
 */
// ctest-timeout: 300
#include "test_util.h"

#include <stdatomic.h>
#include <unistd.h>

#define MS 1000000LL

typedef struct park {
    strand_chan *ch;
    strand_mutex mx;
    strand_cond cv;
    strand_mutex cmx;
    strand_wg wg;
    strand_sem sem;
    int pipefd[2];
    atomic_int started, cancelled, other;
} park;

static park P;

/* Shielded: ends only once its joiner's join has returned (so that join can only have
 * been ended by the cancel); frees the flag it was given. */
static void *slow_child(void *arg)
{
    atomic_int *joined = arg;
    strand_cancel_shield(1);
    while (!atomic_load(joined))
        strand_sleep(1 * MS);
    free(joined);
    return NULL;
}

static void *parked(void *arg)
{
    intptr_t k = (intptr_t)arg;
    atomic_fetch_add(&P.started, 1);
    int rc = 0, v;
    char b[4];
    switch (k % 10) {
    case 0: rc = strand_sleep(100000 * MS); break;
    case 1: rc = strand_chan_recv(P.ch, &v, STRAND_FOREVER); break;
    case 2: rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER); break;
    case 3: rc = strand_mutex_lock(&P.mx, STRAND_FOREVER); break;
    case 4:
        strand_mutex_lock(&P.cmx, STRAND_FOREVER);
        rc = strand_cond_wait(&P.cv, &P.cmx, STRAND_FOREVER);
        strand_mutex_unlock(&P.cmx);
        break;
    case 5: rc = strand_wg_wait(&P.wg, STRAND_FOREVER); break;
    case 6: rc = strand_sem_wait(&P.sem, STRAND_FOREVER); break;
    case 7: { /* a join of its own child, which outlives the join */
        atomic_int *joined = calloc(1, sizeof *joined);
        int64_t c = strand_spawn(slow_child, joined);
        rc = strand_join(c, NULL);
        atomic_store(joined, 1);
        break;
    }
    case 8: rc = (int)strand_read(P.pipefd[0], b, sizeof b, STRAND_FOREVER); break;
    case 9: {
        strand_select_case c[1] = { { .chan = P.ch, .op = STRAND_SELECT_RECV, .elem = &v } };
        rc = strand_select(c, 1, STRAND_FOREVER);
        break;
    }
    }
    if (rc == -ECANCELED)
        atomic_fetch_add(&P.cancelled, 1);
    else
        atomic_fetch_add(&P.other, 1);
    return NULL;
}

static void *holder(void *arg)
{
    (void)arg;
    strand_mutex_lock(&P.mx, STRAND_FOREVER); /* held until the strand ends */
    int rc = strand_sleep(100000 * MS);
    if (rc == -ECANCELED)
        atomic_fetch_add(&P.cancelled, 1);
    return NULL;
}

static void setup(int n)
{
    memset(&P, 0, sizeof P);
    assert_int_equal(strand_chan_create(&P.ch, sizeof(int), 0), 0);
    strand_wg_init(&P.wg);
    strand_wg_add(&P.wg, 1);
    assert_int_equal(pipe(P.pipefd), 0);
    assert_true(strand_spawn(parked, (void *)(intptr_t)0) > 0);
    assert_true(strand_spawn(holder, NULL) > 0);
    while (strand_mutex_trylock(&P.mx) == 0) { /* the holder must hold it first */
        strand_mutex_unlock(&P.mx);
        usleep(100);
    }
    for (int i = 1; i < n; i++)
        assert_true(strand_spawn(parked, (void *)(intptr_t)i) > 0);
    while (atomic_load(&P.started) < n)
        usleep(1000);
    usleep(20000); /* let them park */
}

static void teardown(void)
{
    strand_chan_release(P.ch);
    strand_fd_close(P.pipefd[0]);
    strand_fd_close(P.pipefd[1]);
}

static void test_shutdown_ends_parked(void **state)
{
    (void)state;
    test_deadline(120);
    strand_config cfg = { .workers = 2 };
    assert_int_equal(strand_init(&cfg), 0);
    int n = (int)test_scale(10000, 1000);
    setup(n);
    int64_t t0 = strand_now();
    assert_int_equal(strand_shutdown(), 0);
    int64_t took = strand_now() - t0;
    print_message("shutdown of %d parked strands: %.1f ms\n", n, (double)took / 1e6);
    if (!test_is_small())
        assert_true(took < 1000 * MS);
    /* every one saw -ECANCELED (the holder included) */
    assert_int_equal(atomic_load(&P.other), 0);
    assert_int_equal(atomic_load(&P.cancelled), n + 1);
    struct strand_stats st;
    assert_int_equal(strand_stats(&st), 0);
    assert_int_equal(st.active, 0);
    teardown();
}

static void *quick(void *arg)
{
    (void)arg;
    assert_int_equal(strand_shutdown(), -EDEADLK);
    return (void *)7;
}

static void test_repeat_init_run_shutdown(void **state)
{
    (void)state;
    test_deadline(120);
    int rounds = (int)test_scale(30, 6);
    for (int r = 0; r < rounds; r++) {
        strand_config cfg = { .workers = 1 + r % 2 };
        assert_int_equal(strand_init(&cfg), 0);
        setup(50);
        void *res = NULL;
        int64_t id = strand_spawn(quick, NULL);
        assert_true(id > 0);
        assert_int_equal(strand_join(id, &res), 0); /* from this plain thread */
        assert_ptr_equal(res, (void *)7);
        assert_int_equal(strand_shutdown(), 0);
        assert_int_equal(atomic_load(&P.cancelled), 51);
        teardown();
        assert_int_equal(strand_shutdown(), 0); /* not running: nothing to do */
    }
    /* and once more lazily, as a program that never calls strand_init */
    void *res = NULL;
    assert_int_equal(strand_run(quick, NULL, &res), 0);
    assert_ptr_equal(res, (void *)7);
    assert_int_equal(strand_shutdown(), 0);
}

static void *stubborn(void *arg)
{
    (void)arg;
    strand_cancel_shield(1);
    strand_sleep(100000 * MS);
    return NULL;
}

static void laggard_child(void *arg)
{
    (void)arg;
    strand_config cfg = { .workers = 2, .shutdown_ms = 50 };
    if (strand_init(&cfg) != 0)
        _exit(3);
    strand_attr a = { .name = "stubborn" };
    strand_spawn_attr(stubborn, NULL, &a);
    usleep(20000);
    int64_t t0 = strand_now();
    int rc = strand_shutdown();
    int64_t took = strand_now() - t0;
    _exit(rc == -ETIMEDOUT && took >= 50 * MS ? 0 : 4);
}

static void test_laggard_listed(void **state)
{
    (void)state;
    test_child c;
    assert_int_equal(test_child_run(laggard_child, NULL, 60, &c), 0);
    assert_true(c.exited);
    assert_int_equal(c.status, 0);
    assert_non_null(strstr(c.err, "abandoned"));
    assert_non_null(strstr(c.err, "\"stubborn\""));
    assert_non_null(strstr(c.err, "timer"));
}

static void *one_failure(void *arg)
{
    (void)arg;
    strand_fail(1);
}

static void report_child(void *arg)
{
    (void)arg;
    setenv("STRAND_REPORT", "1", 1);
    for (int i = 0; i < 3; i++) /* the report counts the whole process */
        if (strand_run(one_failure, NULL, NULL) != 0 || strand_shutdown() != 0)
            _exit(3);
    exit(0); /* atexit handlers run */
}

static void test_exit_report(void **state)
{
    (void)state;
    test_child c;
    assert_int_equal(test_child_run(report_child, NULL, 60, &c), 0);
    assert_true(c.exited);
    assert_int_equal(c.status, 0);
    assert_non_null(strstr(c.err, "strand report: uptime "));
    assert_non_null(strstr(c.err, "strands spawned 3, completed 3, live 0"));
    assert_non_null(strstr(c.err, "supervisor restarts 0"));
}

static void test_bad_config(void **state)
{
    (void)state;
    strand_config cfg = { .shutdown_ms = -1 };
    assert_int_equal(strand_init(&cfg), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_laggard_listed), /* forks: before any runtime starts */
        cmocka_unit_test(test_exit_report),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_shutdown_ends_parked),
        cmocka_unit_test(test_repeat_init_run_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
