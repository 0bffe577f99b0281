/*
 * cancel.c - cancellation: strand_cancel, strand_cancelled, strand_cancel_shield.
 *
 * A cancel is the third ending of a wait (fate.h): it sets the target's `cancelled` flag
 * and, if the target is parked, claims its waiter with the one CAS every ending races for
 * (a waker's, the deadline timer's), writing STRAND__STATUS_CANCELLED. Whoever wins that
 * CAS decides the outcome, so a cancel racing a wake or a timeout has exactly one result.
 * A strand that was cancelled before it blocks claims its own waiter in
 * strand__waiter_block (sched_park.c) instead of parking. So there is one code path for
 * every blocking call: whatever waits through wait.h is cancellable.
 *
 * Who touches what: the canceller holds the target's id slot (strand__with_live), so the
 * target cannot end meanwhile and at most one cancel runs on it at a time; it reads
 * `parked` under fate.lock, which the target holds to set and clear it. The wake itself
 * comes after both locks are released: the claim is ours, so the target stays parked
 * (and alive) until we wake it.
 */
#include "internal.h"
#include "cancel.h"

#include <errno.h>

strand__waiter *strand__cancel_fate_held(struct strand *s)
{
    /* relaxed: the lock orders it for the target's next block; strand_cancelled() may
     * see it late, which only delays the unwinding to the next blocking call. */
    atomic_store_explicit(&s->fate.cancelled, 1, memory_order_relaxed);
    strand__waiter *w = s->fate.parked;
    if (w == NULL || !strand__waiter_claim(w))
        return NULL; /* running, shielded, or a waker or the timer won: no wake of ours */
    w->status = STRAND__STATUS_CANCELLED;
    s->fate.parked = NULL;
    return w;
}

strand__waiter *strand__cancel_locked(struct strand *s)
{
    strand__spin_lock(&s->fate.lock);
    strand__waiter *wake = strand__cancel_fate_held(s);
    strand__spin_unlock(&s->fate.lock);
    return wake;
}

static int cancel_one(struct strand *s, void *ctx)
{
    *(strand__waiter **)ctx = strand__cancel_locked(s);
    return 0;
}

int strand_cancel(int64_t id)
{
    if (id <= 0)
        return -ESRCH;
    strand__waiter *wake = NULL;
    int rc = strand__with_live(id, cancel_one, &wake);
    if (rc != 0)
        return rc;
    if (wake != NULL)
        strand__waiter_wake(wake);
    return 0;
}

int strand_cancelled(void)
{
    struct strand *s = strand__current();
    return s != NULL && atomic_load_explicit(&s->fate.cancelled, memory_order_relaxed);
}

int strand_cancel_shield(int on)
{
    struct strand *s = strand__current();
    if (s == NULL)
        return -EPERM;
    int prev = s->fate.shield;
    s->fate.shield = on != 0;
    return prev;
}
