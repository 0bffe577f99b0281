/*
 * test_runq.c - the per-worker run queue (src/sched_runq.h) on its own, without a runtime:
 * FIFO order, a full ring refusing a put (the caller's overflow path), a grab taking the
 * older half, and the owner pushing and popping against several thieves grabbing, many
 * times over, with every strand taken exactly once; the same for the spawn deque (owner
 * newest first, thieves oldest first).
 *
 * The ring only stores pointers: the "strands" here are addresses of bytes of a token array
 * (never dereferenced), so the test can tell which was taken how often.
 */
// ctest-timeout: 120
#include "test_util.h"

#include "sched_runq.h"

#include <pthread.h>
#include <stdatomic.h>

#define SIZE STRAND__RUNQ_SIZE

static char tokens[1 << 20];

static struct strand *tok(size_t i)
{
    return (struct strand *)(void *)&tokens[i];
}

static size_t idx(struct strand *s)
{
    return (size_t)((char *)(void *)s - tokens);
}

static strand__runq *runq_new(void)
{
    strand__runq *q = aligned_alloc(STRAND__CACHELINE, sizeof *q);
    assert_non_null(q);
    memset(q, 0, sizeof *q);
    return q;
}

static void test_fifo(void **state)
{
    (void)state;
    strand__runq *q = runq_new();
    assert_true(strand__runq_empty(q));
    assert_null(strand__runq_get(q));
    /* several laps, so the indexes wrap around the ring many times */
    size_t next_in = 0, next_out = 0;
    for (int lap = 0; lap < 1000; lap++) {
        int n = 1 + lap % SIZE;
        for (int i = 0; i < n; i++)
            assert_true(strand__runq_put(q, tok(next_in++)));
        assert_false(strand__runq_empty(q));
        for (int i = 0; i < n; i++)
            assert_int_equal(idx(strand__runq_get(q)), next_out++);
        assert_true(strand__runq_empty(q));
        assert_null(strand__runq_get(q));
    }
    free(q);
}

static void test_full_and_grab(void **state)
{
    (void)state;
    strand__runq *q = runq_new();
    for (size_t i = 0; i < SIZE; i++)
        assert_true(strand__runq_put(q, tok(i)));
    assert_false(strand__runq_put(q, tok(SIZE))); /* full: the caller overflows */
    struct strand *batch[SIZE / 2];
    /* a full ring gives exactly half, the oldest, in order */
    assert_int_equal(strand__runq_grab(q, batch), SIZE / 2);
    for (size_t i = 0; i < SIZE / 2; i++)
        assert_int_equal(idx(batch[i]), i);
    /* room again: the put that failed now succeeds, behind the rest */
    assert_true(strand__runq_put(q, tok(SIZE)));
    for (size_t i = SIZE / 2; i <= SIZE; i++)
        assert_int_equal(idx(strand__runq_get(q)), i);
    assert_true(strand__runq_empty(q));
    /* the older half, rounded up */
    for (unsigned n = 0; n <= 9; n++) {
        for (unsigned i = 0; i < n; i++)
            assert_true(strand__runq_put(q, tok(100 + i)));
        unsigned got = strand__runq_grab(q, batch);
        assert_int_equal(got, n - n / 2);
        for (unsigned i = 0; i < got; i++)
            assert_int_equal(idx(batch[i]), 100 + i);
        while (strand__runq_get(q))
            ;
    }
    free(q);
}

static void test_shuffle_keeps_the_set(void **state)
{
    (void)state;
    strand__runq *q = runq_new();
    uint64_t rng = 12345;
    for (size_t i = 0; i < 50; i++)
        assert_true(strand__runq_put(q, tok(i)));
    char seen[50] = {0};
    bool moved = false;
    for (size_t i = 0; i < 50; i++) {
        strand__runq_shuffle(q, &rng);
        size_t k = idx(strand__runq_get(q));
        assert_true(k < 50);
        assert_int_equal(seen[k], 0);
        seen[k] = 1;
        moved |= k != i;
    }
    assert_true(moved);
    assert_true(strand__runq_empty(q));
    free(q);
}

