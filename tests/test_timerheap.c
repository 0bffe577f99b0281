/*
 * test_timerheap.c - the timer facility (src/timer.c) on its own, without a runtime (so
 * nothing but this test runs timers): due timers run in deadline order, the earliest
 * deadline is tracked through starts, stops and runs, start says when it moved its heap's
 * earliest deadline, a fired timer's stop says so, and many random operations agree with a
 * simple model. Deadlines are plain numbers here: strand__timers_run(now) takes `now` from
 * the caller, so the test decides what is due.
 *
 * One thread starts every timer of the model tests, so they all live in one heap (a heap is
 * picked per thread); the last test starts from several threads, one heap each, and checks
 * the process-wide earliest deadline.
 */
// ctest-timeout: 120
#include "test_util.h"

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

#define BASE ((int64_t)1 << 40) /* far from 0 and from "now": only the test's `now` matters */

static int64_t fired_when[1 << 16];
static int nfired;

static void record(strand__timer *t)
{
    fired_when[nfired++] = t->when;
    int *flag = t->arg;
    if (flag)
        *flag += 1;
}

static void test_run_in_order(void **state)
{
    (void)state;
    enum { N = 2000 };
    strand__timer *t = calloc(N, sizeof *t);
    int *fired = calloc(N, sizeof *fired);
    assert_non_null(t);
    assert_non_null(fired);
    unsigned seed = 7;
    for (int i = 0; i < N; i++)
        strand__timer_start(&t[i], BASE + rand_r(&seed) % 100000, record, &fired[i]);
    nfired = 0;
    assert_true(strand__timers_run(BASE - 1) >= BASE); /* nothing due yet */
    assert_int_equal(nfired, 0);
    strand__timers_run(BASE + 50000);
    int first_batch = nfired;
    strand__timers_run(BASE + 100000);
    assert_int_equal(nfired, N);
    assert_true(first_batch > 0 && first_batch < N);
    for (int i = 1; i < N; i++)
        assert_true(fired_when[i - 1] <= fired_when[i]);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fired[i], 1);
        assert_false(strand__timer_stop(&t[i])); /* fired: stop says so */
    }
    assert_int_equal(strand__timers_next(), -1);
    free(t);
    free(fired);
}

static void test_earliest_tracking(void **state)
{
    (void)state;
    strand__timer a, b, c, d;
    assert_int_equal(strand__timers_next(), -1);
    assert_true(strand__timer_start(&a, BASE + 500, record, NULL));   /* empty heap */
    assert_int_equal(strand__timers_next(), BASE + 500);
    assert_false(strand__timer_start(&b, BASE + 900, record, NULL));  /* later */
    assert_false(strand__timer_start(&c, BASE + 500, record, NULL));  /* a tie is not earlier */
    assert_true(strand__timer_start(&d, BASE + 100, record, NULL));   /* earlier */
    assert_int_equal(strand__timers_next(), BASE + 100);
    assert_true(strand__timer_stop(&d));
    assert_int_equal(strand__timers_next(), BASE + 500);
    assert_false(strand__timer_stop(&d)); /* already stopped */
    nfired = 0;
    assert_int_equal(strand__timers_run(BASE + 500), BASE + 900); /* a and c fire */
    assert_int_equal(nfired, 2);
    assert_false(strand__timer_stop(&a));
    assert_false(strand__timer_stop(&c));
    assert_true(strand__timer_stop(&b));
    assert_int_equal(strand__timers_next(), -1);
    /* a negative deadline is never due: pending, but no deadline anyone waits for */
    assert_true(strand__timer_start(&a, -1, record, NULL));
    nfired = 0;
    assert_int_equal(strand__timers_run(INT64_MAX - 1), -1);
    assert_int_equal(nfired, 0);
    assert_true(strand__timer_stop(&a));
}

/* ---------------------------------------------------------------- against a model */

enum { M_IDLE, M_PENDING, M_DONE };

static void test_random_against_model(void **state)
{
    (void)state;
    test_deadline(60);
    enum { N = 512 };
    strand__timer t[N];
    int model[N];
    int64_t when[N];
    int fired[N];
    memset(t, 0, sizeof t); /* IDLE: a stop before any start is legal */
    memset(model, 0, sizeof model);
    memset(fired, 0, sizeof fired);
    unsigned seed = 2024;
    int64_t now = BASE;
    long ops = test_scale(400000, 50000);
    for (long op = 0; op < ops; op++) {
        int i = rand_r(&seed) % N;
        int what = rand_r(&seed) % 10;
        if (what < 5 && model[i] != M_PENDING) {
            int64_t w = now + rand_r(&seed) % 10000;
            int64_t min = INT64_MAX;
            for (int k = 0; k < N; k++)
                if (model[k] == M_PENDING && when[k] < min)
                    min = when[k];
            bool earliest = strand__timer_start(&t[i], w, record, &fired[i]);
            assert_int_equal(earliest, w < min);
            model[i] = M_PENDING;
            when[i] = w;
        } else if (what < 8) {
            bool was = strand__timer_stop(&t[i]);
            assert_int_equal(was, model[i] == M_PENDING);
            if (model[i] == M_PENDING)
                model[i] = M_IDLE;
        } else {
            now += rand_r(&seed) % 3000;
            int before[N];
            memcpy(before, fired, sizeof fired);
            nfired = 0;
            int64_t next = strand__timers_run(now);
            int64_t min = INT64_MAX;
            int due = 0;
            for (int k = 0; k < N; k++) {
                if (model[k] != M_PENDING)
                    continue;
                if (when[k] <= now) {
                    model[k] = M_DONE;
                    due++;
                    assert_int_equal(fired[k], before[k] + 1);
                } else if (when[k] < min) {
                    min = when[k];
                }
            }
            assert_int_equal(nfired, due);
            for (int k = 1; k < nfired; k++)
                assert_true(fired_when[k - 1] <= fired_when[k]);
            assert_int_equal(next, min == INT64_MAX ? -1 : min);
        }
        int64_t min = INT64_MAX;
        for (int k = 0; k < N; k++)
            if (model[k] == M_PENDING && when[k] < min)
                min = when[k];
        if (strand__timers_next() != (min == INT64_MAX ? -1 : min))
            fail_msg("op %ld: next %lld, model %lld", op, (long long)strand__timers_next(),
                     (long long)min);
    }
    for (int k = 0; k < N; k++)
        strand__timer_stop(&t[k]);
    assert_int_equal(strand__timers_next(), -1);
}

/* ---------------------------------------------------------------- several heaps */

#define THREADS 4

static strand__timer mt[THREADS];
static pthread_barrier_t barrier;

static void *start_one(void *arg)
{
    intptr_t i = (intptr_t)arg;
    /* each thread has its own heap, so each first start is its heap's earliest */
    assert_true(strand__timer_start(&mt[i], BASE + 1000 * (THREADS - i), record, NULL));
    pthread_barrier_wait(&barrier);
    return NULL;
}

static void test_heaps_of_threads(void **state)
{
    (void)state;
    test_deadline(30);
    pthread_barrier_init(&barrier, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, start_one, (void *)i), 0);
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    /* the earliest over all heaps, then the next as each is stopped */
    for (int i = THREADS - 1; i >= 0; i--) {
        assert_int_equal(strand__timers_next(), BASE + 1000 * (THREADS - i));
        assert_true(strand__timer_stop(&mt[i]));
    }
    assert_int_equal(strand__timers_next(), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_in_order),
        cmocka_unit_test(test_earliest_tracking),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_heaps_of_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
