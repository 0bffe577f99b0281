/*
 * test_monitor.c - exit reasons, monitors and links: DOWN notices with each reason
 * (NORMAL, CANCELLED, FAILED with its code, NOPROC at once for ended or never-issued ids),
 * demonitor (no DOWN after it returns, also racing the target's end), links (a failure
 * cancels the partner, NORMAL does not, trapping partners get EXIT notices for any
 * reason, unlink), a chain of 1,000 linked strands cancelled by the first one's failure,
 * and bad input.
 */
// ctest-timeout: 300
#include "test_util.h"

#include <stdatomic.h>
#include <stdbool.h>

#define MS 1000000LL

static ssize_t recv_notice(strand_notice *n, int64_t deadline)
{
    int64_t from = 0;
    ssize_t r = strand_recv(n, sizeof *n, &from, deadline);
    if (r >= 0) {
        assert_int_equal(from, STRAND_FROM_RUNTIME);
        assert_int_equal(r, (ssize_t)sizeof *n);
    }
    return r;
}

static void *ret_normal(void *arg) { return arg; }
static void *do_fail(void *arg) { strand_fail((int)(intptr_t)arg); }
static void *park_forever(void *arg)
{
    (void)arg;
    char b[4];
    int rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER);
    return (void *)(intptr_t)rc;
}

/* ---------------------------------------------------------------- monitors */

static void *down_main(void *arg)
{
    (void)arg;
    strand_notice n;
    /* NORMAL */
    int64_t id = strand_spawn(ret_normal, NULL);
    int64_t ref = strand_monitor(id);
    assert_true(ref > 0);
    assert_int_equal(recv_notice(&n, strand_deadline_in(5000 * MS)), sizeof n);
    assert_int_equal(n.kind, STRAND_NOTICE_DOWN);
    assert_int_equal(n.id, id);
    assert_int_equal(n.ref, ref);
    assert_true(n.reason == STRAND_EXIT_NORMAL || n.reason == STRAND_EXIT_NOPROC);
    assert_int_equal(strand_join(id, NULL), 0);

    /* FAILED with a code; join gives NULL */
    id = strand_spawn(park_forever, NULL);
    ref = strand_monitor(id);
    strand_send(id, "x", 1);
    assert_int_equal(recv_notice(&n, strand_deadline_in(5000 * MS)), sizeof n);
    assert_int_equal(n.reason, STRAND_EXIT_NORMAL);
    assert_int_equal(strand_join(id, NULL), 0);

    id = strand_spawn(do_fail, (void *)(intptr_t)77);
    ref = strand_monitor(id);
    assert_int_equal(recv_notice(&n, strand_deadline_in(5000 * MS)), sizeof n);
    if (n.reason != STRAND_EXIT_NOPROC) {
        assert_int_equal(n.reason, STRAND_EXIT_FAILED);
        assert_int_equal(n.code, 77);
    }
    void *res = (void *)1;
    assert_int_equal(strand_join(id, &res), 0);
    assert_null(res);

    /* CANCELLED */
    id = strand_spawn(park_forever, NULL);
    ref = strand_monitor(id);
    assert_int_equal(strand_cancel(id), 0);
    assert_int_equal(recv_notice(&n, strand_deadline_in(5000 * MS)), sizeof n);
    assert_int_equal(n.reason, STRAND_EXIT_CANCELLED);
    assert_int_equal(n.ref, ref);
    assert_int_equal(strand_join(id, &res), 0);
    assert_int_equal((int)(intptr_t)res, -ECANCELED);

    /* NOPROC at once: ended, 0, negative, never issued */
    int64_t bad[] = { id, 0, -3, (int64_t)1 << 50 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ref = strand_monitor(bad[i]);
        assert_true(ref > 0);
        assert_int_equal(recv_notice(&n, 0), sizeof n);
        assert_int_equal(n.reason, STRAND_EXIT_NOPROC);
        assert_int_equal(n.id, bad[i]);
        assert_int_equal(n.ref, ref);
    }
    assert_int_equal(strand_monitor(strand_self()), -EINVAL);
    assert_int_equal(strand_demonitor(0), -EINVAL);
    assert_int_equal(strand_demonitor(123456789), 0);
    assert_int_equal(strand_link(strand_self()), -EINVAL);
    assert_int_equal(recv_notice(&n, 0), -EAGAIN);
    return NULL;
}

static void test_down_reasons(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(down_main, NULL);
    /* plain thread */
    assert_int_equal(strand_monitor(1), -EPERM);
    assert_int_equal(strand_demonitor(1), -EPERM);
    assert_int_equal(strand_link(1), -EPERM);
    assert_int_equal(strand_unlink(1), -EPERM);
    assert_int_equal(strand_trap_exits(1), -EPERM);
}

