/*
 * test_select.c - strand_select: the non-blocking form never misses a ready case, the
 * choice among ready cases is fair, deadlines, wakeups on any case (from strands and plain
 * threads), closed channels, select against select, a many-strand stress with a
 * checksum (every value sent is received exactly once), and Go chan_test-style races: a
 * non-blocking select racing the sends that keep one case ready, and select fairness.
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

static strand_chan *mk(size_t cap)
{
    strand_chan *ch = NULL;
    assert_int_equal(strand_chan_create(&ch, sizeof(int64_t), cap), 0);
    return ch;
}

/* ---------------------------------------------------------------- bad input */

static void *bad_main(void *arg)
{
    (void)arg;
    strand_chan *a = mk(1);
    int64_t v = 0;
    strand_select_case c[2] = {
        { a, STRAND_SELECT_RECV, &v, 0 },
        { a, STRAND_SELECT_SEND, &v, 0 },
    };
    assert_int_equal(strand_select(NULL, 1, 0), -EINVAL);
    assert_int_equal(strand_select(c, -1, 0), -EINVAL);
    c[0].chan = NULL;
    assert_int_equal(strand_select(c, 2, 0), -EINVAL);
    c[0].chan = a;
    c[0].op = 7;
    assert_int_equal(strand_select(c, 2, 0), -EINVAL);
    c[0].op = STRAND_SELECT_RECV;
    c[1].elem = NULL;
    assert_int_equal(strand_select(c, 2, 0), -EINVAL);
    c[1].elem = &v;
    /* no cases: a try, a sleep, or (forever) refused */
    assert_int_equal(strand_select(NULL, 0, 0), -EAGAIN);
    assert_int_equal(strand_select(NULL, 0, STRAND_FOREVER), -EINVAL);
    int64_t t0 = strand_now();
    assert_int_equal(strand_select(NULL, 0, t0 + 5 * MS), -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 4 * MS);
    /* empty buffer: only the send case is ready */
    assert_int_equal(strand_select(c, 2, 0), 1);
    assert_int_equal(c[1].status, 0);
    /* full buffer: only the receive case */
    assert_int_equal(strand_select(c, 2, 0), 0);
    assert_int_equal(c[0].status, 0);
    strand_chan_release(a);
    return NULL;
}

static void test_bad_input(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(bad_main, NULL);
}

/* ---------------------------------------------------------------- always ready, fairness */

static void *ready_main(void *arg)
{
    (void)arg;
    strand_chan *empty = mk(0), *full = mk(1), *sink = mk(1), *other = mk(1);
    int64_t v = 42, out = 0;
    assert_int_equal(strand_chan_send(full, &v, 0), 0);
    long n = test_scale(100000, 20000);
    for (long i = 0; i < n; i++) {
        strand_select_case c[3] = {
            { empty, STRAND_SELECT_RECV, &out, 0 },
            { full, STRAND_SELECT_RECV, &out, 0 },
            { other, STRAND_SELECT_RECV, &out, 0 },
        };
        int rc = strand_select(c, 3, 0);
        assert_int_equal(rc, 1); /* never the default (-EAGAIN) branch */
        assert_int_equal(out, 42);
        assert_int_equal(strand_chan_send(full, &v, 0), 0);
    }

    /* two ready cases: each chosen about half the time */
    long hits[2] = { 0, 0 };
    long m = test_scale(100000, 20000);
    for (long i = 0; i < m; i++) {
        strand_select_case c[3] = {
            { full, STRAND_SELECT_RECV, &out, 0 },
            { empty, STRAND_SELECT_SEND, &v, 0 },
            { sink, STRAND_SELECT_SEND, &v, 0 },
        };
        int rc = strand_select(c, 3, 0);
        assert_true(rc == 0 || rc == 2);
        hits[rc / 2]++;
        if (rc == 0)
            assert_int_equal(strand_chan_send(full, &v, 0), 0);
        else
            assert_int_equal(strand_chan_recv(sink, &out, 0), 0);
    }
    print_message("[ info ] fairness: %ld / %ld\n", hits[0], hits[1]);
    assert_true(hits[0] > m * 45 / 100 && hits[1] > m * 45 / 100);

    strand_chan_release(empty);
    strand_chan_release(full);
    strand_chan_release(sink);
    strand_chan_release(other);
    return NULL;
}

