/*
 * test_mailbox.c - per-strand mailboxes: every bad-input code, ordering, a flood from two
 * strands and a plain thread with no message lost or duplicated, selective receive (order
 * of what is taken and of what is left), deadlines, messages dropped when a strand ends,
 * and selective receive with timeouts racing three concurrent senders.
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

/* ---------------------------------------------------------------- bad input, basics */

static void *ends_at_once(void *arg)
{
    (void)arg;
    return NULL;
}

static void *basics_main(void *arg)
{
    (void)arg;
    int64_t me = strand_self(), from = -1;
    char buf[16];
    assert_int_equal(strand_send(me, NULL, 3), -EINVAL);
    assert_int_equal(strand_send(0, "x", 1), -ESRCH);
    assert_int_equal(strand_send(-5, "x", 1), -ESRCH);
    assert_int_equal(strand_send(me + 1000000, "x", 1), -ESRCH); /* never spawned */
    int64_t dead = SPAWN(ends_at_once, NULL);
    JOIN(dead);
    assert_int_equal(strand_send(dead, "x", 1), -ESRCH); /* finished */
    assert_int_equal(strand_recv(NULL, 4, &from, 0), -EINVAL);
    assert_int_equal(strand_recv_match(NULL, NULL, buf, sizeof buf, &from, 0), -EINVAL);

    /* empty mailbox: try, past deadline, short deadline */
    assert_int_equal(strand_recv(buf, sizeof buf, &from, 0), -EAGAIN);
    assert_int_equal(strand_recv(buf, sizeof buf, &from, 1), -ETIMEDOUT);
    int64_t t0 = strand_now();
    assert_int_equal(strand_recv(buf, sizeof buf, &from, t0 + 10 * MS), -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 9 * MS);

    /* a zero-length message is a signal; NULL is fine for it */
    assert_int_equal(strand_send(me, NULL, 0), 0);
    assert_int_equal(strand_recv(NULL, 0, &from, 0), 0);
    assert_int_equal(from, me);

    /* too big for the buffer: -EMSGSIZE and it stays first in line */
    assert_int_equal(strand_send(me, "hello world", 11), 0);
    assert_int_equal(strand_send(me, "hi", 2), 0);
    assert_int_equal(strand_recv(buf, 5, &from, 0), -EMSGSIZE);
    assert_int_equal(strand_recv(buf, 5, &from, STRAND_FOREVER), -EMSGSIZE);
    memset(buf, 0, sizeof buf);
    assert_int_equal(strand_recv(buf, sizeof buf, NULL, 0), 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(strand_recv(buf, 2, &from, 0), 2);
    assert_memory_equal(buf, "hi", 2);
    assert_int_equal(strand_recv(buf, sizeof buf, &from, 0), -EAGAIN);

    struct strand_stats st;
    assert_int_equal(strand_stats(&st), 0);
    assert_true(st.mailbox_sent >= 3);
    return NULL;
}

static void test_basics(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(basics_main, NULL);
    /* outside any strand */
    char buf[4];
    int64_t from;
    assert_int_equal(strand_recv(buf, sizeof buf, &from, 0), -EPERM);
    assert_int_equal(strand_recv_match(NULL, NULL, buf, 4, &from, 0), -EINVAL);
}

/* ---------------------------------------------------------------- flood */

struct flood {
    int64_t to;
    long    n;
    int     tag;
};

struct flood_msg {
    int  tag;
    long seq;
};

static void *flood_sender(void *arg)
{
    struct flood *f = arg;
    for (long i = 0; i < f->n; i++) {
        struct flood_msg m = { f->tag, i };
        assert_int_equal(strand_send(f->to, &m, sizeof m), 0);
        if (i % 64 == 0)
            strand_yield();
    }
    return NULL;
}

static void *thread_sender(void *arg)
{
    flood_sender(arg);
    return NULL;
}

static void *flood_main(void *arg)
{
    (void)arg;
    long n = test_scale(200000, 20000);
    struct flood f[3] = {
        { strand_self(), n, 0 }, { strand_self(), n, 1 }, { strand_self(), n / 4, 2 },
    };
    int64_t a = SPAWN(flood_sender, &f[0]);
    int64_t b = SPAWN(flood_sender, &f[1]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_sender, &f[2]), 0);
    long next[3] = { 0, 0, 0 };
    long total = 2 * n + n / 4;
    for (long k = 0; k < total; k++) {
        struct flood_msg m;
        int64_t from = -1;
        assert_int_equal(strand_recv(&m, sizeof m, &from, STRAND_FOREVER), (ssize_t)sizeof m);
        assert_true(m.tag >= 0 && m.tag < 3);
        assert_int_equal(m.seq, next[m.tag]); /* per sender: in order, no loss, no repeat */
        next[m.tag]++;
        int64_t expect_from = m.tag == 0 ? a : m.tag == 1 ? b : 0;
        assert_int_equal(from, expect_from);
    }
    JOIN(a);
    JOIN(b);
    assert_int_equal(pthread_join(t, NULL), 0);
    char c;
    assert_int_equal(strand_recv(&c, 1, NULL, 0), -EAGAIN); /* nothing extra */
    return NULL;
}

