/*
 * test_sync.c - strand mutex, condition variable, wait group and semaphore: mutual
 * exclusion under 2 workers (a plain counter stays exact), ownership rules, zeroed structs,
 * timeouts (and condition-variable timeouts racing signals), plain threads mixed with
 * strands, bounded concurrency under a semaphore, and every bad-input code.
 */
// ctest-timeout: 300
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>

#define SPAWN(fn, arg)                                                                   \
    ({                                                                                   \
        int64_t id_ = strand_spawn((fn), (arg));                                         \
        assert_true(id_ > 0);                                                            \
        id_;                                                                             \
    })
#define JOIN(id) assert_int_equal(strand_join((id), NULL), 0)
#define MS 1000000LL

/* ---------------------------------------------------------------- bad input */

static void *holder(void *arg)
{
    strand_mutex *m = arg;
    assert_int_equal(strand_mutex_lock(m, STRAND_FOREVER), 0);
    strand_sleep(20 * MS);
    assert_int_equal(strand_mutex_unlock(m), 0);
    return NULL;
}

static void *bad_main(void *arg)
{
    (void)arg;
    assert_int_equal(strand_mutex_init(NULL), -EINVAL);
    assert_int_equal(strand_mutex_lock(NULL, 0), -EINVAL);
    assert_int_equal(strand_mutex_trylock(NULL), -EINVAL);
    assert_int_equal(strand_mutex_unlock(NULL), -EINVAL);
    assert_int_equal(strand_mutex_destroy(NULL), -EINVAL);
    assert_int_equal(strand_cond_init(NULL), -EINVAL);
    assert_int_equal(strand_cond_signal(NULL), -EINVAL);
    assert_int_equal(strand_cond_broadcast(NULL), -EINVAL);
    assert_int_equal(strand_cond_destroy(NULL), -EINVAL);
    assert_int_equal(strand_wg_init(NULL), -EINVAL);
    assert_int_equal(strand_wg_add(NULL, 1), -EINVAL);
    assert_int_equal(strand_wg_done(NULL), -EINVAL);
    assert_int_equal(strand_wg_wait(NULL, 0), -EINVAL);
    assert_int_equal(strand_wg_destroy(NULL), -EINVAL);
    assert_int_equal(strand_sem_init(NULL, 1), -EINVAL);
    assert_int_equal(strand_sem_wait(NULL, 0), -EINVAL);
    assert_int_equal(strand_sem_post(NULL), -EINVAL);
    assert_int_equal(strand_sem_destroy(NULL), -EINVAL);

    /* a zeroed mutex is an unlocked one */
    strand_mutex m;
    memset(&m, 0, sizeof m);
    assert_int_equal(strand_mutex_unlock(&m), -EPERM); /* not held */
    assert_int_equal(strand_mutex_trylock(&m), 0);
    assert_int_equal(strand_mutex_trylock(&m), -EBUSY);
    assert_int_equal(strand_mutex_lock(&m, 0), -EDEADLK); /* held by us */
    assert_int_equal(strand_mutex_lock(&m, STRAND_FOREVER), -EDEADLK);
    assert_int_equal(strand_mutex_destroy(&m), -EBUSY);
    assert_int_equal(strand_mutex_unlock(&m), 0);
    assert_int_equal(strand_mutex_unlock(&m), -EPERM);
    assert_int_equal(strand_mutex_destroy(&m), 0);

    /* held by another strand: not ours to unlock; a deadline runs out */
    assert_int_equal(strand_mutex_init(&m), 0);
    int64_t h = SPAWN(holder, &m);
    while (strand_mutex_trylock(&m) == 0) { /* until the holder has it */
        assert_int_equal(strand_mutex_unlock(&m), 0);
        strand_yield();
    }
    assert_int_equal(strand_mutex_unlock(&m), -EPERM);
    assert_int_equal(strand_mutex_trylock(&m), -EBUSY);
    assert_int_equal(strand_mutex_lock(&m, 0), -EAGAIN);
    int64_t t0 = strand_now();
    assert_int_equal(strand_mutex_lock(&m, t0 + 5 * MS), -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 4 * MS);
    assert_int_equal(strand_mutex_lock(&m, STRAND_FOREVER), 0); /* handed over at unlock */
    assert_int_equal(strand_mutex_unlock(&m), 0);
    JOIN(h);

    /* cond: the mutex must be held; deadline 0 does not wait */
    strand_cond c;
    memset(&c, 0, sizeof c);
    assert_int_equal(strand_cond_wait(NULL, &m, 0), -EINVAL);
    assert_int_equal(strand_cond_wait(&c, NULL, 0), -EINVAL);
    assert_int_equal(strand_cond_wait(&c, &m, STRAND_FOREVER), -EPERM);
    assert_int_equal(strand_mutex_lock(&m, STRAND_FOREVER), 0);
    assert_int_equal(strand_cond_wait(&c, &m, 0), -EAGAIN);
    t0 = strand_now();
    assert_int_equal(strand_cond_wait(&c, &m, t0 + 5 * MS), -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 4 * MS);
    assert_int_equal(strand_mutex_unlock(&m), 0); /* re-acquired before returning */
    assert_int_equal(strand_cond_signal(&c), 0);  /* nobody waiting: fine */
    assert_int_equal(strand_cond_broadcast(&c), 0);
    assert_int_equal(strand_cond_destroy(&c), 0);

    /* wait group: a zeroed one is at zero; going negative is refused, unchanged */
    strand_wg g;
    memset(&g, 0, sizeof g);
    assert_int_equal(strand_wg_wait(&g, 0), 0);
    assert_int_equal(strand_wg_done(&g), -EINVAL);
    assert_int_equal(strand_wg_add(&g, 2), 0);
    assert_int_equal(strand_wg_add(&g, -3), -EINVAL);
    assert_int_equal(strand_wg_add(&g, INT64_MAX), -EINVAL); /* overflow */
    assert_int_equal(strand_wg_wait(&g, 0), -EAGAIN);
    assert_int_equal(strand_wg_wait(&g, strand_now() + 2 * MS), -ETIMEDOUT);
    assert_int_equal(strand_wg_done(&g), 0);
    assert_int_equal(strand_wg_done(&g), 0);
    assert_int_equal(strand_wg_wait(&g, 0), 0);
    assert_int_equal(strand_wg_destroy(&g), 0);

    /* semaphore */
    strand_sem s;
    assert_int_equal(strand_sem_init(&s, -1), -EINVAL);
    assert_int_equal(strand_sem_init(&s, 2), 0);
    assert_int_equal(strand_sem_wait(&s, 0), 0);
    assert_int_equal(strand_sem_wait(&s, 0), 0);
    assert_int_equal(strand_sem_wait(&s, 0), -EAGAIN);
    assert_int_equal(strand_sem_wait(&s, strand_now() + 2 * MS), -ETIMEDOUT);
    assert_int_equal(strand_sem_post(&s), 0);
    assert_int_equal(strand_sem_wait(&s, STRAND_FOREVER), 0);
    assert_int_equal(strand_sem_destroy(&s), 0);
    memset(&s, 0, sizeof s); /* zeroed: value 0 */
    assert_int_equal(strand_sem_wait(&s, 0), -EAGAIN);
    return NULL;
}