static void test_always_ready(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(ready_main, NULL);
}

/* ---------------------------------------------------------------- deadlines */

static void *timeout_main(void *arg)
{
    (void)arg;
    strand_chan *a = mk(0), *b = mk(3);
    int64_t x, y = 9;
    assert_int_equal(strand_chan_send(b, &y, 0), 0);
    assert_int_equal(strand_chan_send(b, &y, 0), 0);
    assert_int_equal(strand_chan_send(b, &y, 0), 0);
    for (int i = 0; i < 5; i++) {
        strand_select_case c[2] = {
            { a, STRAND_SELECT_RECV, &x, 0 },
            { b, STRAND_SELECT_SEND, &y, 0 },
        };
        int64_t t0 = strand_now();
        assert_int_equal(strand_select(c, 2, t0 + 15 * MS), -ETIMEDOUT);
        int64_t el = strand_now() - t0;
        assert_true(el >= 14 * MS);
        assert_true(el < 2000 * MS);
        assert_int_equal(strand_select(c, 2, 0), -EAGAIN);
        assert_int_equal(strand_select(c, 2, 1), -ETIMEDOUT); /* already past */
    }
    /* the timed-out registrations are gone: nothing would take these values */
    assert_int_equal(strand_chan_send(a, &y, 0), -EAGAIN);
    assert_int_equal(strand_chan_len(b), 3);
    strand_chan_release(a);
    strand_chan_release(b);
    return NULL;
}

static void test_timeouts(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(timeout_main, NULL);
}

/* ---------------------------------------------------------------- wakeups */

struct wake {
    strand_chan *ch[4];
    int          which;
    int64_t      value;
};

static void *late_sender(void *arg)
{
    struct wake *w = arg;
    strand_sleep(3 * MS);
    assert_int_equal(strand_chan_send(w->ch[w->which], &w->value, STRAND_FOREVER), 0);
    return NULL;
}

static void *late_receiver(void *arg)
{
    struct wake *w = arg;
    strand_sleep(3 * MS);
    int64_t v;
    assert_int_equal(strand_chan_recv(w->ch[w->which], &v, STRAND_FOREVER), 0);
    assert_int_equal(v, 1000 + w->which);
    return NULL;
}

static void *late_closer(void *arg)
{
    struct wake *w = arg;
    strand_sleep(3 * MS);
    assert_int_equal(strand_chan_close(w->ch[w->which]), 0);
    return NULL;
}

static void *wake_main(void *arg)
{
    (void)arg;
    for (int which = 0; which < 4; which++) {
        struct wake w = { { mk(0), mk(0), mk(0), mk(0) }, which, 500 + which };
        int64_t got[4] = { -1, -1, -1, -1 };
        strand_select_case c[4];
        for (int i = 0; i < 4; i++)
            c[i] = (strand_select_case){ w.ch[i], STRAND_SELECT_RECV, &got[i], 0 };
        /* a receive case woken by a sender */
        int64_t id = SPAWN(late_sender, &w);
        assert_int_equal(strand_select(c, 4, STRAND_FOREVER), which);
        assert_int_equal(c[which].status, 0);
        assert_int_equal(got[which], 500 + which);
        for (int i = 0; i < 4; i++)
            if (i != which)
                assert_int_equal(got[i], -1);
        JOIN(id);
        /* a send case taken by a receiver; the other registrations must be gone */
        int64_t vals[4];
        for (int i = 0; i < 4; i++) {
            vals[i] = 1000 + i;
            c[i] = (strand_select_case){ w.ch[i], STRAND_SELECT_SEND, &vals[i], 0 };
        }
        id = SPAWN(late_receiver, &w);
        assert_int_equal(strand_select(c, 4, strand_now() + 5000 * MS), which);
        JOIN(id);
        for (int i = 0; i < 4; i++)
            assert_int_equal(strand_chan_recv(w.ch[i], &got[0], 0), -EAGAIN);
        /* a receive case on a channel being closed fires with -EPIPE */
        for (int i = 0; i < 4; i++)
            c[i] = (strand_select_case){ w.ch[i], STRAND_SELECT_RECV, &got[i], 0 };
        id = SPAWN(late_closer, &w);
        assert_int_equal(strand_select(c, 4, STRAND_FOREVER), which);
        assert_int_equal(c[which].status, -EPIPE);
        JOIN(id);
        /* and a closed channel is ready at once, for receive and send cases alike */
        assert_int_equal(strand_select(c, 4, 0), which);
        assert_int_equal(c[which].status, -EPIPE);
        c[which].op = STRAND_SELECT_SEND;
        assert_int_equal(strand_select(c, 4, 0), which);
        assert_int_equal(c[which].status, -EPIPE);
        for (int i = 0; i < 4; i++)
            strand_chan_release(w.ch[i]);
    }
    return NULL;
}

