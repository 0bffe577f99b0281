/*
 * test_chan.c - channels: ordering over a capacity sweep, many producers and consumers with
 * a checksum, send/close races (nothing accepted is lost), deadlines, plain threads mixed
 * with strands, reference counting, and every bad-input code.
 *
 * Every test runs under a watchdog (test_deadline) and with 2 workers, so strands really run
 * in parallel. STRAND_TEST_SCALE=small (sanitizer runs) scales the big loops down.
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

static int64_t ms_from_now(int64_t ms)
{
    return strand_now() + ms * 1000000;
}

/* ---------------------------------------------------------------- bad input */

static void *bad_input_main(void *arg)
{
    (void)arg;
    strand_chan *ch = (strand_chan *)0x1;
    int64_t v = 7;
    assert_int_equal(strand_chan_create(NULL, 8, 1), -EINVAL);
    assert_int_equal(strand_chan_create(&ch, 0, 1), -EINVAL);
    assert_null(ch);
    assert_int_equal(strand_chan_create(&ch, 64 * 1024 + 1, 1), -EINVAL);
    assert_int_equal(strand_chan_create(&ch, 64 * 1024, (size_t)1 << 62), -EINVAL);
    assert_int_equal(strand_chan_create(&ch, 8, SIZE_MAX), -EINVAL);

    assert_int_equal(strand_chan_send(NULL, &v, 0), -EINVAL);
    assert_int_equal(strand_chan_recv(NULL, &v, 0), -EINVAL);
    assert_int_equal(strand_chan_close(NULL), -EINVAL);
    assert_int_equal(strand_chan_retain(NULL), -EINVAL);
    assert_int_equal(strand_chan_len(NULL), 0);
    assert_int_equal(strand_chan_cap(NULL), 0);
    strand_chan_release(NULL); /* no crash */

    assert_int_equal(strand_chan_create(&ch, 64 * 1024, 2), 0); /* the limit itself is fine */
    strand_chan_release(ch);

    assert_int_equal(strand_chan_create(&ch, sizeof v, 2), 0);
    assert_int_equal(strand_chan_cap(ch), 2);
    assert_int_equal(strand_chan_send(ch, NULL, 0), -EINVAL);
    assert_int_equal(strand_chan_recv(ch, NULL, 0), -EINVAL);
    /* try forms */
    assert_int_equal(strand_chan_recv(ch, &v, 0), -EAGAIN);
    v = 1;
    assert_int_equal(strand_chan_send(ch, &v, 0), 0);
    v = 2;
    assert_int_equal(strand_chan_send(ch, &v, 0), 0);
    v = 3;
    assert_int_equal(strand_chan_send(ch, &v, 0), -EAGAIN);
    assert_int_equal(strand_chan_len(ch), 2);
    /* a deadline already past, and a short one */
    assert_int_equal(strand_chan_send(ch, &v, 1), -ETIMEDOUT);
    int64_t t0 = strand_now();
    assert_int_equal(strand_chan_send(ch, &v, ms_from_now(20)), -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 19 * 1000000);

    /* close: buffered values drain, then -EPIPE; sends and a second close fail */
    assert_int_equal(strand_chan_close(ch), 0);
    assert_int_equal(strand_chan_close(ch), -EPIPE);
    assert_int_equal(strand_chan_send(ch, &v, 0), -EPIPE);
    assert_int_equal(strand_chan_send(ch, &v, STRAND_FOREVER), -EPIPE);
    assert_int_equal(strand_chan_recv(ch, &v, STRAND_FOREVER), 0);
    assert_int_equal(v, 1);
    assert_int_equal(strand_chan_recv(ch, &v, 0), 0);
    assert_int_equal(v, 2);
    assert_int_equal(strand_chan_recv(ch, &v, 0), -EPIPE);
    assert_int_equal(strand_chan_recv(ch, &v, STRAND_FOREVER), -EPIPE);
    assert_int_equal(strand_chan_len(ch), 0);
    assert_int_equal(strand_chan_retain(ch), 0);
    strand_chan_release(ch);
    strand_chan_release(ch);

    /* unbuffered: a try send with nobody waiting cannot complete */
    assert_int_equal(strand_chan_create(&ch, sizeof v, 0), 0);
    assert_int_equal(strand_chan_send(ch, &v, 0), -EAGAIN);
    assert_int_equal(strand_chan_recv(ch, &v, 0), -EAGAIN);
    assert_int_equal(strand_chan_recv(ch, &v, ms_from_now(5)), -ETIMEDOUT);
    strand_chan_release(ch);
    return NULL;
}