static void test_bad_input(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(bad_main, NULL);
}

/* ---------------------------------------------------------------- mutual exclusion */

static strand_mutex g_mx; /* zero-initialised static: valid without init */

struct excl {
    long          iters;
    long          counter; /* deliberately not atomic */
    atomic_int    inside;
};

static void *excl_worker(void *arg)
{
    struct excl *e = arg;
    for (long i = 0; i < e->iters; i++) {
        assert_int_equal(strand_mutex_lock(&g_mx, STRAND_FOREVER), 0);
        assert_int_equal(atomic_fetch_add(&e->inside, 1), 0);
        long c = e->counter;
        if (i % 128 == 0)
            strand_yield(); /* park others on the mutex while we hold it */
        e->counter = c + 1;
        atomic_fetch_sub(&e->inside, 1);
        assert_int_equal(strand_mutex_unlock(&g_mx), 0);
    }
    return NULL;
}

static void *excl_thread(void *arg)
{
    return excl_worker(arg);
}

static void *excl_main(void *arg)
{
    struct excl *e = arg;
    int64_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = SPAWN(excl_worker, e);
    for (int i = 0; i < 8; i++)
        JOIN(ids[i]);
    return NULL;
}

static void test_mutex_exclusion(void **state)
{
    (void)state;
    test_deadline(120);
    struct excl e;
    memset(&e, 0, sizeof e);
    e.iters = test_scale(50000, 5000);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, excl_thread, &e), 0); /* a plain thread too */
    test_run_strand(excl_main, &e);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(e.counter, 9 * e.iters);
    assert_int_equal(strand_mutex_destroy(&g_mx), 0);
}

