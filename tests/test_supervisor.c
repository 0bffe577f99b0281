/*
 * test_supervisor.c - supervisors: each strategy (one_for_one, one_for_all,
 * rest_for_one), each restart type, intensity overflow (the supervisor stops its children
 * and ends FAILED with STRAND_SUP_GAVE_UP), ordered start and reverse-order stop when it
 * is cancelled, a child that ignores its cancel (reported, not waited for forever), a
 * two-level tree that escalates, and bad specs.
 */
// ctest-timeout: 300
#include "test_util.h"

#include <stdatomic.h>
#include <stdbool.h>

#define MS 1000000LL
#define K 3

typedef struct ctl {
    atomic_llong ids[K];
    atomic_int   starts[K];
    atomic_int   cancelled[K];
    atomic_int   order[64];  /* k of each start (k) and stop (10 + k), in order */
    atomic_int   norder;
} ctl;

typedef struct karg {
    ctl *c;
    int  k;
} karg;

static void note(ctl *c, int v)
{
    int i = atomic_fetch_add(&c->norder, 1);
    if (i < 64)
        atomic_store(&c->order[i], v);
}

static void *kid(void *p)
{
    karg *a = p;
    ctl *c = a->c;
    note(c, a->k);
    atomic_store(&c->ids[a->k], strand_self());
    atomic_fetch_add(&c->starts[a->k], 1);
    char b[4];
    int rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER);
    if (rc > 0 && b[0] == 'f')
        strand_fail(a->k + 1);
    if (rc == -ECANCELED) {
        note(c, 10 + a->k);
        atomic_fetch_add(&c->cancelled[a->k], 1);
    }
    return NULL;
}

static bool wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 20000; i++) {
        if (atomic_load(v) >= want)
            return true;
        strand_sleep(1 * MS);
    }
    return false;
}

typedef struct setup {
    ctl c;
    karg a[K];
    strand_child_spec kids[K];
    strand_sup_spec spec;
} setup;

static void setup_init(setup *s, int strategy, const int restart[K])
{
    memset(s, 0, sizeof *s);
    static const char *names[K] = { "kid0", "kid1", "kid2" };
    for (int k = 0; k < K; k++) {
        s->a[k] = (karg){ &s->c, k };
        s->kids[k] = (strand_child_spec){ kid, &s->a[k], names[k], restart[k], 0 };
    }
    s->spec = (strand_sup_spec){ strategy, 10, 10000 * MS, s->kids, K };
}

static void tell(setup *s, int k, const char *what)
{
    assert_int_equal(strand_send(atomic_load(&s->c.ids[k]), what, 2), 0);
}

static void stop_sup(int64_t sup)
{
    int64_t ref = strand_monitor(sup);
    assert_int_equal(strand_cancel(sup), 0);
    strand_notice n;
    assert_int_equal(strand_recv(&n, sizeof n, NULL, strand_deadline_in(20000 * MS)), sizeof n);
    assert_int_equal(n.ref, ref);
    assert_int_equal(n.reason, STRAND_EXIT_CANCELLED);
    assert_int_equal(strand_join(sup, NULL), 0);
}

/* ---------------------------------------------------------------- strategies */

static void run_strategy(int strategy, const int want[K])
{
    static const int perm[K] = { STRAND_PERMANENT, STRAND_PERMANENT, STRAND_PERMANENT };
    setup s;
    setup_init(&s, strategy, perm);
    int64_t sup = strand_supervise(&s.spec);
    assert_true(sup > 0);
    for (int k = 0; k < K; k++)
        assert_true(wait_for(&s.c.starts[k], 1));
    /* started in order */
    for (int k = 0; k < K; k++)
        assert_int_equal(atomic_load(&s.c.order[k]), k);
    tell(&s, 1, "f");
    for (int k = 0; k < K; k++)
        assert_true(wait_for(&s.c.starts[k], want[k]));
    strand_sleep(5 * MS);
    for (int k = 0; k < K; k++)
        assert_int_equal(atomic_load(&s.c.starts[k]), want[k]);
    stop_sup(sup);
}

static void *strategies_main(void *arg)
{
    (void)arg;
    run_strategy(STRAND_ONE_FOR_ONE, (const int[K]){ 1, 2, 1 });
    run_strategy(STRAND_ONE_FOR_ALL, (const int[K]){ 2, 2, 2 });
    run_strategy(STRAND_REST_FOR_ONE, (const int[K]){ 1, 2, 2 });
    return NULL;
}