/* ---------------------------------------------------------------- owner against thieves */

#define THIEVES 3

typedef struct race {
    strand__runq   *q;
    size_t          n;
    atomic_uchar   *taken;  /* per token: how many times taken */
    atomic_size_t   ntaken;
    atomic_int      done;   /* the owner has pushed everything */
} race;

static void take(race *r, struct strand *s)
{
    size_t i = idx(s);
    assert_true(i < r->n);
    atomic_fetch_add_explicit(&r->taken[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->ntaken, 1, memory_order_relaxed);
}

static void *thief(void *arg)
{
    race *r = arg;
    struct strand *batch[SIZE / 2];
    unsigned k = 0;
    while (!atomic_load(&r->done) || !strand__runq_empty(r->q)) {
        if (++k % 3 == 0) {
            struct strand *s = strand__runq_get(r->q);
            if (s)
                take(r, s);
            continue;
        }
        unsigned got = strand__runq_grab(r->q, batch);
        for (unsigned i = 0; i < got; i++)
            take(r, batch[i]);
    }
    return NULL;
}

/* The owner pushes every token once, pops now and then, and on a full ring grabs half of it
 * itself, as the scheduler's overflow to the global queue does. */
static void owner(race *r)
{
    struct strand *batch[SIZE / 2];
    for (size_t i = 0; i < r->n; i++) {
        while (!strand__runq_put(r->q, tok(i))) {
            unsigned got = strand__runq_grab(r->q, batch);
            for (unsigned j = 0; j < got; j++)
                take(r, batch[j]);
        }
        if (i % 7 == 0) {
            struct strand *s = strand__runq_get(r->q);
            if (s)
                take(r, s);
        }
    }
    atomic_store(&r->done, 1);
}

static void test_owner_vs_thieves(void **state)
{
    (void)state;
    test_deadline(90);
    int rounds = (int)test_scale(40, 8);
    size_t n = (size_t)test_scale(200000, 20000);
    race r = { .q = runq_new(), .n = n };
    r.taken = calloc(n, sizeof *r.taken);
    assert_non_null(r.taken);
    for (int round = 0; round < rounds; round++) {
        memset(r.q, 0, sizeof *r.q);
        memset((void *)r.taken, 0, n * sizeof *r.taken);
        atomic_store(&r.ntaken, 0);
        atomic_store(&r.done, 0);
        pthread_t th[THIEVES];
        for (int i = 0; i < THIEVES; i++)
            assert_int_equal(pthread_create(&th[i], NULL, thief, &r), 0);
        owner(&r);
        for (int i = 0; i < THIEVES; i++)
            pthread_join(th[i], NULL);
        struct strand *s;
        while ((s = strand__runq_get(r.q))) /* none should be left; take them if so */
            take(&r, s);
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&r.taken[i]) != 1)
                fail_msg("round %d: token %zu taken %u times", round, i,
                         (unsigned)atomic_load(&r.taken[i]));
        assert_int_equal(atomic_load(&r.ntaken), n);
    }
    free((void *)r.taken);
    free(r.q);
}

/* ---------------------------------------------------------------- the spawn deque */

static strand__deque *deque_new(void)
{
    strand__deque *d = aligned_alloc(STRAND__CACHELINE, sizeof *d);
    assert_non_null(d);
    memset(d, 0, sizeof *d);
    return d;
}

