/*
 * wait.h - the one wait protocol of strand, as each blocking primitive uses it: join,
 * channels, select, mailboxes, mutex, condition variable, wait group, semaphore, fd waits
 * and the off-load pool. The protocol itself (the PARKING store before publishing, the one
 * claim, the scheduler's CAS) is "Parking" in internal.h, model-checked in verify/park.pml;
 * this layer is the sequence around it, written once (wait.c):
 *
 *   object's lock held, the primitive's condition false
 *     -> (deadline passed: unlock, -ETIMEDOUT)
 *     -> strand__waiter_prepare (state PARKING), status := STRAND__STATUS_PENDING
 *     -> ops->publish: the object records the waiter where its wakers look (may refuse)
 *     -> note what the dump shows, ops->unlock
 *     -> strand__waiter_block
 *     -> for every registration no waker took: ops->lock, ops->unlink, ops->unlock
 *     -> the status (-ECANCELED when a cancel ended it: fate.h)
 *
 * A primitive states only its condition (before calling in, under its lock) and its
 * hand-off (its waker: claim under the lock, write the status, wake after the unlock).
 *
 * Invariants the ops and the wakers keep:
 *  - A waker writes w->status (never STRAND__STATUS_PENDING, never -ETIMEDOUT) after a
 *    successful claim and before the wake, and takes the waiter off the object (and off
 *    whatever count the object keeps of it) itself. So "taken by a waker" is exactly
 *    strand__wait_taken(), and every other ending - the deadline's timer, a select case
 *    that lost the shared claim, and any way added later (cancellation) - leaves the
 *    registration for the waiter to take back through ops->unlink, here and only here.
 *  - ops->unlink runs under the object's lock and must cope with a waiter a waker already
 *    dropped from the queue without winning the claim (strand__waitq_claim does that;
 *    w->obj == NULL then).
 *  - Registrations live on the waiting strand's stack from register to the end of
 *    strand__wait_block; nothing touches them after.
 */
#ifndef STRAND_WAIT_H
#define STRAND_WAIT_H

#include "internal.h"
#include "wlock.h"

#include <limits.h>
#include <stddef.h>

/* The status of a registration no waker has taken. */
#define STRAND__STATUS_PENDING INT_MIN

/* How the wait layer reaches one kind of object. `obj` is the object the primitive passed
 * (its lock is found from it). */
typedef struct strand__wait_ops {
    void (*lock)(void *obj);
    void (*unlock)(void *obj);
    /* Under the lock: make w findable by the object's wakers (queue it, set w->obj). 0, or
     * a negative code to refuse the wait (nothing was published). */
    int  (*publish)(void *obj, strand__waiter *w);
    /* Under the lock: take back a registration no waker took (it may already be off the
     * queue). Returns memory to free() once the lock is dropped (the object itself when
     * this waiter was the last thing keeping it), or NULL. NULL hook: only a waker can end
     * this wait (no deadline, nothing else holds the waiter). */
    void *(*unlink)(void *obj, strand__waiter *w);
} strand__wait_ops;

/* Lock hooks for the common case of an object whose first member is its lock (each user
 * asserts that with STRAND__LOCK_FIRST). Inline, so strand__wait's calls through a
 * constant ops become plain lock operations. */
