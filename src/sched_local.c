/*
 * sched_local.c - a worker's local queues beyond the hot path (which is inline in
 * sched_private.h): a full ring's overflow, the inbox of strands pinned to a worker, and the
 * slow local pop (priorities, the inbox, deterministic mode, the anti-starvation pick).
 *
 * Invariants. A pinned strand is only ever in its worker's inbox, never in a ring or
 * "run next", so no thief can take it; any thread pushes to an inbox (under inbox_lock), only
 * its worker pops (or the spare that holds its role after a hand-off, sched_monitor.c).
 * `inbox_n` mirrors the inbox's length for lock-free peeks; a peek that
 * misses a push is covered by the push's wake of that worker (strand__sched_wake_pinned).
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

/* Full: move half of the ring and s to the global queue, as Go does. */
STRAND__NOINLINE void strand__sched_overflow(struct strand__worker *w, int prio, struct strand *s)
{
    struct strand *batch[STRAND__RUNQ_SIZE / 2 + 1];
    unsigned n = strand__runq_grab(&w->q[prio], batch);
    batch[n++] = s;
    strand__globalq_push_many(&strand__sched.gq, prio, batch, n);
}

static void inbox_push(struct strand__worker *w, struct strand *s)
{
    s->next = NULL;
    strand__spin_lock(&w->inbox_lock);
    if (w->inbox_tail)
        w->inbox_tail->next = s;
    else
        w->inbox_head = s;
    w->inbox_tail = s;
    atomic_fetch_add_explicit(&w->inbox_n, 1, memory_order_relaxed);
    strand__spin_unlock(&w->inbox_lock);
}

/* Its worker, or the spare standing in for it (sched_monitor.c), under inbox_lock. */
struct strand *strand__sched_inbox_pop(struct strand__worker *w)
{
    if (atomic_load_explicit(&w->inbox_n, memory_order_relaxed) == 0)
        return NULL;
    strand__spin_lock(&w->inbox_lock);
    struct strand *s = w->inbox_head;
    if (s) {
        w->inbox_head = s->next;
        if (!w->inbox_head)
            w->inbox_tail = NULL;
        atomic_fetch_sub_explicit(&w->inbox_n, 1, memory_order_relaxed);
    }
    strand__spin_unlock(&w->inbox_lock);
    return s;
}

/* w: the calling worker, or NULL on a plain thread. */
STRAND__NOINLINE void strand__sched_push_pinned(struct strand__worker *w, struct strand *s)
{
    struct strand__worker *t = strand__workers[s->pinned];
    inbox_push(t, s);
    /* While a spare holds t's role (hand-off), the spare runs t's pinned strands. */
    struct strand__worker *r = strand__sched_role_thread(t);
    if (r != w)
        strand__sched_wake_pinned(r);
}

/* The rare cases: a pinned strand, priorities, deterministic mode, and every 31st pick,
 * which scans the priorities from the lowest so that LOW cannot starve. */
STRAND__NOINLINE struct strand *strand__sched_local_pop_slow(struct strand__worker *w)
{
    struct strand *s = strand__sched_inbox_pop(w);
    if (s)
        return s;
    const int *order = strand__prio_order[(w->tick % 31) == 0];
    for (int i = 0; i < STRAND__PRIOS; i++) {
        int p = order[i];
        if (strand__sched.seeded)
            strand__runq_shuffle(&w->q[p], &w->seed_rng);
        s = strand__runq_get(&w->q[p]);
        if (s)
            return s;
        if (p == STRAND_PRIO_NORMAL && (s = strand__deque_pop(&w->spawned)))
            return s;
        if (p != STRAND_PRIO_NORMAL)
            w->prio_mask &= ~(1u << p);
    }
    return NULL;
}
