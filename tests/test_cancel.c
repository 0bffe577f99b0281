/*
 * test_cancel.c - cancellation (strand_cancel, strand_cancelled, strand_cancel_shield):
 * every blocking call cancelled while parked, many rounds on 2 workers, each returning
 * -ECANCELED and every later wait too; a cancel before the first wait; cancel racing a
 * wake (exactly one outcome, nothing accepted is lost) and a timeout; the shield;
 * strand_blocking; CPU loops; bad input.
 */
// ctest-timeout: 300
#include "test_util.h"

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MS 1000000LL

/* ---------------------------------------------------------------- helpers */

static int read_state(struct strand *s, void *ctx)
{
    *(int *)ctx = atomic_load_explicit(&s->state, memory_order_acquire);
    return 0;
}

/* Yield until strand id is parked (or has ended); false if it never got there. */
static bool wait_parked(int64_t id)
{
    for (long i = 0; i < 10000000; i++) {
        int st = -1;
        if (strand__with_live(id, read_state, &st) != 0)
            return false;
        if (st == STRAND__PARKED)
            return true;
        strand_yield();
    }
    return false;
}

/* ---------------------------------------------------------------- one wait per kind */

enum kind {
    K_JOIN, K_CHAN_RECV, K_CHAN_SEND, K_SELECT, K_MAILBOX, K_MATCH, K_SLEEP, K_MUTEX,
    K_COND, K_WG, K_SEM, K_FD_READ, K_ACCEPT, K_JOIN_UNTIL, K_COUNT
};

static const char *kind_name[K_COUNT] = {
    "join", "chan recv", "chan send", "select", "mailbox", "recv_match", "sleep", "mutex",
    "cond", "wait group", "semaphore", "fd read", "accept", "join_until",
};

typedef struct fixture {
    strand_chan *ch;      /* unbuffered, nobody on the other side */
    strand_chan *ch2;
    strand_mutex mx;      /* held by the test */
    strand_mutex cmx;     /* for the cond wait: taken by the waiter */
    strand_cond cv;
    strand_wg wg;         /* count 1, never done */
    strand_sem sem;       /* 0 */
    int sv[2];            /* socketpair: nothing written */
    int lfd;              /* listening socket, nobody connects */
    int64_t forever;      /* a strand parked until the fixture is torn down */
} fixture;

typedef struct round_arg {
    fixture *f;
    int kind;
    int rc, rc2, held;
} round_arg;

static int never(const void *m, size_t len, int64_t from, void *ctx)
{
    (void)m; (void)len; (void)from; (void)ctx;
    return 0;
}

static int wait_once(fixture *f, int kind, round_arg *ra)
{
    int v = 0;
    char buf[8];
    switch (kind) {
    case K_JOIN:       return strand_join(f->forever, NULL);
    case K_JOIN_UNTIL: return strand_join_until(f->forever, NULL, strand_deadline_in(10000 * MS));
    case K_CHAN_RECV:  return strand_chan_recv(f->ch, &v, STRAND_FOREVER);
    case K_CHAN_SEND:  return strand_chan_send(f->ch, &v, STRAND_FOREVER);
    case K_SELECT: {
        strand_select_case c[2] = {
            { .chan = f->ch, .op = STRAND_SELECT_RECV, .elem = &v },
            { .chan = f->ch2, .op = STRAND_SELECT_RECV, .elem = &v },
        };
        return strand_select(c, 2, strand_deadline_in(10000 * MS));
    }
    case K_MAILBOX:    return (int)strand_recv(buf, sizeof buf, NULL, STRAND_FOREVER);
    case K_MATCH:      return (int)strand_recv_match(never, NULL, buf, sizeof buf, NULL, STRAND_FOREVER);
    case K_SLEEP:      return strand_sleep(10000 * MS);
    case K_MUTEX:      return strand_mutex_lock(&f->mx, STRAND_FOREVER);
    case K_COND: {
        assert_int_equal(strand_mutex_lock(&f->cmx, STRAND_FOREVER), 0);
        int rc = strand_cond_wait(&f->cv, &f->cmx, STRAND_FOREVER);
        ra->held = strand_mutex_unlock(&f->cmx) == 0; /* cond_wait returns holding it */
        return rc;
    }
    case K_WG:         return strand_wg_wait(&f->wg, STRAND_FOREVER);
    case K_SEM:        return strand_sem_wait(&f->sem, STRAND_FOREVER);
    case K_FD_READ:    return (int)strand_read(f->sv[0], buf, sizeof buf, STRAND_FOREVER);
    case K_ACCEPT:     return strand_accept(f->lfd, NULL, NULL, STRAND_FOREVER);
    }
    return -EPROTO;
}

