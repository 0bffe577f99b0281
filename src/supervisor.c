/*
 * supervisor.c - supervisors, OTP's model: strand_supervise, strand_supervisor_run.
 *
 * A supervisor is a strand that traps exits and is linked to each of its children, so it
 * learns of every child's end as an EXIT notice in its mailbox, and it is the only
 * strand that reads or writes its `sup` record (no locks here). A child links itself to
 * its supervisor as its first act (child_entry), before its function runs, so no end of
 * a child can go unnoticed, and a child whose supervisor is already gone is cancelled by
 * that link (it would be orphaned otherwise). Then it sends the supervisor an empty
 * message, which the supervisor waits for before it starts the next child: children start
 * in order.
 *
 * On a child's EXIT: the restart type decides whether it is restarted (permanent always,
 * transient unless NORMAL, temporary never); the strategy decides what else restarts with
 * it (one_for_one: nothing; one_for_all: every other child; rest_for_one: the children
 * started after it), and those are stopped first, in reverse start order. More than
 * `intensity` restarts within `period_ns` and the supervisor gives up: it stops every
 * child and ends FAILED (STRAND_SUP_GAVE_UP), which its own supervisor sees as a failing
 * child: that is how a tree escalates.
 *
 * Stopping a child: unlink (so its end sends no EXIT: one already queued is removed),
 * monitor, cancel, wait for the DOWN up to shutdown_ns (shielded: the supervisor may be
 * stopping because it was cancelled), and if it does not come, report it on stderr and
 * leave the child running (a strand cannot be killed from outside). A supervisor that is
 * cancelled, or gets an EXIT from a strand that is not its child with a reason other than
 * NORMAL (its own supervisor failed), stops its children in reverse order and ends.
 */
#include "internal.h"
#include "cancel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SHUTDOWN_NS (5LL * 1000000000)
#define DEFAULT_PERIOD_NS   (5LL * 1000000000)

static atomic_ullong restarts_total; /* for the exit report; relaxed: a counter */

uint64_t strand__sup_restarts(void)
{
    return atomic_load_explicit(&restarts_total, memory_order_relaxed);
}

typedef struct child {
    const strand_child_spec *spec;
    int64_t id;           /* 0: not running */
} child;

typedef struct sup {
    const strand_sup_spec *spec;
    child   *kids;
    int64_t *stamps;      /* restart times, a ring of `intensity` entries */
    int      nstamps, stamp_next;
    int      intensity;
    int64_t  period;
    int64_t  self;
} sup;

/* What a child's first instructions need (heap, freed by the child). */
typedef struct child_start {
    strand_fn fn;
    void     *arg;
    int64_t   sup;
} child_start;

static void *child_entry(void *p)
{
    child_start cs = *(child_start *)p;
    free(p);
    strand__current()->fate.supervisor = cs.sup; /* for the dump */
    (void)strand_link(cs.sup); /* -ESRCH: the supervisor is gone, and we are cancelled */
    (void)strand_send(cs.sup, NULL, 0); /* "started": the next child may start */
    return cs.fn(cs.arg);
}

static int check_spec(const strand_sup_spec *spec)
{
    if (spec == NULL || spec->children == NULL || spec->nchildren <= 0)
        return -EINVAL;
    if (spec->strategy < STRAND_ONE_FOR_ONE || spec->strategy > STRAND_REST_FOR_ONE)
        return -EINVAL;
    if (spec->intensity < 0 || spec->period_ns < 0)
        return -EINVAL;
    for (int i = 0; i < spec->nchildren; i++) {
        const strand_child_spec *c = &spec->children[i];
        if (c->fn == NULL || c->restart < STRAND_PERMANENT || c->restart > STRAND_TEMPORARY ||
            c->shutdown_ns < 0)
            return -EINVAL;
    }
    return 0;
}

static int is_start_of(const void *msg, size_t len, int64_t from, void *ctx)
{
    (void)msg;
    return len == 0 && from == *(int64_t *)ctx;
}