static void test_strategies(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(strategies_main, NULL);
}

/* ---------------------------------------------------------------- restart types */

static void *restart_main(void *arg)
{
    (void)arg;
    static const int types[K] = { STRAND_PERMANENT, STRAND_TRANSIENT, STRAND_TEMPORARY };
    setup s;
    setup_init(&s, STRAND_ONE_FOR_ONE, types);
    int64_t sup = strand_supervise(&s.spec);
    for (int k = 0; k < K; k++)
        assert_true(wait_for(&s.c.starts[k], 1));
    tell(&s, 0, "n"); /* permanent: restarted even after a normal end */
    assert_true(wait_for(&s.c.starts[0], 2));
    tell(&s, 1, "n"); /* transient, normal: not restarted */
    strand_sleep(10 * MS);
    assert_int_equal(atomic_load(&s.c.starts[1]), 1);
    tell(&s, 2, "f"); /* temporary, failed: not restarted */
    strand_sleep(10 * MS);
    assert_int_equal(atomic_load(&s.c.starts[2]), 1);
    stop_sup(sup);

    setup_init(&s, STRAND_ONE_FOR_ONE, types);
    sup = strand_supervise(&s.spec);
    for (int k = 0; k < K; k++)
        assert_true(wait_for(&s.c.starts[k], 1));
    tell(&s, 1, "f"); /* transient, failed: restarted */
    assert_true(wait_for(&s.c.starts[1], 2));
    stop_sup(sup);
    return NULL;
}

static void test_restart_types(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(restart_main, NULL);
}

/* ---------------------------------------------------------------- intensity, stop order */

static void *intensity_main(void *arg)
{
    (void)arg;
    static const int perm[K] = { STRAND_PERMANENT, STRAND_PERMANENT, STRAND_PERMANENT };
    setup s;
    setup_init(&s, STRAND_ONE_FOR_ONE, perm);
    s.spec.intensity = 2;
    int64_t sup = strand_supervise(&s.spec);
    int64_t ref = strand_monitor(sup);
    for (int k = 0; k < K; k++)
        assert_true(wait_for(&s.c.starts[k], 1));
    for (int r = 1; r <= 2; r++) {
        tell(&s, 2, "f");
        assert_true(wait_for(&s.c.starts[2], r + 1));
    }
    tell(&s, 2, "f"); /* the third restart in the period: too many */
    strand_notice n;
    assert_int_equal(strand_recv(&n, sizeof n, NULL, strand_deadline_in(20000 * MS)), sizeof n);
    assert_int_equal(n.ref, ref);
    assert_int_equal(n.reason, STRAND_EXIT_FAILED);
    assert_int_equal(n.code, STRAND_SUP_GAVE_UP);
    assert_int_equal(strand_join(sup, NULL), 0);
    /* the others were stopped (cancelled), in reverse order */
    assert_int_equal(atomic_load(&s.c.cancelled[0]), 1);
    assert_int_equal(atomic_load(&s.c.cancelled[1]), 1);
    assert_int_equal(atomic_load(&s.c.starts[2]), 3);
    int last = atomic_load(&s.c.norder);
    assert_int_equal(atomic_load(&s.c.order[last - 2]), 11);
    assert_int_equal(atomic_load(&s.c.order[last - 1]), 10);

    /* cancelled supervisor: children stopped in reverse order of start */
    setup_init(&s, STRAND_ONE_FOR_ONE, perm);
    sup = strand_supervise(&s.spec);
    for (int k = 0; k < K; k++)
        assert_true(wait_for(&s.c.starts[k], 1));
    stop_sup(sup);
    assert_int_equal(atomic_load(&s.c.norder), 6);
    assert_int_equal(atomic_load(&s.c.order[3]), 12);
    assert_int_equal(atomic_load(&s.c.order[4]), 11);
    assert_int_equal(atomic_load(&s.c.order[5]), 10);
    return NULL;
}

static void test_intensity_and_stop_order(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(intensity_main, NULL);
}

/* A child that ignores its cancel is reported and left, the supervisor still ends. */
static atomic_int stubborn_go;

static void *stubborn(void *arg)
{
    (void)arg;
    strand_cancel_shield(1);
    while (!atomic_load(&stubborn_go))
        strand_sleep(1 * MS);
    return NULL;
}