static void test_wakeups(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(wake_main, NULL);
}

/* A plain thread selecting; a strand completes a case other than the first. */
static void *thread_selector(void *arg)
{
    struct wake *w = arg;
    int64_t got = -1, sent = 77;
    strand_select_case c[3] = {
        { w->ch[0], STRAND_SELECT_RECV, &got, 0 },
        { w->ch[1], STRAND_SELECT_SEND, &sent, 0 },
        { w->ch[2], STRAND_SELECT_RECV, &got, 0 },
    };
    for (int i = 0; i < 200; i++) {
        int rc = strand_select(c, 3, STRAND_FOREVER);
        assert_true(rc == 1 || rc == 2);
        if (rc == 2)
            assert_int_equal(got, i);
    }
    return NULL;
}

static void *thread_partner(void *arg)
{
    struct wake *w = arg;
    int64_t v;
    for (int64_t i = 0; i < 200; i++) {
        if (i % 2) {
            assert_int_equal(strand_chan_recv(w->ch[1], &v, STRAND_FOREVER), 0);
            assert_int_equal(v, 77);
        } else {
            assert_int_equal(strand_chan_send(w->ch[2], &i, STRAND_FOREVER), 0);
        }
    }
    return NULL;
}

static void test_plain_thread(void **state)
{
    (void)state;
    test_deadline(30);
    struct wake w = { { mk(0), mk(0), mk(0), NULL }, 0, 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_selector, &w), 0);
    test_run_strand(thread_partner, &w);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 0; i < 3; i++)
        strand_chan_release(w.ch[i]);
}

/* ---------------------------------------------------------------- stress */

struct stress {
    strand_chan *ch[3];
    long         per;       /* values per producer */
    atomic_long  received;
    atomic_ullong sum;
    atomic_int   producers_left;
};

/* Producers select-send on all three channels (one buffered); consumers select-receive
 * on all three, with a deadline so timeouts race with wakeups. */
static void *stress_producer(void *arg)
{
    struct stress *s = arg;
    for (long i = 1; i <= s->per; i++) {
        int64_t v = i;
        strand_select_case c[3];
        for (int k = 0; k < 3; k++)
            c[k] = (strand_select_case){ s->ch[k], STRAND_SELECT_SEND, &v, 0 };
        int rc;
        while ((rc = strand_select(c, 3, strand_now() + 2 * MS)) == -ETIMEDOUT)
            ;
        assert_true(rc >= 0 && rc < 3);
        assert_int_equal(c[rc].status, 0);
    }
    atomic_fetch_sub(&s->producers_left, 1);
    return NULL;
}

static void *stress_consumer(void *arg)
{
    struct stress *s = arg;
    long total = 4 * s->per;
    uint64_t sum = 0;
    for (;;) {
        int64_t v[3];
        strand_select_case c[3];
        for (int k = 0; k < 3; k++)
            c[k] = (strand_select_case){ s->ch[k], STRAND_SELECT_RECV, &v[k], 0 };
        int rc = strand_select(c, 3, strand_now() + 1 * MS);
        if (rc == -ETIMEDOUT) {
            if (atomic_load(&s->received) >= total)
                break;
            continue;
        }
        assert_true(rc >= 0 && rc < 3);
        assert_int_equal(c[rc].status, 0);
        sum += (uint64_t)v[rc];
        if (atomic_fetch_add(&s->received, 1) + 1 >= total)
            break;
    }
    atomic_fetch_add(&s->sum, sum);
    return NULL;
}