static void test_bad_input(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(bad_input_main, NULL);
}

/* ---------------------------------------------------------------- capacity sweep */

struct sweep {
    strand_chan *ch;
    int          n;
};

static void *sweep_producer(void *arg)
{
    struct sweep *sw = arg;
    for (int i = 0; i < sw->n; i++)
        assert_int_equal(strand_chan_send(sw->ch, &i, STRAND_FOREVER), 0);
    assert_int_equal(strand_chan_close(sw->ch), 0);
    return NULL;
}

static void *sweep_main(void *arg)
{
    (void)arg;
    for (int cap = 0; cap < 200; cap++) {
        struct sweep sw = { NULL, 3 * cap + 50 };
        assert_int_equal(strand_chan_create(&sw.ch, sizeof(int), (size_t)cap), 0);
        int64_t p = SPAWN(sweep_producer, &sw);
        int got = 0, v;
        int rc;
        while ((rc = strand_chan_recv(sw.ch, &v, STRAND_FOREVER)) == 0) {
            assert_int_equal(v, got); /* FIFO, nothing lost or repeated */
            got++;
            if (got % 7 == 0)
                strand_yield();
        }
        assert_int_equal(rc, -EPIPE);
        assert_int_equal(got, sw.n);
        JOIN(p);
        strand_chan_release(sw.ch);
    }
    return NULL;
}

static void test_capacity_sweep(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(sweep_main, NULL);
}

/* ---------------------------------------------------------------- MPMC with checksum */

struct mpmc {
    strand_chan   *ch;
    long           per_producer;
    atomic_long    producers_left;
    atomic_ullong  sum;
    atomic_long    count;
};

static void *mpmc_producer(void *arg)
{
    struct mpmc *m = arg;
    uint64_t base = (uint64_t)strand_self() << 32;
    for (long i = 0; i < m->per_producer; i++) {
        uint64_t v = base + (uint64_t)i;
        assert_int_equal(strand_chan_send(m->ch, &v, STRAND_FOREVER), 0);
    }
    if (atomic_fetch_sub(&m->producers_left, 1) == 1)
        assert_int_equal(strand_chan_close(m->ch), 0);
    return NULL;
}

static void *mpmc_consumer(void *arg)
{
    struct mpmc *m = arg;
    uint64_t v, sum = 0;
    long n = 0;
    int rc;
    while ((rc = strand_chan_recv(m->ch, &v, STRAND_FOREVER)) == 0) {
        sum += v;
        n++;
    }
    assert_int_equal(rc, -EPIPE);
    atomic_fetch_add(&m->sum, sum);
    atomic_fetch_add(&m->count, n);
    return NULL;
}

static void *mpmc_main(void *arg)
{
    size_t cap = (size_t)(uintptr_t)arg;
    struct mpmc m;
    memset(&m, 0, sizeof m);
    m.per_producer = cap == 0 ? test_scale(100000, 10000) : test_scale(1000000, 100000);
    atomic_store(&m.producers_left, 4);
    assert_int_equal(strand_chan_create(&m.ch, sizeof(uint64_t), cap), 0);
    int64_t ids[8];
    for (int i = 0; i < 4; i++) {
        ids[2 * i] = SPAWN(mpmc_consumer, &m);
        ids[2 * i + 1] = SPAWN(mpmc_producer, &m);
    }
    uint64_t expect = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t base = (uint64_t)ids[2 * i + 1] << 32;
        uint64_t n = (uint64_t)m.per_producer;
        expect += base * n + n * (n - 1) / 2;
    }
    struct strand_stats before, after;
    strand_stats(&before);
    int64_t t0 = strand_now();
    for (int i = 0; i < 8; i++)
        JOIN(ids[i]);
    int64_t el = strand_now() - t0;
    strand_stats(&after);
    long total = 4 * m.per_producer;
    assert_int_equal(atomic_load(&m.count), total);
    assert_true(atomic_load(&m.sum) == expect);
    assert_true(after.chan_ops - before.chan_ops >= (uint64_t)(2 * total) / 2);
    print_message("[ info ] 4x4 cap %zu: %ld messages in %.1f ms (%.1f ns/msg)\n", cap, total,
                  el / 1e6, (double)el / (double)total);
    strand_chan_release(m.ch);
    return NULL;
}

