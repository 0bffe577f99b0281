/*
 * test_globalq.c - the global run queue (src/sched_globalq.h) on its own, without a
 * runtime: priority order (and the low-first pass), FIFO within a priority across the rings'
 * growth, the fairness bound of one take (len/share + 1, at most half a ring), a full
 * destination ring keeping the rest queued, and producers against consumers with every
 * strand taken exactly once.
 *
 * "Strands" are control blocks from calloc: the queue writes s->next only when it spills
 * (a ring that cannot grow), and reads nothing else of them.
 */
// ctest-timeout: 120
#include "test_util.h"

#include "sched_globalq.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct rings {
    strand__runq q[STRAND__PRIOS];
} rings;

static rings *rings_new(void)
{
    rings *r = aligned_alloc(STRAND__CACHELINE, sizeof *r);
    assert_non_null(r);
    memset(r, 0, sizeof *r);
    return r;
}

static struct strand *strands_new(size_t n)
{
    struct strand *v = calloc(n, sizeof *v);
    assert_non_null(v);
    return v;
}

/* Take everything out of rq, in priority order, appending to out[]; how many. */
static size_t drain(rings *r, struct strand **out)
{
    size_t k = 0;
    for (int p = 0; p < STRAND__PRIOS; p++) {
        struct strand *s;
        while ((s = strand__runq_get(&r->q[p])))
            out[k++] = s;
    }
    return k;
}

static void test_priority_order(void **state)
{
    (void)state;
    strand__globalq q;
    strand__globalq_init(&q);
    struct strand *v = strands_new(40);
    /* ten of each priority, interleaved */
    for (int i = 0; i < 40; i++)
        strand__globalq_push(&q, &v[i], i % STRAND__PRIOS);
    assert_int_equal(strand__globalq_len(&q), 40);
    rings *r = rings_new();
    unsigned mask = 0;
    /* one worker: a take may move everything (len/1 + 1) */
    struct strand *first = strand__globalq_take(&q, 1, r->q, &mask, false);
    assert_ptr_equal(first, &v[STRAND_PRIO_MAX]); /* the oldest MAX strand */
    assert_int_equal(strand__globalq_len(&q), 0);
    assert_int_equal(mask, (1u << STRAND_PRIO_MAX) | (1u << STRAND_PRIO_HIGH) |
                               (1u << STRAND_PRIO_LOW));
    /* each ring got its priority's strands, oldest first */
    for (int p = 0; p < STRAND__PRIOS; p++) {
        int i = p == STRAND_PRIO_MAX ? p + STRAND__PRIOS : p;
        struct strand *s;
        while ((s = strand__runq_get(&r->q[p]))) {
            assert_ptr_equal(s, &v[i]);
            i += STRAND__PRIOS;
        }
        assert_int_equal(i, 40 + p);
    }
    /* the anti-starvation pass starts from LOW */
    for (int i = 0; i < 40; i++)
        strand__globalq_push(&q, &v[i], i % STRAND__PRIOS);
    first = strand__globalq_take(&q, 1, r->q, &mask, true);
    assert_ptr_equal(first, &v[STRAND_PRIO_LOW]);
    struct strand *rest[40];
    assert_int_equal(drain(r, rest), 39);
    assert_null(strand__globalq_take(&q, 1, r->q, &mask, false));
    strand__globalq_destroy(&q);
    free(r);
    free(v);
}

static void test_growth_fifo(void **state)
{
    (void)state;
    strand__globalq q;
    strand__globalq_init(&q);
    size_t n = 50000; /* the first ring holds 1024: it grows several times, while non-empty */
    struct strand *v = strands_new(n);
    struct strand **out = calloc(n, sizeof *out);
    assert_non_null(out);
    rings *r = rings_new();
    unsigned mask = 0;
    size_t pushed = 0, taken = 0;
    while (taken < n) {
        for (int k = 0; k < 300 && pushed < n; k++)
            strand__globalq_push(&q, &v[pushed++], STRAND_PRIO_NORMAL);
        struct strand *s = strand__globalq_take(&q, 1, r->q, &mask, false);
        assert_non_null(s);
        out[taken++] = s;
        taken += drain(r, out + taken);
        assert_int_equal(strand__globalq_len(&q), pushed - taken);
    }
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(out[i], &v[i]);
    assert_int_equal(mask, 0);
    strand__globalq_destroy(&q);
    free(r);
    free(out);
    free(v);
}