/* The owner pops newest first, a thief steals oldest first; a full deque refuses. */
static void test_deque_order(void **state)
{
    (void)state;
    strand__deque *d = deque_new();
    assert_null(strand__deque_pop(d));
    assert_null(strand__deque_steal(d));
    for (size_t i = 0; i < 10; i++)
        assert_true(strand__deque_push(d, tok(i)));
    assert_ptr_equal(strand__deque_pop(d), tok(9));
    assert_ptr_equal(strand__deque_steal(d), tok(0));
    assert_ptr_equal(strand__deque_pop(d), tok(8));
    assert_ptr_equal(strand__deque_steal(d), tok(1));
    for (size_t i = 7; i >= 2; i--)
        assert_ptr_equal(strand__deque_pop(d), tok(i));
    assert_true(strand__deque_empty(d));
    assert_null(strand__deque_pop(d));
    for (size_t i = 0; i < STRAND__DEQUE_SIZE; i++)
        assert_true(strand__deque_push(d, tok(i)));
    assert_false(strand__deque_push(d, tok(STRAND__DEQUE_SIZE)));
    assert_ptr_equal(strand__deque_steal(d), tok(0));
    assert_true(strand__deque_push(d, tok(STRAND__DEQUE_SIZE))); /* wrapped around */
    assert_ptr_equal(strand__deque_pop(d), tok(STRAND__DEQUE_SIZE));
    for (size_t i = 1; i < STRAND__DEQUE_SIZE; i++)
        assert_ptr_equal(strand__deque_steal(d), tok(i));
    assert_true(strand__deque_empty(d));
    free(d);
}

typedef struct drace {
    strand__deque *d;
    race           r;
} drace;

static void *deque_thief(void *arg)
{
    drace *dr = arg;
    while (!atomic_load(&dr->r.done) || !strand__deque_empty(dr->d)) {
        struct strand *s = strand__deque_steal(dr->d);
        if (s)
            take(&dr->r, s);
    }
    return NULL;
}

/* The owner pushes every token once and pops often (down to the last entry, where it races
 * the thieves for it); every token is taken exactly once. */
static void test_deque_owner_vs_thieves(void **state)
{
    (void)state;
    test_deadline(90);
    int rounds = (int)test_scale(40, 8);
    size_t n = (size_t)test_scale(200000, 20000);
    drace dr = { .d = deque_new(), .r = { .n = n } };
    dr.r.taken = calloc(n, sizeof *dr.r.taken);
    assert_non_null(dr.r.taken);
    for (int round = 0; round < rounds; round++) {
        memset(dr.d, 0, sizeof *dr.d);
        memset((void *)dr.r.taken, 0, n * sizeof *dr.r.taken);
        atomic_store(&dr.r.ntaken, 0);
        atomic_store(&dr.r.done, 0);
        pthread_t th[THIEVES];
        for (int i = 0; i < THIEVES; i++)
            assert_int_equal(pthread_create(&th[i], NULL, deque_thief, &dr), 0);
        for (size_t i = 0; i < n; i++) {
            while (!strand__deque_push(dr.d, tok(i))) {
                struct strand *s = strand__deque_pop(dr.d);
                if (s)
                    take(&dr.r, s);
            }
            for (size_t k = 0; k < (i % 3); k++) {
                struct strand *s = strand__deque_pop(dr.d);
                if (s)
                    take(&dr.r, s);
            }
        }
        atomic_store(&dr.r.done, 1);
        for (int i = 0; i < THIEVES; i++)
            pthread_join(th[i], NULL);
        struct strand *s;
        while ((s = strand__deque_pop(dr.d)))
            take(&dr.r, s);
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&dr.r.taken[i]) != 1)
                fail_msg("round %d: token %zu taken %u times", round, i,
                         (unsigned)atomic_load(&dr.r.taken[i]));
        assert_int_equal(atomic_load(&dr.r.ntaken), n);
    }
    free((void *)dr.r.taken);
    free(dr.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_full_and_grab),
        cmocka_unit_test(test_shuffle_keeps_the_set),
        cmocka_unit_test(test_owner_vs_thieves),
        cmocka_unit_test(test_deque_order),
        cmocka_unit_test(test_deque_owner_vs_thieves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