/* Demonitor racing the target's end: after it returns no DOWN for the ref is received. */
static void *demon_main(void *arg)
{
    (void)arg;
    long rounds = test_scale(5000, 300);
    int before = 0;
    for (long i = 0; i < rounds; i++) {
        int64_t id = strand_spawn(i & 1 ? ret_normal : park_forever, NULL);
        int64_t ref = strand_monitor(id);
        assert_true(ref > 0);
        if (!(i & 1))
            strand_cancel(id);
        if (i % 3 == 0)
            strand_yield();
        assert_int_equal(strand_demonitor(ref), 0);
        assert_int_equal(strand_join(id, NULL), 0);
        strand_notice n;
        if (recv_notice(&n, 0) >= 0)
            fail_msg("round %ld: a DOWN (ref %lld) after demonitor", i, (long long)n.ref);
        (void)before;
    }
    /* two monitors of one strand: two DOWNs; demonitor one, get the other */
    int64_t id = strand_spawn(park_forever, NULL);
    int64_t r1 = strand_monitor(id), r2 = strand_monitor(id);
    assert_true(r1 != r2);
    assert_int_equal(strand_demonitor(r1), 0);
    strand_cancel(id);
    strand_notice n;
    assert_int_equal(recv_notice(&n, strand_deadline_in(5000 * MS)), sizeof n);
    assert_int_equal(n.ref, r2);
    assert_int_equal(recv_notice(&n, 0), -EAGAIN);
    assert_int_equal(strand_join(id, NULL), 0);
    return NULL;
}

static void test_demonitor_races(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(demon_main, NULL);
}

/* Many watchers of one target, from two workers, monitor and demonitor as it ends. */
typedef struct many {
    int64_t target;
    atomic_int downs, kept;
} many;

static void *watcher(void *arg)
{
    many *m = arg;
    int64_t ref = strand_monitor(m->target);
    assert_true(ref > 0);
    bool keep = (strand_self() & 1) != 0;
    if (!keep) {
        assert_int_equal(strand_demonitor(ref), 0);
    } else {
        atomic_fetch_add(&m->kept, 1);
    }
    strand_notice n;
    ssize_t r = recv_notice(&n, keep ? strand_deadline_in(10000 * MS) : strand_deadline_in(2 * MS));
    if (keep) {
        assert_int_equal(r, sizeof n);
        assert_int_equal(n.ref, ref);
        atomic_fetch_add(&m->downs, 1);
    } else {
        assert_int_equal(r, -ETIMEDOUT);
    }
    return NULL;
}

static void *many_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < test_scale(20, 4); round++) {
        many m = { .target = strand_spawn(park_forever, NULL) };
        int nw = (int)test_scale(200, 40);
        int64_t ids[200];
        for (int i = 0; i < nw; i++)
            ids[i] = strand_spawn(watcher, &m);
        strand_yield();
        strand_cancel(m.target);
        for (int i = 0; i < nw; i++)
            assert_int_equal(strand_join(ids[i], NULL), 0);
        assert_int_equal(strand_join(m.target, NULL), 0);
        assert_int_equal(atomic_load(&m.downs), atomic_load(&m.kept));
    }
    return NULL;
}

static void test_monitor_many(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(many_main, NULL);
}

/* ---------------------------------------------------------------- links */

typedef struct linked {
    int64_t partner;
    int trap;
    int rc;
    strand_notice n;
} linked;

static void *linker(void *arg)
{
    linked *l = arg;
    if (l->trap)
        assert_int_equal(strand_trap_exits(1), 0);
    assert_int_equal(strand_link(l->partner), 0);
    assert_int_equal(strand_link(l->partner), 0); /* one link */
    int64_t from = 0;
    l->rc = (int)strand_recv(&l->n, sizeof l->n, &from, strand_deadline_in(10000 * MS));
    if (l->rc > 0)
        assert_int_equal(from, STRAND_FROM_RUNTIME);
    return NULL;
}

static void *fail_on_msg(void *arg)
{
    char b[4];
    int rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER);
    if (rc > 0 && b[0] == 'f')
        strand_fail((int)(intptr_t)arg);
    return NULL;
}