static int start_child(sup *s, int i)
{
    const strand_child_spec *c = s->kids[i].spec;
    child_start *cs = malloc(sizeof *cs);
    if (cs == NULL)
        return -ENOMEM;
    *cs = (child_start){ c->fn, c->arg, s->self };
    strand_attr a = { .name = c->name, .detached = 1 };
    int64_t id = strand_spawn_attr(child_entry, cs, &a);
    if (id < 0) {
        free(cs);
        return (int)id;
    }
    s->kids[i].id = id;
    /* Ordered start: the next child is spawned once this one is linked and running. Its
     * EXIT, if it ends at once, stays queued for the main loop. */
    char none;
    ssize_t r = strand_recv_match(is_start_of, &id, &none, 0, NULL, STRAND_FOREVER);
    return r < 0 ? (int)r : 0;
}

static int is_exit_of(const void *msg, size_t len, int64_t from, void *ctx)
{
    const strand_notice *n = msg;
    return from == STRAND_FROM_RUNTIME && len == sizeof *n && n->kind == STRAND_NOTICE_EXIT &&
           n->id == *(int64_t *)ctx;
}

static int is_down_ref(const void *msg, size_t len, int64_t from, void *ctx)
{
    const strand_notice *n = msg;
    return from == STRAND_FROM_RUNTIME && len == sizeof *n && n->kind == STRAND_NOTICE_DOWN &&
           n->ref == *(int64_t *)ctx;
}

static void stop_child(sup *s, int i)
{
    int64_t id = s->kids[i].id;
    if (id == 0)
        return;
    s->kids[i].id = 0;
    strand_notice n;
    (void)strand_unlink(id);
    (void)strand_recv_match(is_exit_of, &id, &n, sizeof n, NULL, 0); /* one already queued */
    int64_t ref = strand_monitor(id);
    if (ref < 0)
        return;
    (void)strand_cancel(id);
    int64_t ns = s->kids[i].spec->shutdown_ns > 0 ? s->kids[i].spec->shutdown_ns
                                                  : DEFAULT_SHUTDOWN_NS;
    int shield = strand_cancel_shield(1);
    ssize_t r = strand_recv_match(is_down_ref, &ref, &n, sizeof n, NULL, strand_deadline_in(ns));
    strand_cancel_shield(shield);
    if (r < 0) {
        const char *name = s->kids[i].spec->name;
        fprintf(stderr, "strand: supervisor %lld: child %lld \"%s\" did not end within "
                        "%.3f s of its cancel; left running\n", (long long)s->self,
                (long long)id, name != NULL ? name : "", (double)ns / 1e9);
        (void)strand_demonitor(ref);
    }
}

/* Stop children [from, n) in reverse order. */
static void stop_from(sup *s, int from)
{
    for (int i = s->spec->nchildren - 1; i >= from; i--)
        stop_child(s, i);
}

/* Record a restart now; false if that makes more than `intensity` in `period`. */
static bool restart_allowed(sup *s)
{
    int64_t now = strand_now();
    int recent = 0;
    for (int k = 0; k < s->nstamps; k++)
        if (now - s->stamps[k] < s->period)
            recent++;
    if (recent + 1 > s->intensity)
        return false;
    if (s->intensity > 0) {
        s->stamps[s->stamp_next] = now;
        s->stamp_next = (s->stamp_next + 1) % s->intensity;
        if (s->nstamps < s->intensity)
            s->nstamps++;
    }
    return true;
}

static bool wants_restart(const strand_child_spec *c, int reason)
{
    switch (c->restart) {
    case STRAND_PERMANENT: return true;
    case STRAND_TRANSIENT: return reason != STRAND_EXIT_NORMAL;
    default:               return false;
    }
}

static int index_of(const sup *s, int64_t id)
{
    for (int i = 0; i < s->spec->nchildren; i++)
        if (s->kids[i].id == id)
            return i;
    return -1;
}

