/*
 * sched_park.c - the parking protocol's two ends (strand__park, strand__ready) and the
 * waiter API every blocking call is built on (strand__waiter_prepare / _abort / _wake /
 * _block). The protocol is specified in internal.h ("Parking") and model-checked in
 * verify/park.pml; the scheduler's half (PARKING -> PARKED off the strand's stack) is
 * finish_switch in sched_switch.c.
 *
 * States a waiter's strand moves through here: RUNNING -> PARKING (prepare, by the strand
 * itself, before it publishes the waiter) -> PARKED (finish_switch's CAS) or RUNNABLE (a
 * waker's CAS in strand__ready, from PARKING or PARKED); PARKING -> RUNNING (abort, by the
 * strand, when it never published the waiter). Exactly one party queues the strand: the
 * waker if it saw PARKED, else the scheduler whose CAS failed.
 *
 * A plain thread's waiter (w->s NULL) blocks on w->futex instead: 0 = waiting, 1 = woken.
 * A deadline is a timer on the waiting strand's stack whose callback races the wakers for
 * the one claim; it is stopped before the waiter's frame is left. A cancel (cancel.c)
 * races for the same claim: while a strand is parked its waiter is named in
 * s->fate.parked, under s->fate.lock (fate.h), and a strand already cancelled claims its
 * own waiter instead of parking. Either way the status is STRAND__STATUS_CANCELLED and
 * the block returns -ECANCELED.
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

void strand__ready(struct strand *s)
{
    int st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (st == STRAND__PARKING) {
            /* It has not switched away yet; its scheduler's CAS will fail and requeue it. */
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, STRAND__RUNNABLE,
                                                      memory_order_acq_rel, memory_order_acquire))
                return;
        } else if (st == STRAND__PARKED) {
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, STRAND__RUNNABLE,
                                                      memory_order_acq_rel, memory_order_acquire)) {
                strand__sched_make_runnable(s, false);
                return;
            }
        } else {
            static const char msg[] = "strand: internal error: wake of a strand that is not waiting\n";
            (void)!write(2, msg, sizeof msg - 1);
            abort();
        }
    }
}

void strand__park(void)
{
    strand__sched_switch_away(sched_current(), STRAND__PREV_PARK);
}

void strand__waiter_prepare(strand__waiter *w, atomic_int *claim)
{
    struct strand *s = sched_current();
    w->s = s;
    if (!claim) {
        atomic_store_explicit(&w->own_claim, 0, memory_order_relaxed);
        claim = &w->own_claim;
    }
    w->claim = claim;
    atomic_store_explicit(&w->futex, 0, memory_order_relaxed);
    w->status = 0;
    w->next = w->prev = NULL;
    /* Relaxed is enough: the waiter is published under the object's lock (or with a
     * release), which carries this store to any waker that finds the waiter. */
    if (s)
        atomic_store_explicit(&s->state, STRAND__PARKING, memory_order_relaxed);
}

void strand__waiter_abort(strand__waiter *w)
{
    if (w->s)
        atomic_store_explicit(&w->s->state, STRAND__RUNNING, memory_order_relaxed);
}

void strand__waiter_wake(strand__waiter *w)
{
    struct strand *s = w->s;
    if (s) {
        strand__ready(s);
        return;
    }
    atomic_store_explicit(&w->futex, 1, memory_order_release);
    strand__futex_wake(&w->futex, 1);
}

static void waiter_timeout(strand__timer *t)
{
    strand__waiter *w = t->arg;
    if (!strand__waiter_claim(w))
        return;
    w->status = -ETIMEDOUT;
    strand__waiter_wake(w);
}

static int thread_block(strand__waiter *w, int64_t deadline)
{
    for (;;) {
        if (atomic_load_explicit(&w->futex, memory_order_acquire) == 1)
            return w->status;
        if (strand__futex_wait(&w->futex, 0, deadline) == -ETIMEDOUT &&
            atomic_load_explicit(&w->futex, memory_order_acquire) == 0) {
            if (strand__waiter_claim(w)) {
                w->status = -ETIMEDOUT;
                return -ETIMEDOUT;
            }
            deadline = -1; /* a waker claimed it first: its wake is on the way */
        }
    }
}

/* The waiting side of cancellation (fate.h): name w as the waiter a canceller may claim,
 * unless the strand is cancelled already, in which case it claims w itself. true: the
 * wait is over (status STRAND__STATUS_CANCELLED, the strand RUNNING again). The lock
 * pairs with the canceller's: it either sees `cancelled` here or finds w in `parked`. */
static bool cancel_point_enter(struct strand *s, strand__waiter *w)
{
    strand__spin_lock(&s->fate.lock);
    if (!atomic_load_explicit(&s->fate.cancelled, memory_order_relaxed)) {
        s->fate.parked = w;
        strand__spin_unlock(&s->fate.lock);
        return false;
    }
    strand__spin_unlock(&s->fate.lock);
    if (!strand__waiter_claim(w))
        return false; /* a waker claimed it first: its wake is on the way, park for it */
    w->status = STRAND__STATUS_CANCELLED;
    strand__waiter_abort(w); /* the claim is ours, so no one else will wake it */
    return true;
}

/* Once resumed: w's frame is about to go, so no canceller may look at it any more. */
static void cancel_point_leave(struct strand *s)
{
    strand__spin_lock(&s->fate.lock);
    s->fate.parked = NULL;
    strand__spin_unlock(&s->fate.lock);
}

static int block_strand(strand__waiter *w, int64_t deadline, bool cancellable)
{
    struct strand *s = w->s;
    cancellable = cancellable && s->fate.shield == 0;
    if (cancellable && cancel_point_enter(s, w)) {
        s->wait_kind = STRAND__WAIT_NONE;
        return -ECANCELED;
    }
    if (deadline < 0) {
        strand__park();
    } else {
        strand__timer t;
        strand__sched_timer_start(&t, deadline, waiter_timeout, w);
        strand__park();
        strand__timer_stop(&t);
    }
    if (cancellable)
        cancel_point_leave(s);
    s->wait_kind = STRAND__WAIT_NONE;
    return w->status == STRAND__STATUS_CANCELLED ? -ECANCELED : w->status;
}

int strand__waiter_block(strand__waiter *w, int64_t deadline)
{
    if (!w->s)
        return thread_block(w, deadline);
    return block_strand(w, deadline, true);
}

int strand__waiter_block_shielded(strand__waiter *w, int64_t deadline)
{
    if (!w->s)
        return thread_block(w, deadline);
    return block_strand(w, deadline, false);
}