static void test_mpmc_buffered(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(mpmc_main, (void *)(uintptr_t)128);
}

static void test_mpmc_unbuffered(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(mpmc_main, (void *)(uintptr_t)0);
}

/* ---------------------------------------------------------------- send/close races */

#define RACE_SENDS 8

struct race {
    strand_chan *ch;
    int          sent_ok[RACE_SENDS]; /* 1 if that send returned 0 */
    int          received[RACE_SENDS];
};

static void *race_sender(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < RACE_SENDS; i++) {
        int rc = strand_chan_send(r->ch, &i, STRAND_FOREVER);
        assert_true(rc == 0 || rc == -EPIPE);
        r->sent_ok[i] = rc == 0;
    }
    return NULL;
}

static void *race_closer(void *arg)
{
    struct race *r = arg;
    if (strand_self() & 1)
        strand_yield();
    assert_int_equal(strand_chan_close(r->ch), 0);
    return NULL;
}

static void *race_main(void *arg)
{
    (void)arg;
    long iters = test_scale(10000, 2000);
    for (long it = 0; it < iters; it++) {
        struct race r;
        memset(&r, 0, sizeof r);
        assert_int_equal(strand_chan_create(&r.ch, sizeof(int), (size_t)(it % 3)), 0);
        int64_t s = SPAWN(race_sender, &r);
        int64_t c = SPAWN(race_closer, &r);
        int v, rc;
        while ((rc = strand_chan_recv(r.ch, &v, STRAND_FOREVER)) == 0) {
            assert_true(v >= 0 && v < RACE_SENDS);
            assert_int_equal(r.received[v], 0);
            r.received[v] = 1;
        }
        assert_int_equal(rc, -EPIPE);
        JOIN(s);
        JOIN(c);
        for (int i = 0; i < RACE_SENDS; i++)
            assert_int_equal(r.received[i], r.sent_ok[i]); /* accepted <=> received */
        strand_chan_release(r.ch);
    }
    return NULL;
}

static void test_send_close_race(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(race_main, NULL);
}

/* ---------------------------------------------------------------- plain threads */

struct mixed {
    strand_chan *to_thread, *to_strand;
    long         n;
};

static void *thread_echo(void *arg)
{
    struct mixed *m = arg;
    long v;
    for (long i = 0; i < m->n; i++) {
        assert_int_equal(strand_chan_recv(m->to_thread, &v, STRAND_FOREVER), 0);
        assert_int_equal(v, i);
        v = -v;
        assert_int_equal(strand_chan_send(m->to_strand, &v, STRAND_FOREVER), 0);
    }
    /* a thread waits with a deadline, too */
    int64_t t0 = strand_now();
    assert_int_equal(strand_chan_recv(m->to_thread, &v, strand_now() + 10 * 1000000), -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 9 * 1000000);
    v = 1; /* tell the strand it may close now (no timing assumption) */
    assert_int_equal(strand_chan_send(m->to_strand, &v, STRAND_FOREVER), 0);
    /* and is woken by close */
    assert_int_equal(strand_chan_recv(m->to_thread, &v, STRAND_FOREVER), -EPIPE);
    return NULL;
}

static void *mixed_main(void *arg)
{
    struct mixed *m = arg;
    long v;
    for (long i = 0; i < m->n; i++) {
        v = i;
        assert_int_equal(strand_chan_send(m->to_thread, &v, STRAND_FOREVER), 0);
        assert_int_equal(strand_chan_recv(m->to_strand, &v, STRAND_FOREVER), 0);
        assert_int_equal(v, -i);
    }
    assert_int_equal(strand_chan_recv(m->to_strand, &v, STRAND_FOREVER), 0);
    assert_int_equal(v, 1);
    strand_sleep(5 * 1000000); /* let the thread block in its receive (either way is fine) */
    assert_int_equal(strand_chan_close(m->to_thread), 0);
    return NULL;
}