static void *stress_main(void *arg)
{
    (void)arg;
    struct stress s;
    memset(&s, 0, sizeof s);
    s.ch[0] = mk(0);
    s.ch[1] = mk(0);
    s.ch[2] = mk(4);
    s.per = test_scale(50000, 5000);
    atomic_store(&s.producers_left, 4);
    int64_t ids[8];
    for (int i = 0; i < 4; i++) {
        ids[i] = SPAWN(stress_producer, &s);
        ids[4 + i] = SPAWN(stress_consumer, &s);
    }
    for (int i = 0; i < 8; i++)
        JOIN(ids[i]);
    assert_int_equal(atomic_load(&s.received), 4 * s.per);
    uint64_t per = (uint64_t)s.per;
    assert_true(atomic_load(&s.sum) == 4 * per * (per + 1) / 2);
    for (int k = 0; k < 3; k++)
        strand_chan_release(s.ch[k]);
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(stress_main, NULL);
}

/* Many cases (beyond the inline buffers), duplicates of one channel included. */
static void *many_sender(void *arg)
{
    strand_chan **chs = arg;
    int64_t v = 31337;
    strand_sleep(2 * MS);
    assert_int_equal(strand_chan_send(chs[37], &v, STRAND_FOREVER), 0);
    return NULL;
}

static void *many_main(void *arg)
{
    (void)arg;
    enum { N = 40 };
    strand_chan *chs[N];
    int64_t vals[N + 2];
    strand_select_case c[N + 2];
    for (int i = 0; i < N; i++) {
        chs[i] = mk(0);
        c[i] = (strand_select_case){ chs[i], STRAND_SELECT_RECV, &vals[i], 0 };
    }
    c[N] = (strand_select_case){ chs[3], STRAND_SELECT_RECV, &vals[N], 0 };
    c[N + 1] = (strand_select_case){ chs[3], STRAND_SELECT_SEND, &vals[N + 1], 0 };
    assert_int_equal(strand_select(c, N + 2, 0), -EAGAIN);
    int64_t id = SPAWN(many_sender, chs);
    assert_int_equal(strand_select(c, N + 2, STRAND_FOREVER), 37);
    assert_int_equal(vals[37], 31337);
    JOIN(id);
    for (int i = 0; i < N; i++) {
        assert_int_equal(strand_chan_send(chs[i], &vals[0], 0), -EAGAIN); /* no stale waiter */
        strand_chan_release(chs[i]);
    }
    return NULL;
}

static void test_many_cases(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(many_main, NULL);
}

/* ---------------------------------------------------------------- Go chan_test-style races */

/* Go's TestNonblockSelectRace: c1 holds a value; while another strand non-blockingly
 * selects on {c1, c2}, this one sends on c2 and then takes c1's value. Some case is ready
 * at every instant, so the select must never take its default (-EAGAIN) branch - even
 * though the buffered channels' sends and receives never take their lock. */
struct nbsel {
    strand_chan *c1, *c2;
    atomic_int   rc;
    atomic_int   started; /* the selector runs: race it (2 workers, so really in parallel) */
};

static void *nbsel_selector(void *arg)
{
    struct nbsel *x = arg;
    int64_t a, b;
    strand_select_case c[2] = {
        { x->c1, STRAND_SELECT_RECV, &a, 0 },
        { x->c2, STRAND_SELECT_RECV, &b, 0 },
    };
    atomic_store(&x->started, 1);
    atomic_store(&x->rc, strand_select(c, 2, 0));
    return NULL;
}

static void *nbsel_main(void *arg)
{
    int variant = (int)(intptr_t)arg;
    long iters = test_scale(20000, 2000);
    for (long i = 0; i < iters; i++) {
        struct nbsel x = { mk(1), mk(1), 0, 0 };
        int64_t v = 1, out;
        assert_int_equal(strand_chan_send(x.c1, &v, 0), 0);
        int64_t id = SPAWN(nbsel_selector, &x);
        for (int spins = 0; !atomic_load(&x.started); spins++) {
            if (spins > 10000) /* not picked up by the other worker: let it run here */
                strand_yield();
        }
        for (volatile int d = (int)(i % 128); d > 0; d--) /* vary the overlap */
            ;
        if (variant == 0) {
            assert_int_equal(strand_chan_send(x.c2, &v, 0), 0);
            int rc = strand_chan_recv(x.c1, &out, 0);
            assert_true(rc == 0 || rc == -EAGAIN);
        } else { /* as Go's TestNonblockSelectRace2: close instead of send */
            assert_int_equal(strand_chan_close(x.c2), 0);
            int rc = strand_chan_recv(x.c1, &out, 0);
            assert_true(rc == 0 || rc == -EAGAIN);
        }
        JOIN(id);
        int rc = atomic_load(&x.rc);
        assert_true(rc == 0 || rc == 1); /* never -EAGAIN: no case ready */
        strand_chan_release(x.c1);
        strand_chan_release(x.c2);
    }
    return NULL;
}