static void *round_fn(void *arg)
{
    round_arg *ra = arg;
    ra->held = 1;
    ra->rc = wait_once(ra->f, ra->kind, ra);
    /* Every later wait is cancelled too. */
    ra->rc2 = strand_sleep(10000 * MS);
    return NULL;
}

static void *forever_fn(void *arg)
{
    strand_chan *ch = arg;
    int v;
    int prev = strand_cancel_shield(1);
    (void)prev;
    (void)strand_chan_recv(ch, &v, STRAND_FOREVER); /* until the channel closes */
    return NULL;
}

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(strand_chan_create(&f->ch, sizeof(int), 0), 0);
    assert_int_equal(strand_chan_create(&f->ch2, sizeof(int), 0), 0);
    strand_mutex_init(&f->mx);
    strand_mutex_init(&f->cmx);
    strand_cond_init(&f->cv);
    strand_wg_init(&f->wg);
    strand_wg_add(&f->wg, 1);
    strand_sem_init(&f->sem, 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_un { sa_family_t fam; char path[108]; } a = { AF_UNIX, "" };
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(sa_family_t)), 0); /* autobind */
    assert_int_equal(listen(f->lfd, 4), 0);
    f->forever = strand_spawn(forever_fn, f->ch2);
    assert_true(f->forever > 0);
    assert_int_equal(strand_mutex_lock(&f->mx, STRAND_FOREVER), 0);
}

static void fixture_fini(fixture *f)
{
    assert_int_equal(strand_mutex_unlock(&f->mx), 0);
    strand_chan_close(f->ch2);
    assert_int_equal(strand_join(f->forever, NULL), 0);
    strand_chan_release(f->ch);
    strand_chan_release(f->ch2);
    strand_fd_close(f->sv[0]);
    strand_fd_close(f->sv[1]);
    strand_fd_close(f->lfd);
}

static void *parked_main(void *arg)
{
    (void)arg;
    fixture f;
    fixture_init(&f);
    long rounds = test_scale(10000, 500);
    int seen[K_COUNT] = { 0 };
    for (long i = 0; i < rounds; i++) {
        int kind = (int)(i % K_COUNT);
        round_arg ra = { .f = &f, .kind = kind };
        int64_t id = strand_spawn(round_fn, &ra);
        assert_true(id > 0);
        /* Mostly parked first; every 8th round the cancel may come before the wait. */
        if (i % 8 != 7)
            assert_true(wait_parked(id));
        assert_int_equal(strand_cancel(id), 0);
        assert_int_equal(strand_join(id, NULL), 0);
        if (ra.rc != -ECANCELED)
            fail_msg("%s: rc %d, want -ECANCELED", kind_name[kind], ra.rc);
        assert_int_equal(ra.rc2, -ECANCELED);
        assert_true(ra.held);
        assert_int_equal(strand_cancel(id), -ESRCH);
        seen[kind]++;
    }
    for (int k = 0; k < K_COUNT; k++)
        assert_true(seen[k] > 0);
    print_message("%ld rounds, %d kinds of wait, each returned -ECANCELED\n", rounds, K_COUNT);
    fixture_fini(&f);
    return NULL;
}

static void test_each_wait_cancelled(void **state)
{
    (void)state;
    test_deadline(240);
    test_run_strand(parked_main, NULL);
}

/* ---------------------------------------------------------------- cancel racing a wake */

typedef struct race {
    strand_chan *ch;  /* capacity 1 */
    int rc, got;
} race;

static void *race_recv(void *arg)
{
    race *r = arg;
    r->got = -1;
    r->rc = strand_chan_recv(r->ch, &r->got, strand_deadline_in(5000 * MS));
    return NULL;
}

static void *race_sender(void *arg)
{
    race *r = arg;
    int v = 42;
    assert_int_equal(strand_chan_send(r->ch, &v, 0), 0);
    return NULL;
}