static void *stubborn_main(void *arg)
{
    (void)arg;
    strand_child_spec c = { stubborn, NULL, "stubborn", STRAND_PERMANENT, 20 * MS };
    strand_sup_spec spec = { STRAND_ONE_FOR_ONE, 1, 0, &c, 1 };
    int64_t sup = strand_supervise(&spec);
    strand_sleep(5 * MS);
    int64_t t0 = strand_now();
    stop_sup(sup);
    assert_true(strand_now() - t0 < 10000 * MS);
    atomic_store(&stubborn_go, 1);
    return NULL;
}

static void test_stubborn_child(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(stubborn_main, NULL);
}

/* ---------------------------------------------------------------- a tree */

typedef struct tree {
    atomic_int inner_starts;
    atomic_int leaf_starts;
    strand_child_spec leaf;
    strand_sup_spec inner;
} tree;

static void *failing_leaf(void *arg)
{
    tree *t = arg;
    atomic_fetch_add(&t->leaf_starts, 1);
    strand_sleep(1 * MS);
    strand_fail(1);
}

static void *inner_sup(void *arg)
{
    tree *t = arg;
    atomic_fetch_add(&t->inner_starts, 1);
    int rc = strand_supervisor_run(&t->inner);
    assert_int_equal(rc, -ECANCELED); /* only when stopped: giving up does not return */
    return NULL;
}

static void *tree_main(void *arg)
{
    (void)arg;
    tree t = { 0 };
    t.leaf = (strand_child_spec){ failing_leaf, &t, "leaf", STRAND_PERMANENT, 0 };
    t.inner = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 2, 10000 * MS, &t.leaf, 1 };
    strand_child_spec in = { inner_sup, &t, "inner", STRAND_PERMANENT, 0 };
    strand_sup_spec outer = { STRAND_ONE_FOR_ONE, 1, 10000 * MS, &in, 1 };
    int64_t sup = strand_supervise(&outer);
    int64_t ref = strand_monitor(sup);
    /* the leaf fails, the inner supervisor gives up after 2 restarts, the outer one
     * restarts it once, it gives up again, and the outer one gives up too */
    strand_notice n;
    assert_int_equal(strand_recv(&n, sizeof n, NULL, strand_deadline_in(20000 * MS)), sizeof n);
    assert_int_equal(n.ref, ref);
    assert_int_equal(n.reason, STRAND_EXIT_FAILED);
    assert_int_equal(n.code, STRAND_SUP_GAVE_UP);
    assert_int_equal(strand_join(sup, NULL), 0);
    assert_int_equal(atomic_load(&t.inner_starts), 2);
    assert_int_equal(atomic_load(&t.leaf_starts), 6);
    return NULL;
}

static void test_tree_escalates(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(tree_main, NULL);
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_specs(void **state)
{
    (void)state;
    strand_child_spec ok = { kid, NULL, "x", STRAND_PERMANENT, 0 };
    strand_child_spec nofn = { NULL, NULL, "x", STRAND_PERMANENT, 0 };
    strand_child_spec badr = { kid, NULL, "x", 7, 0 };
    strand_child_spec bads = { kid, NULL, "x", STRAND_PERMANENT, -1 };
    assert_int_equal(strand_supervise(NULL), -EINVAL);
    strand_sup_spec s = { STRAND_ONE_FOR_ONE, 1, 0, &ok, 0 };
    assert_int_equal(strand_supervise(&s), -EINVAL);          /* no children */
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 1, 0, NULL, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 1, 0, &nofn, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);          /* NULL fn */
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, -1, 0, &ok, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);          /* negative intensity */
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 1, -5, &ok, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);
    s = (strand_sup_spec){ 9, 1, 0, &ok, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 1, 0, &badr, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 1, 0, &bads, 1 };
    assert_int_equal(strand_supervise(&s), -EINVAL);
    s = (strand_sup_spec){ STRAND_ONE_FOR_ONE, 1, 0, &ok, 1 };
    assert_int_equal(strand_supervisor_run(&s), -EPERM);      /* plain thread */
    assert_int_equal(strand_supervisor_run(NULL), -EINVAL);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_restart_types),
        cmocka_unit_test(test_intensity_and_stop_order),
        cmocka_unit_test(test_stubborn_child),
        cmocka_unit_test(test_tree_escalates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