#define STRAND__LOCK_FIRST(type) \
    _Static_assert(offsetof(type, lock) == 0, #type ": its lock must come first")

static inline void strand__wait_wlock(void *obj) { strand__wlock_acquire(obj); }
static inline void strand__wait_wunlock(void *obj) { strand__wlock_release(obj); }
static inline void strand__wait_spin_lock(void *obj) { strand__spin_lock(obj); }
static inline void strand__wait_spin_unlock(void *obj) { strand__spin_unlock(obj); }

/* One waiter on one object. Before registering, the primitive may set w.elem (a value for
 * the waker, or where the waker puts one); the rest is the wait layer's. */
typedef struct strand__wait_reg {
    strand__waiter          w;
    const strand__wait_ops *ops;
    void                   *obj;
} strand__wait_reg;

/* Did a waker end this registration (and so unlink it)? The one test of how a wait
 * ended. The two other endings, the deadline's timer and a cancel (fate.h), claim the
 * waiter and write a status no waker writes (-ETIMEDOUT, STRAND__STATUS_CANCELLED: not
 * -ECANCELED, which strand_fd_close's waker writes); strand__waiter_block maps the latter
 * to -ECANCELED. */
static inline bool strand__wait_taken(const strand__wait_reg *r)
{
    return r->w.status != STRAND__STATUS_PENDING && r->w.status != -ETIMEDOUT &&
           r->w.status != STRAND__STATUS_CANCELLED;
}

/* Out of line (wait.c): the one path for a registration that ended other than by its
 * waker - lock, ops->unlink, unlock, free what it returned. */
void strand__wait_take_back(strand__wait_reg *r);

/* The two halves of a wait, for a wait on several objects under one claim (select).
 * Register each (its object's lock held; `primary` NULL for the first, then the first's
 * registration: the others share its claim and a waker of any of them wakes the first):
 * 0, or publish's refusal (then nothing of r was published and the strand is RUNNING
 * again). Then release the locks and strand__wait_block: block on regs[0], take back every
 * registration no waker took, return regs[0]'s status. */
static inline int strand__wait_register(strand__wait_reg *r, const strand__wait_ops *ops,
                                        void *obj, strand__wait_reg *primary)
{
    strand__waiter_prepare(&r->w, primary != NULL ? primary->w.claim : NULL);
    r->w.status = STRAND__STATUS_PENDING;
    r->w.data = (uintptr_t)(primary != NULL ? &primary->w : NULL); /* see strand__waitq_wake */
    r->ops = ops;
    r->obj = obj;
    int rc = ops->publish(obj, &r->w);
    if (rc < 0)
        strand__waiter_abort(&r->w);
    return rc;
}

static inline int strand__wait_block(strand__wait_reg *regs, int n, int64_t deadline)
{
    /* A registration that cannot be taken back (no unlink) cannot be cancelled either. */
    int rc = regs[0].ops->unlink != NULL ? strand__waiter_block(&regs[0].w, deadline)
                                         : strand__waiter_block_shielded(&regs[0].w, deadline);
    for (int i = 0; i < n; i++) {
        if (STRAND__UNLIKELY(!strand__wait_taken(&regs[i])))
            strand__wait_take_back(&regs[i]);
    }
    return rc;
}

/* Wait on one object. Called with obj's lock held and the condition false; returns with
 * the lock released (always). Blocks until a waker takes the registration (returns the
 * status it wrote), `deadline` passes (-ETIMEDOUT) or the strand is cancelled
 * (-ECANCELED; then, as on a timeout, the registration is taken back), or returns
 * ops->publish's refusal. kind/arg: what strand_dump shows (enum
 * strand__wait_kind, with obj). Inline, so that with a constant `ops` the hooks are direct
 * calls: a channel ping-pong parks on every message. */
static inline int strand__wait(strand__wait_reg *r, const strand__wait_ops *ops, void *obj,
                               int64_t deadline, int kind, int64_t arg)
{
    if (deadline > 0 && deadline <= strand_now()) {
        ops->unlock(obj);
        return -ETIMEDOUT;
    }
    int rc = strand__wait_register(r, ops, obj, NULL);
    if (rc < 0) {
        ops->unlock(obj);
        return rc;
    }
    struct strand *cur = strand__current();
    if (cur != NULL)
        strand__set_wait(cur, kind, obj, arg);
    ops->unlock(obj);
    return strand__wait_block(r, 1, deadline);
}

/* Make the calling strand's waits uncancellable (on != 0) or cancellable again; returns
 * the previous setting (0 on a plain thread, which cannot be cancelled). For a primitive's
 * own clean-up that must block (strand_cond_wait re-taking its mutex). */
static inline int strand__wait_shield(int on)
{
    struct strand *cur = strand__current();
    if (cur == NULL)
        return 0;
    int prev = cur->fate.shield;
    cur->fate.shield = on != 0;
    return prev;
}

#endif