static void test_flood(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(flood_main, NULL);
}

/* ---------------------------------------------------------------- selective receive */

static int match_kind(const void *msg, size_t len, int64_t from, void *ctx)
{
    (void)from;
    return len >= 1 && ((const char *)msg)[0] == *(const char *)ctx;
}

static void *selective_main(void *arg)
{
    (void)arg;
    int64_t me = strand_self();
    /* a1 b1 a2 c1 b2 a3 */
    const char *msgs[] = { "a1", "b1", "a2", "c1", "b2", "a3" };
    for (int i = 0; i < 6; i++)
        assert_int_equal(strand_send(me, msgs[i], 2), 0);
    char buf[8], kind;
    int64_t from;
    kind = 'b';
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, sizeof buf, &from, 0), 2);
    assert_memory_equal(buf, "b1", 2);
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, sizeof buf, &from, 0), 2);
    assert_memory_equal(buf, "b2", 2);
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, sizeof buf, &from, 0), -EAGAIN);
    kind = 'c';
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, 1, &from, 0), -EMSGSIZE);
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, sizeof buf, &from, 0), 2);
    assert_memory_equal(buf, "c1", 2);
    /* what is left is in its original order */
    const char *left[] = { "a1", "a2", "a3" };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(strand_recv(buf, sizeof buf, &from, 0), 2);
        assert_memory_equal(buf, left[i], 2);
        assert_int_equal(from, me);
    }
    assert_int_equal(strand_recv(buf, sizeof buf, &from, 0), -EAGAIN);
    return NULL;
}

static void test_selective_order(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(selective_main, NULL);
}

/* A selective receive that blocks while non-matching messages keep arriving. */
static void *noisy_sender(void *arg)
{
    int64_t to = *(int64_t *)arg;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(strand_send(to, "n", 1), 0);
        if (i % 10 == 0)
            strand_yield();
    }
    strand_sleep(2 * MS);
    assert_int_equal(strand_send(to, "wanted", 6), 0);
    return NULL;
}

static void *blocking_match_main(void *arg)
{
    (void)arg;
    int64_t me = strand_self();
    int64_t id = SPAWN(noisy_sender, &me);
    char buf[8], kind = 'w';
    int64_t from = 0;
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, sizeof buf, &from, STRAND_FOREVER), 6);
    assert_memory_equal(buf, "wanted", 6);
    assert_int_equal(from, id);
    /* the noise is all still there, in order */
    int n = 0;
    while (strand_recv(buf, sizeof buf, &from, 0) == 1)
        n++;
    assert_int_equal(n, 500);
    /* and a selective receive with a deadline times out amid noise */
    assert_int_equal(strand_send(me, "n", 1), 0);
    int64_t t0 = strand_now();
    assert_int_equal(strand_recv_match(match_kind, &kind, buf, sizeof buf, &from, t0 + 10 * MS),
                     -ETIMEDOUT);
    assert_true(strand_now() - t0 >= 9 * MS);
    assert_int_equal(strand_recv(buf, sizeof buf, &from, 0), 1);
    JOIN(id);
    return NULL;
}

static void test_blocking_match(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(blocking_match_main, NULL);
}

/* ---------------------------------------------------------------- wakeups, drops */

static void *waiting_receiver(void *arg)
{
    (void)arg;
    char buf[8];
    int64_t from;
    ssize_t n = strand_recv(buf, sizeof buf, &from, STRAND_FOREVER);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(strand_send(from, "pong", 4), 0);
    return NULL;
}