static void *wake_race_main(void *arg)
{
    (void)arg;
    long rounds = test_scale(5000, 300);
    int won_wake = 0, won_cancel = 0;
    for (long i = 0; i < rounds; i++) {
        race r = { 0 };
        assert_int_equal(strand_chan_create(&r.ch, sizeof(int), 1), 0);
        int64_t id = strand_spawn(race_recv, &r);
        assert_true(wait_parked(id));
        int64_t s = strand_spawn(race_sender, &r); /* on the other worker, often */
        if (i & 1)
            strand_yield();
        int crc = strand_cancel(id); /* -ESRCH: the wake won and it has ended already */
        assert_true(crc == 0 || crc == -ESRCH);
        assert_int_equal(strand_join(s, NULL), 0);
        assert_int_equal(strand_join(id, NULL), 0);
        int left = -1;
        int lrc = strand_chan_recv(r.ch, &left, 0);
        if (r.rc == 0) {
            /* the wake won: the value was received, and only once */
            assert_int_equal(r.got, 42);
            assert_int_equal(lrc, -EAGAIN);
            won_wake++;
        } else {
            /* the cancel won: the value is still in the channel, not lost */
            assert_int_equal(r.rc, -ECANCELED);
            assert_int_equal(lrc, 0);
            assert_int_equal(left, 42);
            won_cancel++;
        }
        strand_chan_release(r.ch);
    }
    print_message("cancel vs wake: wake won %d, cancel won %d\n", won_wake, won_cancel);
    assert_int_equal(won_wake + won_cancel, rounds);
    return NULL;
}

static void test_cancel_races_wake(void **state)
{
    (void)state;
    test_deadline(240);
    test_run_strand(wake_race_main, NULL);
}

/* A message sent while the receiver is being cancelled is never lost: either received, or
 * still in the mailbox when the (shielded) receiver looks again. */
typedef struct mrace {
    int rc, rc_after;
    char got[4];
} mrace;

static void *mrace_recv(void *arg)
{
    mrace *m = arg;
    m->rc = (int)strand_recv(m->got, sizeof m->got, NULL, strand_deadline_in(5000 * MS));
    strand_cancel_shield(1);
    char again[4];
    m->rc_after = (int)strand_recv(again, sizeof again, NULL, strand_deadline_in(5000 * MS));
    return NULL;
}

static void *mrace_main(void *arg)
{
    (void)arg;
    long rounds = test_scale(3000, 200);
    for (long i = 0; i < rounds; i++) {
        mrace m = { 0 };
        int64_t id = strand_spawn(mrace_recv, &m);
        assert_true(wait_parked(id));
        assert_int_equal(strand_send(id, "hi", 3), 0);
        assert_int_equal(strand_cancel(id), 0);
        assert_int_equal(strand_send(id, "yo", 3), 0);
        assert_int_equal(strand_join(id, NULL), 0);
        if (m.rc == 3) {
            assert_string_equal(m.got, "hi");
            assert_int_equal(m.rc_after, 3); /* "yo" */
        } else {
            assert_int_equal(m.rc, -ECANCELED);
            assert_int_equal(m.rc_after, 3); /* "hi", "yo" dropped at exit, counted */
        }
    }
    return NULL;
}

static void test_cancel_races_mailbox(void **state)
{
    (void)state;
    test_deadline(240);
    test_run_strand(mrace_main, NULL);
}

/* ---------------------------------------------------------------- cancel racing a timeout */

typedef struct trace {
    int kind;
    int64_t deadline;
    int rc;
} trace;

static void *timeout_waiter(void *arg)
{
    trace *t = arg;
    char buf[4];
    if (t->kind == 0)
        t->rc = strand_sleep_until(t->deadline);
    else
        t->rc = (int)strand_recv(buf, sizeof buf, NULL, t->deadline);
    return NULL;
}

static void *timeout_race_main(void *arg)
{
    (void)arg;
    long rounds = test_scale(4000, 300);
    int timed = 0, cancelled = 0;
    for (long i = 0; i < rounds; i++) {
        trace t = { .kind = (int)(i & 1), .deadline = strand_deadline_in(200000 + (i % 7) * 20000) };
        int64_t id = strand_spawn(timeout_waiter, &t);
        while (strand_now() < t.deadline - 20000)
            strand_yield();
        int crc = strand_cancel(id); /* -ESRCH: timed out and ended already */
        assert_true(crc == 0 || crc == -ESRCH);
        assert_int_equal(strand_join(id, NULL), 0);
        int ok_timeout = t.kind == 0 ? 0 : -ETIMEDOUT;
        if (t.rc == ok_timeout)
            timed++;
        else if (t.rc == -ECANCELED)
            cancelled++;
        else
            fail_msg("kind %d: rc %d", t.kind, t.rc);
    }
    print_message("cancel vs timeout: timeout %d, cancel %d\n", timed, cancelled);
    return NULL;
}