/* ---------------------------------------------------------------- condition variable */

struct queue {
    strand_mutex m;
    strand_cond  nonempty;
    long         items;
    long         produced, consumed;
    long         timeouts;
    int          done;
};

static void *cv_consumer(void *arg)
{
    struct queue *q = arg;
    assert_int_equal(strand_mutex_lock(&q->m, STRAND_FOREVER), 0);
    for (;;) {
        while (q->items == 0 && !q->done) {
            /* short deadlines so timeouts race with signals */
            int rc = strand_cond_wait(&q->nonempty, &q->m, strand_now() + (strand_self() % 3 + 1) * 100000);
            assert_true(rc == 0 || rc == -ETIMEDOUT);
            if (rc == -ETIMEDOUT)
                q->timeouts++; /* we hold the mutex again even after a timeout */
        }
        if (q->items == 0 && q->done)
            break;
        q->items--;
        q->consumed++;
    }
    assert_int_equal(strand_mutex_unlock(&q->m), 0);
    return NULL;
}

static void *cv_main(void *arg)
{
    struct queue *q = arg;
    int64_t ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = SPAWN(cv_consumer, q);
    long n = test_scale(100000, 10000);
    for (long i = 0; i < n; i++) {
        assert_int_equal(strand_mutex_lock(&q->m, STRAND_FOREVER), 0);
        q->items++;
        q->produced++;
        assert_int_equal(strand_mutex_unlock(&q->m), 0);
        if (i % 3 == 0)
            assert_int_equal(strand_cond_broadcast(&q->nonempty), 0);
        else
            assert_int_equal(strand_cond_signal(&q->nonempty), 0);
        if (i % 16 == 0)
            strand_yield();
    }
    /* Then slowly, so the consumers' short deadlines expire around the signals. */
    for (long i = 0; i < 300; i++) {
        assert_int_equal(strand_mutex_lock(&q->m, STRAND_FOREVER), 0);
        q->items++;
        assert_int_equal(strand_mutex_unlock(&q->m), 0);
        assert_int_equal(strand_cond_signal(&q->nonempty), 0);
        strand_sleep(150000 + (i % 5) * 50000);
    }
    n += 300;
    assert_int_equal(strand_mutex_lock(&q->m, STRAND_FOREVER), 0);
    q->done = 1;
    assert_int_equal(strand_mutex_unlock(&q->m), 0);
    assert_int_equal(strand_cond_broadcast(&q->nonempty), 0);
    for (int i = 0; i < 4; i++)
        JOIN(ids[i]);
    assert_int_equal(q->consumed, n);
    assert_int_equal(q->items, 0);
    print_message("[ info ] cond: %ld items, %ld timeouts\n", n, q->timeouts);
    assert_true(q->timeouts > 0);
    assert_int_equal(strand_cond_destroy(&q->nonempty), 0);
    return NULL;
}

static void test_cond_timeouts_race_signals(void **state)
{
    (void)state;
    test_deadline(120);
    struct queue q;
    memset(&q, 0, sizeof q);
    test_run_strand(cv_main, &q);
}

/* A plain thread waits on a condition a strand signals. */
struct flag {
    strand_mutex m;
    strand_cond  c;
    int          set;
};

static void *flag_thread(void *arg)
{
    struct flag *f = arg;
    assert_int_equal(strand_mutex_lock(&f->m, STRAND_FOREVER), 0);
    while (!f->set)
        assert_int_equal(strand_cond_wait(&f->c, &f->m, STRAND_FOREVER), 0);
    assert_int_equal(strand_mutex_unlock(&f->m), 0);
    return NULL;
}