static void *keeps_mail(void *arg)
{
    strand_chan *ready = arg;
    int one = 1;
    assert_int_equal(strand_chan_send(ready, &one, STRAND_FOREVER), 0);
    assert_int_equal(strand_chan_recv(ready, &one, STRAND_FOREVER), 0); /* wait to be told */
    return NULL; /* ends with its messages unread */
}

static void *wake_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        int64_t id = SPAWN(waiting_receiver, NULL);
        if (i % 2)
            strand_yield(); /* sometimes it is parked already, sometimes not yet */
        assert_int_equal(strand_send(id, "ping", 4), 0);
        char buf[8];
        int64_t from;
        assert_int_equal(strand_recv(buf, sizeof buf, &from, STRAND_FOREVER), 4);
        assert_int_equal(from, id);
        JOIN(id);
    }

    struct strand_stats a, b;
    strand_chan *ready;
    assert_int_equal(strand_chan_create(&ready, sizeof(int), 0), 0);
    int64_t id = SPAWN(keeps_mail, ready);
    int v;
    assert_int_equal(strand_chan_recv(ready, &v, STRAND_FOREVER), 0);
    assert_int_equal(strand_stats(&a), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(strand_send(id, "unread", 6), 0);
    assert_int_equal(strand_chan_send(ready, &v, STRAND_FOREVER), 0);
    JOIN(id);
    assert_int_equal(strand_send(id, "late", 4), -ESRCH);
    assert_int_equal(strand_stats(&b), 0);
    assert_true(b.mailbox_dropped >= a.mailbox_dropped + 5);
    assert_true(b.mailbox_sent >= a.mailbox_sent + 5);
    strand_chan_release(ready);
    return NULL;
}

static void test_wake_and_drop(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(wake_main, NULL);
}

/* ---------------------------------------------------------------- concurrent selective receive */

/* Three senders flood the owner, each with increasing numbers tagged by sender; the owner
 * alternates a selective receive of one sender's messages (with a short deadline, so
 * timeouts race the wake-ups) and a plain receive. Every message arrives once, and each
 * sender's messages arrive in the order sent, whichever way they were taken. */
#define CS_SENDERS 3

struct cs {
    int64_t owner;
    long    per;
};

struct cs_msg {
    int  who;
    long seq;
};

static void *cs_sender(void *arg)
{
    struct cs *c = arg;
    static atomic_int next;
    int who = atomic_fetch_add(&next, 1) % CS_SENDERS;
    for (long i = 0; i < c->per; i++) {
        struct cs_msg m = { who, i };
        assert_int_equal(strand_send(c->owner, &m, sizeof m), 0);
        if (i % 64 == 0)
            strand_yield();
    }
    return NULL;
}

static int match_who(const void *msg, size_t len, int64_t from, void *ctx)
{
    (void)from;
    return len == sizeof(struct cs_msg) && ((const struct cs_msg *)msg)->who == *(int *)ctx;
}

static void *cs_main(void *arg)
{
    (void)arg;
    struct cs c = { strand_self(), test_scale(20000, 2000) };
    int64_t ids[CS_SENDERS];
    for (int i = 0; i < CS_SENDERS; i++)
        ids[i] = SPAWN(cs_sender, &c);
    long next[CS_SENDERS] = { 0 }, got = 0, total = CS_SENDERS * c.per;
    for (unsigned k = 0; got < total; k++) {
        struct cs_msg m;
        int who = (int)(k % CS_SENDERS);
        ssize_t n = k % 2 == 0 ? strand_recv_match(match_who, &who, &m, sizeof m, NULL,
                                                   strand_now() + 50000)
                               : strand_recv(&m, sizeof m, NULL, strand_now() + 50000);
        if (n == -ETIMEDOUT)
            continue;
        assert_int_equal(n, sizeof m);
        assert_true(m.who >= 0 && m.who < CS_SENDERS);
        if (k % 2 == 0)
            assert_int_equal(m.who, who);
        assert_int_equal(m.seq, next[m.who]); /* in order, nothing lost or repeated */
        next[m.who]++;
        got++;
    }
    for (int i = 0; i < CS_SENDERS; i++)
        JOIN(ids[i]);
    struct cs_msg m;
    assert_int_equal(strand_recv(&m, sizeof m, NULL, 0), -EAGAIN);
    return NULL;
}

static void test_concurrent_selective(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(cs_main, NULL);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_flood),
        cmocka_unit_test(test_selective_order),
        cmocka_unit_test(test_blocking_match),
        cmocka_unit_test(test_wake_and_drop),
        cmocka_unit_test(test_concurrent_selective),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