/* A child ended: restart what the strategy says. 0, or a code to give up with. */
static int child_ended(sup *s, int i, int reason)
{
    s->kids[i].id = 0;
    if (!wants_restart(s->kids[i].spec, reason))
        return 0;
    if (!restart_allowed(s))
        return STRAND_SUP_GAVE_UP;
    atomic_fetch_add_explicit(&restarts_total, 1, memory_order_relaxed);
    int first = i;
    switch (s->spec->strategy) {
    case STRAND_ONE_FOR_ONE:  return start_child(s, i);
    case STRAND_ONE_FOR_ALL:  stop_from(s, 0); first = 0; break;
    default:                  stop_from(s, i + 1); break; /* rest_for_one */
    }
    /* In start order; a temporary child stopped for a sibling is not started again. */
    for (int k = first; k < s->spec->nchildren; k++) {
        if (k != i && s->kids[k].spec->restart == STRAND_TEMPORARY)
            continue;
        int rc = start_child(s, k);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int strand_supervisor_run(const strand_sup_spec *spec)
{
    int rc = check_spec(spec);
    if (rc)
        return rc;
    struct strand *me = strand__current();
    if (me == NULL)
        return -EPERM;
    sup s = { .spec = spec, .self = me->id };
    s.intensity = spec->intensity;
    s.period = spec->period_ns;
    if (s.intensity == 0 && s.period == 0)
        s.intensity = 1;
    if (s.period == 0)
        s.period = DEFAULT_PERIOD_NS;
    s.kids = calloc((size_t)spec->nchildren, sizeof *s.kids);
    s.stamps = calloc((size_t)(s.intensity > 0 ? s.intensity : 1), sizeof *s.stamps);
    if (s.kids == NULL || s.stamps == NULL) {
        free(s.kids);
        free(s.stamps);
        return -ENOMEM;
    }
    for (int i = 0; i < spec->nchildren; i++)
        s.kids[i].spec = &spec->children[i];
    int trap = strand_trap_exits(1);
    for (int i = 0; i < spec->nchildren && rc == 0; i++)
        rc = start_child(&s, i);
    while (rc == 0) {
        strand_notice n;
        int64_t from = 0;
        ssize_t r = strand_recv(&n, sizeof n, &from, STRAND_FOREVER);
        if (r == -ECANCELED) {
            rc = -ECANCELED;
            break;
        }
        if (r != (ssize_t)sizeof n || from != STRAND_FROM_RUNTIME || n.kind != STRAND_NOTICE_EXIT)
            continue; /* not for us: a supervisor's mailbox holds notices only */
        int i = index_of(&s, n.id);
        if (i >= 0)
            rc = child_ended(&s, i, n.reason);
        else if (n.reason != STRAND_EXIT_NORMAL)
            rc = -ECANCELED; /* a linked non-child (our parent) failed: stop */
    }
    stop_from(&s, 0);
    strand_trap_exits(trap);
    free(s.kids);
    free(s.stamps);
    if (rc == -ECANCELED || rc == 0)
        return -ECANCELED;
    if (rc == STRAND_SUP_GAVE_UP)
        fprintf(stderr, "strand: supervisor %lld: more than %d restarts in %.3f s; giving up\n",
                (long long)s.self, s.intensity, (double)s.period / 1e9);
    strand_fail(rc); /* a tree escalates: our supervisor sees a failed child */
}

/* The spawned supervisor owns a copy of the spec. */
typedef struct owned_spec {
    strand_sup_spec   spec;
    strand_child_spec children[];
} owned_spec;

static void *sup_entry(void *p)
{
    /* The copy lives in the arena (until this strand ends), as strand_fail never returns. */
    owned_spec *heap = p;
    size_t size = sizeof *heap + (size_t)heap->spec.nchildren * sizeof heap->children[0];
    owned_spec *o = strand_arena_alloc(size);
    if (o == NULL) {
        free(heap);
        strand_fail(-ENOMEM);
    }
    memcpy(o, heap, size);
    free(heap);
    o->spec.children = o->children;
    (void)strand_supervisor_run(&o->spec);
    return NULL;
}

int64_t strand_supervise(const strand_sup_spec *spec)
{
    int rc = check_spec(spec);
    if (rc)
        return rc;
    size_t n = (size_t)spec->nchildren;
    owned_spec *o = malloc(sizeof *o + n * sizeof o->children[0]);
    if (o == NULL)
        return -ENOMEM;
    o->spec = *spec;
    memcpy(o->children, spec->children, n * sizeof o->children[0]);
    o->spec.children = o->children;
    strand_attr a = { .name = "supervisor" };
    int64_t id = strand_spawn_attr(sup_entry, o, &a);
    if (id < 0)
        free(o);
    return id;
}