static void *flag_main(void *arg)
{
    struct flag *f = arg;
    strand_sleep(10 * MS);
    assert_int_equal(strand_mutex_lock(&f->m, STRAND_FOREVER), 0);
    f->set = 1;
    assert_int_equal(strand_cond_signal(&f->c), 0);
    assert_int_equal(strand_mutex_unlock(&f->m), 0);
    return NULL;
}

static void test_cond_plain_thread(void **state)
{
    (void)state;
    test_deadline(20);
    struct flag f;
    memset(&f, 0, sizeof f);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flag_thread, &f), 0);
    test_run_strand(flag_main, &f);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* ---------------------------------------------------------------- wait group */

struct wgctx {
    strand_wg   wg;
    atomic_long done;
};

static void *wg_child(void *arg)
{
    struct wgctx *w = arg;
    if (strand_self() % 2)
        strand_sleep(1 * MS);
    atomic_fetch_add(&w->done, 1);
    assert_int_equal(strand_wg_done(&w->wg), 0);
    return NULL;
}

static void *wg_waiter(void *arg)
{
    struct wgctx *w = arg;
    assert_int_equal(strand_wg_wait(&w->wg, STRAND_FOREVER), 0);
    assert_int_equal(atomic_load(&w->done), 100);
    return NULL;
}

static void *wg_main(void *arg)
{
    (void)arg;
    struct wgctx w;
    memset(&w, 0, sizeof w);
    assert_int_equal(strand_wg_init(&w.wg), 0);
    assert_int_equal(strand_wg_add(&w.wg, 100), 0);
    int64_t waiters[3];
    for (int i = 0; i < 3; i++)
        waiters[i] = SPAWN(wg_waiter, &w);
    for (int i = 0; i < 100; i++) {
        int64_t id = strand_spawn_attr(wg_child, &w, &(strand_attr){ .detached = 1 });
        assert_true(id > 0);
    }
    assert_int_equal(strand_wg_wait(&w.wg, STRAND_FOREVER), 0);
    assert_int_equal(atomic_load(&w.done), 100);
    for (int i = 0; i < 3; i++)
        JOIN(waiters[i]);
    assert_int_equal(strand_wg_destroy(&w.wg), 0);
    return NULL;
}

static void test_wait_group(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(wg_main, NULL);
}

/* ---------------------------------------------------------------- semaphore */

struct semctx {
    strand_sem sem;
    atomic_int now, peak;
};

static void *sem_user(void *arg)
{
    struct semctx *s = arg;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(strand_sem_wait(&s->sem, STRAND_FOREVER), 0);
        int n = atomic_fetch_add(&s->now, 1) + 1;
        int p = atomic_load(&s->peak);
        while (n > p && !atomic_compare_exchange_weak(&s->peak, &p, n))
            ;
        assert_true(n <= 3);
        strand_sleep(50000); /* park while holding a unit, so the others pile up */
        atomic_fetch_sub(&s->now, 1);
        assert_int_equal(strand_sem_post(&s->sem), 0);
    }
    return NULL;
}

static void *sem_main(void *arg)
{
    (void)arg;
    struct semctx s;
    memset(&s, 0, sizeof s);
    assert_int_equal(strand_sem_init(&s.sem, 3), 0);
    int64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = SPAWN(sem_user, &s);
    for (int i = 0; i < 20; i++)
        JOIN(ids[i]);
    print_message("[ info ] semaphore peak %d\n", atomic_load(&s.peak));
    assert_int_equal(atomic_load(&s.peak), 3);
    /* all three units are back */
    for (int i = 0; i < 3; i++)
        assert_int_equal(strand_sem_wait(&s.sem, 0), 0);
    assert_int_equal(strand_sem_wait(&s.sem, 0), -EAGAIN);
    return NULL;
}

static void test_semaphore(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(sem_main, NULL);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_mutex_exclusion),
        cmocka_unit_test(test_cond_timeouts_race_signals),
        cmocka_unit_test(test_cond_plain_thread),
        cmocka_unit_test(test_wait_group),
        cmocka_unit_test(test_semaphore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