static void test_nonblock_select_race(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(nbsel_main, (void *)(intptr_t)0);
    test_run_strand(nbsel_main, (void *)(intptr_t)1);
}

/* Go's TestSelectFairness: a strand selects on two always-ready buffered channels and two
 * never-ready unbuffered ones, and passes what it got on; each ready case must win about
 * half the time (Go's bound: a binomial test at about 1e-6 false failure). */
#define FAIR_TRIALS 10000

struct fair {
    strand_chan *c[4], *out, *done;
};

static void *fair_selector(void *arg)
{
    struct fair *f = arg;
    for (;;) {
        int64_t b[4], b2 = 0;
        strand_select_case c[4] = {
            { f->c[2], STRAND_SELECT_RECV, &b[2], 0 },
            { f->c[3], STRAND_SELECT_RECV, &b[3], 0 },
            { f->c[0], STRAND_SELECT_RECV, &b[0], 0 },
            { f->c[1], STRAND_SELECT_RECV, &b[1], 0 },
        };
        int rc = strand_select(c, 4, STRAND_FOREVER);
        assert_true(rc >= 0 && rc < 4);
        assert_int_equal(c[rc].status, 0);
        int64_t got = rc == 0 ? b[2] : rc == 1 ? b[3] : rc == 2 ? b[0] : b[1];
        strand_select_case o[2] = {
            { f->out, STRAND_SELECT_SEND, &got, 0 },
            { f->done, STRAND_SELECT_RECV, &b2, 0 },
        };
        rc = strand_select(o, 2, STRAND_FOREVER);
        if (rc == 1)
            return NULL;
        assert_int_equal(rc, 0);
    }
}

static void *fair_main(void *arg)
{
    (void)arg;
    struct fair f;
    f.c[0] = mk(FAIR_TRIALS + 1);
    f.c[1] = mk(FAIR_TRIALS + 1);
    f.c[2] = mk(0);
    f.c[3] = mk(0);
    f.out = mk(0);
    f.done = mk(0);
    for (int64_t i = 0; i < FAIR_TRIALS + 1; i++) {
        int64_t one = 1, two = 2;
        assert_int_equal(strand_chan_send(f.c[0], &one, 0), 0);
        assert_int_equal(strand_chan_send(f.c[1], &two, 0), 0);
    }
    int64_t id = SPAWN(fair_selector, &f);
    long cnt[3] = { 0, 0, 0 };
    for (int i = 0; i < FAIR_TRIALS; i++) {
        int64_t b = 0;
        assert_int_equal(strand_chan_recv(f.out, &b, STRAND_FOREVER), 0);
        assert_true(b == 1 || b == 2);
        cnt[b]++;
    }
    double r = (double)cnt[1] / FAIR_TRIALS, e = r > 0.5 ? r - 0.5 : 0.5 - r;
    print_message("[ info ] select fairness: %ld / %ld (error %.4f)\n", cnt[1], cnt[2], e);
    assert_true(e <= 4.891676 / (2 * 100.0)); /* 2 * sqrt(FAIR_TRIALS) */
    assert_int_equal(strand_chan_close(f.done), 0);
    JOIN(id);
    for (int i = 0; i < 4; i++)
        strand_chan_release(f.c[i]);
    strand_chan_release(f.out);
    strand_chan_release(f.done);
    return NULL;
}

static void test_select_fairness(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(fair_main, NULL);
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
        cmocka_unit_test(test_always_ready),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_wakeups),
        cmocka_unit_test(test_plain_thread),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_many_cases),
        cmocka_unit_test(test_nonblock_select_race),
        cmocka_unit_test(test_select_fairness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