static void test_plain_thread(void **state)
{
    (void)state;
    test_deadline(60);
    for (size_t cap = 0; cap <= 4; cap += 4) {
        struct mixed m = { NULL, NULL, test_scale(20000, 2000) };
        assert_int_equal(strand_chan_create(&m.to_thread, sizeof(long), cap), 0);
        assert_int_equal(strand_chan_create(&m.to_strand, sizeof(long), cap), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, thread_echo, &m), 0);
        test_run_strand(mixed_main, &m);
        assert_int_equal(pthread_join(t, NULL), 0);
        strand_chan_release(m.to_thread);
        strand_chan_release(m.to_strand);
    }
}

/* Two plain threads, no strand at all: the channel works without the runtime's help. */
static void *thread_producer(void *arg)
{
    strand_chan *ch = arg;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(strand_chan_send(ch, &i, STRAND_FOREVER), 0);
    assert_int_equal(strand_chan_close(ch), 0);
    return NULL;
}

static void test_threads_only(void **state)
{
    (void)state;
    test_deadline(30);
    strand_chan *ch;
    assert_int_equal(strand_chan_create(&ch, sizeof(int), 0), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_producer, ch), 0);
    int v, n = 0;
    while (strand_chan_recv(ch, &v, STRAND_FOREVER) == 0) {
        assert_int_equal(v, n);
        n++;
    }
    assert_int_equal(n, 1000);
    assert_int_equal(pthread_join(t, NULL), 0);
    strand_chan_release(ch);
}

/* ---------------------------------------------------------------- wakeups and refs */

struct waitctx {
    strand_chan *ch;
    int          rc;
    int64_t      waited;
};

static void *timed_receiver(void *arg)
{
    struct waitctx *w = arg;
    int64_t t0 = strand_now(), v;
    w->rc = strand_chan_recv(w->ch, &v, ms_from_now(40));
    w->waited = strand_now() - t0;
    return NULL;
}

static void *blocked_sender(void *arg)
{
    struct waitctx *w = arg;
    int64_t v = 5;
    w->rc = strand_chan_send(w->ch, &v, STRAND_FOREVER);
    return NULL;
}