static void *links_main(void *arg)
{
    (void)arg;
    /* a failure cancels a non-trapping partner */
    linked l = { .partner = strand_spawn(fail_on_msg, (void *)5) };
    int64_t me = strand_spawn(linker, &l);
    strand_sleep(2 * MS);
    strand_send(l.partner, "f", 1);
    assert_int_equal(strand_join(me, NULL), 0);
    assert_int_equal(strand_join(l.partner, NULL), 0);
    assert_int_equal(l.rc, -ECANCELED);

    /* a NORMAL end does not; the partner stays, then its own cancel ends it */
    linked l2 = { .partner = strand_spawn(fail_on_msg, (void *)5) };
    me = strand_spawn(linker, &l2);
    strand_sleep(2 * MS);
    strand_send(l2.partner, "n", 1);
    assert_int_equal(strand_join(l2.partner, NULL), 0);
    strand_sleep(5 * MS);
    assert_int_equal(strand_cancel(me), 0);
    assert_int_equal(strand_join(me, NULL), 0);
    assert_int_equal(l2.rc, -ECANCELED);

    /* trapping: an EXIT notice with the reason, NORMAL included */
    for (int k = 0; k < 2; k++) {
        linked t = { .partner = strand_spawn(fail_on_msg, (void *)9), .trap = 1 };
        me = strand_spawn(linker, &t);
        strand_sleep(2 * MS);
        strand_send(t.partner, k ? "f" : "n", 1);
        assert_int_equal(strand_join(me, NULL), 0);
        assert_int_equal(t.rc, sizeof t.n);
        assert_int_equal(t.n.kind, STRAND_NOTICE_EXIT);
        assert_int_equal(t.n.id, t.partner);
        assert_int_equal(t.n.reason, k ? STRAND_EXIT_FAILED : STRAND_EXIT_NORMAL);
        assert_int_equal(t.n.code, k ? 9 : 0);
        assert_int_equal(strand_join(t.partner, NULL), 0);
    }

    /* linking to an ended strand: NOPROC, as a trapped EXIT */
    assert_int_equal(strand_trap_exits(1), 0);
    assert_int_equal(strand_link(l.partner), -ESRCH);
    assert_int_equal(strand_link(0), -ESRCH);
    strand_notice n;
    int64_t from;
    assert_int_equal(strand_recv(&n, sizeof n, &from, 0), sizeof n);
    assert_int_equal(n.kind, STRAND_NOTICE_EXIT);
    assert_int_equal(n.reason, STRAND_EXIT_NOPROC);
    assert_int_equal(n.id, l.partner);
    assert_int_equal(strand_recv(&n, sizeof n, &from, 0), sizeof n);
    assert_int_equal(n.id, 0);

    /* unlink: the partner's failure no longer reaches us */
    int64_t p = strand_spawn(fail_on_msg, (void *)1);
    assert_int_equal(strand_link(p), 0);
    assert_int_equal(strand_unlink(p), 0);
    assert_int_equal(strand_unlink(p), 0);
    strand_send(p, "f", 1);
    assert_int_equal(strand_join(p, NULL), 0);
    assert_int_equal(strand_recv(&n, sizeof n, &from, strand_deadline_in(5 * MS)), -ETIMEDOUT);
    assert_int_equal(strand_trap_exits(0), 1);

    /* not trapping: linking to an ended strand cancels the caller */
    assert_int_equal(strand_cancelled(), 0);
    assert_int_equal(strand_link(p), -ESRCH);
    assert_int_equal(strand_cancelled(), 1);
    assert_int_equal(strand_sleep(1 * MS), -ECANCELED);
    return NULL;
}

static void test_links(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(links_main, NULL);
}

/* ---------------------------------------------------------------- a chain of 1,000 */

typedef struct chain {
    int64_t *ids;
    int n;
    atomic_int cancelled;
    atomic_int ready;
} chain;

static void *chain_link(void *arg)
{
    chain *c = arg;
    int i = atomic_fetch_add(&c->ready, 0);
    (void)i;
    char b[4];
    int rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER);
    if (rc > 0)
        strand_fail(3);
    if (rc == -ECANCELED)
        atomic_fetch_add(&c->cancelled, 1);
    return NULL;
}

/* Strand i links itself to strand i-1 (which spawned it), then parks. */
typedef struct chain_start {
    chain *c;
    int i;
} chain_start;

static void *chain_spawner(void *arg)
{
    chain_start *cs = arg;
    chain *c = cs->c;
    int i = cs->i;
    c->ids[i] = strand_self();
    if (i + 1 < c->n) {
        chain_start *next = malloc(sizeof *next);
        *next = (chain_start){ c, i + 1 };
        int64_t id = strand_spawn(chain_spawner, next);
        assert_true(id > 0);
        assert_int_equal(strand_link(id), 0);
        assert_int_equal(strand_detach(id), 0);
    } else {
        atomic_store(&c->ready, 1);
    }
    free(cs);
    return chain_link(c);
}

static void *chain_main(void *arg)
{
    (void)arg;
    chain c = { .n = (int)test_scale(1000, 200) };
    c.ids = calloc((size_t)c.n, sizeof *c.ids);
    chain_start *cs = malloc(sizeof *cs);
    *cs = (chain_start){ &c, 0 };
    int64_t first = strand_spawn(chain_spawner, cs);
    while (!atomic_load(&c.ready))
        strand_sleep(1 * MS);
    int64_t last = c.ids[c.n - 1];
    int64_t ref = strand_monitor(last);
    strand_sleep(2 * MS);
    assert_int_equal(strand_send(first, "f", 1), 0); /* the first fails */
    strand_notice n;
    assert_int_equal(recv_notice(&n, strand_deadline_in(20000 * MS)), sizeof n);
    assert_int_equal(n.ref, ref);
    assert_int_equal(n.reason, STRAND_EXIT_CANCELLED);
    assert_int_equal(strand_join(first, NULL), 0);
    /* every other strand of the chain was cancelled by its neighbour's end */
    while (atomic_load(&c.cancelled) < c.n - 1)
        strand_sleep(1 * MS);
    assert_int_equal(atomic_load(&c.cancelled), c.n - 1);
    free(c.ids);
    return NULL;
}

static void test_link_chain(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(chain_main, NULL);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_reasons),
        cmocka_unit_test(test_demonitor_races),
        cmocka_unit_test(test_monitor_many),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_link_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