static void test_fairness_bound(void **state)
{
    (void)state;
    strand__globalq q;
    strand__globalq_init(&q);
    struct strand *v = strands_new(2000);
    rings *r = rings_new();
    struct strand *out[STRAND__RUNQ_SIZE * STRAND__PRIOS];
    static const struct { unsigned len, share; } cases[] = {
        {1, 1}, {2, 1}, {10, 4}, {100, 4}, {100, 3}, {1000, 4}, {1000, 1}, {7, 8}, {2000, 16},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned len = cases[c].len, share = cases[c].share;
        for (unsigned i = 0; i < len; i++)
            strand__globalq_push(&q, &v[i], STRAND_PRIO_NORMAL);
        unsigned mask = 0;
        assert_non_null(strand__globalq_take(&q, share, r->q, &mask, false));
        unsigned want = len / share + 1;
        if (want > STRAND__RUNQ_SIZE / 2)
            want = STRAND__RUNQ_SIZE / 2;
        if (want > len)
            want = len;
        size_t moved = drain(r, out);
        if (moved + 1 != want)
            fail_msg("len %u share %u: took %zu, the bound is %u", len, share, moved + 1, want);
        assert_int_equal(strand__globalq_len(&q), len - want);
        while (strand__globalq_take(&q, 1, r->q, &mask, false))
            drain(r, out);
        assert_int_equal(strand__globalq_len(&q), 0);
    }
    /* a destination ring with little room: the rest stays queued, none lost */
    for (unsigned i = 0; i < STRAND__RUNQ_SIZE - 3; i++)
        assert_true(strand__runq_put(&r->q[STRAND_PRIO_NORMAL], &v[1000 + i]));
    for (unsigned i = 0; i < 100; i++)
        strand__globalq_push(&q, &v[i], STRAND_PRIO_NORMAL);
    unsigned mask = 0;
    assert_ptr_equal(strand__globalq_take(&q, 1, r->q, &mask, false), &v[0]);
    assert_int_equal(drain(r, out), STRAND__RUNQ_SIZE);
    assert_int_equal(strand__globalq_len(&q), 100 - 1 - 3);
    strand__globalq_destroy(&q);
    free(r);
    free(v);
}

/* ---------------------------------------------------------------- producers and consumers */

#define PRODUCERS 2
#define CONSUMERS 2

typedef struct race {
    strand__globalq q;
    struct strand  *v;
    size_t          per_producer;
    atomic_uchar   *taken;
    atomic_size_t   ntaken;
    atomic_int      producing;
} race;

typedef struct producer_arg {
    race  *r;
    size_t first;
} producer_arg;

static void *producer(void *arg)
{
    producer_arg *a = arg;
    race *r = a->r;
    for (size_t i = 0; i < r->per_producer; i++) {
        size_t k = a->first + i;
        strand__globalq_push(&r->q, &r->v[k], (int)(k % STRAND__PRIOS));
    }
    atomic_fetch_sub(&r->producing, 1);
    return NULL;
}

static void take(race *r, struct strand *s)
{
    size_t i = (size_t)(s - r->v);
    atomic_fetch_add_explicit(&r->taken[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->ntaken, 1, memory_order_relaxed);
}

static void *consumer(void *arg)
{
    race *r = arg;
    rings *rq = rings_new();
    struct strand *out[STRAND__RUNQ_SIZE * STRAND__PRIOS];
    unsigned mask = 0, k = 0;
    for (;;) {
        int still = atomic_load(&r->producing);
        struct strand *s = strand__globalq_take(&r->q, CONSUMERS, rq->q, &mask, ++k % 31 == 0);
        if (s) {
            take(r, s);
            size_t n = drain(rq, out);
            for (size_t i = 0; i < n; i++)
                take(r, out[i]);
        } else if (!still) {
            break; /* nothing queued after the producers finished */
        }
    }
    free(rq);
    return NULL;
}

static void test_producers_consumers(void **state)
{
    (void)state;
    test_deadline(90);
    int rounds = (int)test_scale(20, 4);
    size_t per = (size_t)test_scale(50000, 5000);
    size_t n = per * PRODUCERS;
    race r = { .per_producer = per };
    r.v = strands_new(n);
    r.taken = calloc(n, sizeof *r.taken);
    assert_non_null(r.taken);
    for (int round = 0; round < rounds; round++) {
        strand__globalq_init(&r.q);
        memset((void *)r.taken, 0, n * sizeof *r.taken);
        atomic_store(&r.ntaken, 0);
        atomic_store(&r.producing, PRODUCERS);
        pthread_t pt[PRODUCERS], ct[CONSUMERS];
        producer_arg pa[PRODUCERS];
        for (int i = 0; i < CONSUMERS; i++)
            assert_int_equal(pthread_create(&ct[i], NULL, consumer, &r), 0);
        for (int i = 0; i < PRODUCERS; i++) {
            pa[i] = (producer_arg){ &r, (size_t)i * per };
            assert_int_equal(pthread_create(&pt[i], NULL, producer, &pa[i]), 0);
        }
        for (int i = 0; i < PRODUCERS; i++)
            pthread_join(pt[i], NULL);
        for (int i = 0; i < CONSUMERS; i++)
            pthread_join(ct[i], NULL);
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&r.taken[i]) != 1)
                fail_msg("round %d: strand %zu taken %u times", round, i,
                         (unsigned)atomic_load(&r.taken[i]));
        assert_int_equal(atomic_load(&r.ntaken), n);
        assert_int_equal(strand__globalq_len(&r.q), 0);
        strand__globalq_destroy(&r.q);
    }
    free((void *)r.taken);
    free(r.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_growth_fifo),
        cmocka_unit_test(test_fairness_bound),
        cmocka_unit_test(test_producers_consumers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