static void *wake_main(void *arg)
{
    (void)arg;
    /* close wakes blocked senders with -EPIPE */
    struct waitctx ws[4];
    strand_chan *ch;
    assert_int_equal(strand_chan_create(&ch, sizeof(int64_t), 0), 0);
    int64_t ids[4];
    for (int i = 0; i < 4; i++) {
        ws[i] = (struct waitctx){ ch, 1, 0 };
        ids[i] = SPAWN(blocked_sender, &ws[i]);
    }
    strand_sleep(5 * 1000000);
    int64_t v;
    assert_int_equal(strand_chan_recv(ch, &v, STRAND_FOREVER), 0); /* takes one of them */
    assert_int_equal(v, 5);
    assert_int_equal(strand_chan_close(ch), 0);
    int ok = 0, pipe = 0;
    for (int i = 0; i < 4; i++) {
        JOIN(ids[i]);
        ok += ws[i].rc == 0;
        pipe += ws[i].rc == -EPIPE;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(pipe, 3);
    strand_chan_release(ch);

    /* the last reference goes while a strand still waits: freed when it leaves (ASan
     * checks that it is freed exactly once and not touched afterwards) */
    assert_int_equal(strand_chan_create(&ch, sizeof(int64_t), 1), 0);
    struct waitctx w = { ch, 1, 0 };
    int64_t id = SPAWN(timed_receiver, &w);
    strand_sleep(5 * 1000000);
    strand_chan_release(ch);
    JOIN(id);
    assert_int_equal(w.rc, -ETIMEDOUT);
    assert_true(w.waited >= 39 * 1000000);
    return NULL;
}

static void test_wakeups_and_refs(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(wake_main, NULL);
}

/* Large elements take the memcpy path; odd sizes too. */
static void *big_producer(void *arg)
{
    strand_chan *ch = arg;
    unsigned char buf[1000];
    for (int i = 0; i < 300; i++) {
        memset(buf, i & 0xff, sizeof buf);
        assert_int_equal(strand_chan_send(ch, buf, STRAND_FOREVER), 0);
    }
    return NULL;
}

static void *big_main(void *arg)
{
    (void)arg;
    for (size_t cap = 0; cap < 3; cap++) {
        strand_chan *ch;
        assert_int_equal(strand_chan_create(&ch, 1000, cap), 0);
        int64_t id = SPAWN(big_producer, ch);
        unsigned char buf[1000];
        for (int i = 0; i < 300; i++) {
            assert_int_equal(strand_chan_recv(ch, buf, STRAND_FOREVER), 0);
            for (int k = 0; k < 1000; k++)
                assert_int_equal(buf[k], i & 0xff);
        }
        JOIN(id);
        strand_chan_release(ch);
    }
    return NULL;
}

static void test_big_elements(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(big_main, NULL);
}

/* ---------------------------------------------------------------- Go chan_test-style races */

/* Go's TestNonblockRecvRace: a 1-slot channel holds a value; one strand receives without
 * blocking while another closes the channel and takes the value. The non-blocking
 * receive must find either the value or the end (-EPIPE), never "nothing yet". */
struct nbrecv {
    strand_chan *ch;
    atomic_int   rc, started;
};

static void *nbrecv_receiver(void *arg)
{
    struct nbrecv *x = arg;
    int v;
    atomic_store(&x->started, 1);
    atomic_store(&x->rc, strand_chan_recv(x->ch, &v, 0));
    return NULL;
}

static void *nbrecv_main(void *arg)
{
    (void)arg;
    long iters = test_scale(20000, 2000);
    for (long i = 0; i < iters; i++) {
        struct nbrecv x;
        memset(&x, 0, sizeof x);
        assert_int_equal(strand_chan_create(&x.ch, sizeof(int), 1), 0);
        int v = 1;
        assert_int_equal(strand_chan_send(x.ch, &v, 0), 0);
        int64_t id = SPAWN(nbrecv_receiver, &x);
        for (int spins = 0; !atomic_load(&x.started); spins++) {
            if (spins > 10000)
                strand_yield();
        }
        assert_int_equal(strand_chan_close(x.ch), 0);
        int rc = strand_chan_recv(x.ch, &v, 0);
        assert_true(rc == 0 || rc == -EPIPE);
        JOIN(id);
        int theirs = atomic_load(&x.rc);
        assert_true(theirs == 0 || theirs == -EPIPE); /* never -EAGAIN */
        assert_true((rc == 0) != (theirs == 0));       /* the one value went to one of us */
        strand_chan_release(x.ch);
    }
    return NULL;
}

static void test_nonblock_recv_race(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(nbrecv_main, NULL);
}

/* Every way of sending and receiving at once on small buffers (so the ring is full and
 * empty often and the lock-free paths race the parked ones): non-blocking operations
 * retried with yields, short deadlines, blocking ones and 1-case selects. Checks that
 * each value arrives exactly once and each consumer sees every producer's values in the
 * order they were sent. */
#define MIX_P 3
#define MIX_C 3

struct mix {
    strand_chan *ch;
    long         per;
    atomic_int   producers_left, next_index;
    atomic_long  count;
    atomic_ullong sum;
};

static int mix_send(strand_chan *ch, const uint64_t *v, unsigned how)
{
    int rc;
    switch (how % 4) {
    case 0:
        while ((rc = strand_chan_send(ch, v, 0)) == -EAGAIN)
            strand_yield();
        return rc;
    case 1:
        while ((rc = strand_chan_send(ch, v, strand_now() + 100000)) == -ETIMEDOUT)
            ;
        return rc;
    case 2: {
        strand_select_case c = { ch, STRAND_SELECT_SEND, (void *)v, 0 };
        rc = strand_select(&c, 1, STRAND_FOREVER);
        return rc == 0 ? c.status : rc;
    }
    default:
        return strand_chan_send(ch, v, STRAND_FOREVER);
    }
}

static int mix_recv(strand_chan *ch, uint64_t *v, unsigned how)
{
    int rc;
    switch (how % 4) {
    case 0:
        while ((rc = strand_chan_recv(ch, v, 0)) == -EAGAIN)
            strand_yield();
        return rc;
    case 1:
        while ((rc = strand_chan_recv(ch, v, strand_now() + 100000)) == -ETIMEDOUT)
            ;
        return rc;
    case 2: {
        strand_select_case c = { ch, STRAND_SELECT_RECV, v, 0 };
        rc = strand_select(&c, 1, STRAND_FOREVER);
        return rc == 0 ? c.status : rc;
    }
    default:
        return strand_chan_recv(ch, v, STRAND_FOREVER);
    }
}

static void *mix_producer(void *arg)
{
    struct mix *m = arg;
    uint64_t base = (uint64_t)atomic_fetch_add(&m->next_index, 1) << 32;
    for (long i = 0; i < m->per; i++) {
        uint64_t v = base + (uint64_t)i;
        assert_int_equal(mix_send(m->ch, &v, (unsigned)(i * 7 + (base >> 32))), 0);
    }
    if (atomic_fetch_sub(&m->producers_left, 1) == 1)
        assert_int_equal(strand_chan_close(m->ch), 0);
    return NULL;
}

static void *mix_consumer(void *arg)
{
    struct mix *m = arg;
    int64_t last[MIX_P]; /* per producer, the last value seen */
    for (int i = 0; i < MIX_P; i++)
        last[i] = -1;
    uint64_t v, sum = 0;
    long n = 0;
    int rc;
    for (unsigned k = 0; (rc = mix_recv(m->ch, &v, k * 5 + (unsigned)n)) == 0; k++) {
        uint64_t who = v >> 32, seq = v & 0xffffffffu;
        assert_true(who < MIX_P);
        assert_true((int64_t)seq > last[who]); /* one producer's values stay in order */
        last[who] = (int64_t)seq;
        sum += v;
        n++;
    }
    assert_int_equal(rc, -EPIPE);
    atomic_fetch_add(&m->sum, sum);
    atomic_fetch_add(&m->count, n);
    return NULL;
}

static void *mix_main(void *arg)
{
    (void)arg;
    static const size_t caps[] = { 1, 2, 3, 7, 64 };
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        struct mix m;
        memset(&m, 0, sizeof m);
        m.per = test_scale(40000, 4000);
        atomic_store(&m.producers_left, MIX_P);
        assert_int_equal(strand_chan_create(&m.ch, sizeof(uint64_t), caps[c]), 0);
        int64_t ids[MIX_P + MIX_C];
        uint64_t expect = 0, n = (uint64_t)m.per;
        for (int i = 0; i < MIX_P; i++) {
            ids[i] = SPAWN(mix_producer, &m);
            expect += ((uint64_t)i << 32) * n + n * (n - 1) / 2;
        }
        for (int i = 0; i < MIX_C; i++)
            ids[MIX_P + i] = SPAWN(mix_consumer, &m);
        for (int i = 0; i < MIX_P + MIX_C; i++)
            JOIN(ids[i]);
        assert_int_equal(atomic_load(&m.count), MIX_P * m.per);
        assert_true(atomic_load(&m.sum) == expect);
        assert_int_equal(strand_chan_len(m.ch), 0);
        strand_chan_release(m.ch);
    }
    return NULL;
}

static void test_mixed_stress(void **state)
{
    (void)state;
    test_deadline(240);
    test_run_strand(mix_main, NULL);
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
        cmocka_unit_test(test_capacity_sweep),
        cmocka_unit_test(test_mpmc_buffered),
        cmocka_unit_test(test_mpmc_unbuffered),
        cmocka_unit_test(test_send_close_race),
        cmocka_unit_test(test_plain_thread),
        cmocka_unit_test(test_threads_only),
        cmocka_unit_test(test_wakeups_and_refs),
        cmocka_unit_test(test_big_elements),
        cmocka_unit_test(test_nonblock_recv_race),
        cmocka_unit_test(test_mixed_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