static void test_cancel_races_timeout(void **state)
{
    (void)state;
    test_deadline(240);
    test_run_strand(timeout_race_main, NULL);
}

/* ---------------------------------------------------------------- shield, blocking, loops */

static void *shielded(void *arg)
{
    int *rcs = arg;
    assert_int_equal(strand_cancel_shield(1), 0);
    rcs[0] = strand_sleep(30 * MS);         /* cancelled meanwhile: not interrupted */
    rcs[1] = strand_cancelled();
    assert_int_equal(strand_cancel_shield(0), 1);
    rcs[2] = strand_sleep(10000 * MS);      /* now it is */
    return NULL;
}

static void *spin_loop(void *arg)
{
    long *n = arg;
    while (!strand_cancelled()) {
        (*n)++;
        strand_maybe_yield();
    }
    return NULL;
}

static void *off_loaded(void *arg)
{
    usleep(20000);
    *(int *)arg = 7;
    return arg;
}

static void *in_blocking(void *arg)
{
    int *out = arg;
    void *res = NULL;
    out[0] = strand_blocking(off_loaded, &out[1], &res);
    out[2] = res == &out[1];
    return NULL;
}

static void *misc_main(void *arg)
{
    (void)arg;
    int rcs[3] = { 1, 1, 1 };
    int64_t id = strand_spawn(shielded, rcs);
    assert_true(wait_parked(id));
    assert_int_equal(strand_cancel(id), 0);
    assert_int_equal(strand_join(id, NULL), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 1);
    assert_int_equal(rcs[2], -ECANCELED);

    long n = 0;
    id = strand_spawn(spin_loop, &n);
    strand_sleep(5 * MS);
    assert_int_equal(strand_cancel(id), 0);
    assert_int_equal(strand_join(id, NULL), 0);

    int out[3] = { 0, 0, 0 };
    id = strand_spawn(in_blocking, out);
    assert_true(wait_parked(id));
    assert_int_equal(strand_cancel(id), 0);
    assert_int_equal(strand_join(id, NULL), 0);
    assert_int_equal(out[0], -ECANCELED);  /* after the call returned ... */
    assert_int_equal(out[1], 7);           /* ... having run to the end */
    assert_int_equal(out[2], 1);

    /* cancelling yourself: the next wait returns -ECANCELED */
    assert_int_equal(strand_cancelled(), 0);
    assert_int_equal(strand_cancel(strand_self()), 0);
    assert_int_equal(strand_cancelled(), 1);
    int v;
    strand_chan *ch;
    assert_int_equal(strand_chan_create(&ch, sizeof v, 1), 0);
    v = 5;
    assert_int_equal(strand_chan_send(ch, &v, STRAND_FOREVER), 0); /* no wait needed */
    assert_int_equal(strand_chan_recv(ch, &v, STRAND_FOREVER), 0);
    assert_int_equal(strand_chan_recv(ch, &v, STRAND_FOREVER), -ECANCELED);
    assert_int_equal(strand_chan_recv(ch, &v, 0), -EAGAIN);
    strand_chan_release(ch);
    assert_int_equal(strand_sleep(1 * MS), -ECANCELED);
    int prev = strand_cancel_shield(1);
    assert_int_equal(strand_sleep(1 * MS), 0);
    strand_cancel_shield(prev);
    return NULL;
}

static void test_shield_blocking_loops(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(misc_main, NULL);
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_int_equal(strand_cancel(0), -ESRCH);
    assert_int_equal(strand_cancel(-5), -ESRCH);
    assert_int_equal(strand_cancel((int64_t)1 << 50), -ESRCH);
    assert_int_equal(strand_cancel(INT64_MAX), -ESRCH);
    assert_int_equal(strand_cancelled(), 0);
    assert_int_equal(strand_cancel_shield(1), -EPERM);
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
        cmocka_unit_test(test_each_wait_cancelled),
        cmocka_unit_test(test_cancel_races_wake),
        cmocka_unit_test(test_cancel_races_mailbox),
        cmocka_unit_test(test_cancel_races_timeout),
        cmocka_unit_test(test_shield_blocking_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
