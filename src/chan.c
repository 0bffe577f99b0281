/*
 * chan.c - channels of fixed-size elements (strand_chan_*). A buffered channel is a
 * lock-free ring (chan_internal.h) that senders and receivers use without the lock while
 * neither has to wait; the lock and the two waiter queues serve only the full and the
 * empty cases, close and select. An unbuffered channel is Go's hchan without a buffer:
 * every operation takes the lock and hands the value straight to a parked partner.
 *
 * Fast path (buffered): a send is one CAS on enq (the one atomic read-modify-write), the
 * copy, a plain release store of the slot's seq; then one plain load of `rwait`, and only
 * if it is set the lock (to hand buffered values to parked receivers). A receive likewise
 * with deq and `swait`. A send also goes to the lock when `swait` is already set, so it
 * does not overtake the parked senders for a slot a receiver just freed for them.
 *
 * No lost wake-up (the Dekker pair, all four accesses seq_cst, so they fall in one total
 * order; seq_cst operations rather than fences, which ThreadSanitizer cannot follow): a
 * receiver about to park takes the lock, stores rwait = 1 and looks at the ring once more
 * (when the head slot holds nothing, a load of enq: has any sender claimed it?); only if
 * no sender has does it queue its waiter (still under the lock) and park. A sender claims
 * its position (the CAS on enq), copies, publishes, then loads rwait. Of two such
 * sequences at least one sees the other's write: in the total order either the
 * receiver's load of enq comes after the claim, or the sender's load of rwait comes after
 * the flag store and sees it, and the sender takes the lock, which it can get only after
 * the receiver has queued itself, and hands it a value. A claim the receiver sees whose
 * value is not published yet ("in flight", -EINPROGRESS) is not parked on: the receiver
 * drops the lock, backs off a moment (chan_backoff) and looks again. Senders waiting for
 * room mirror all this with swait, deq and the slot a receiver is freeing.
 *
 * Settling (strand__chan_settle, under the lock): while a receiver waits and a value is
 * ready, claim the receiver and pop into its elem; while a sender waits and a slot is
 * free, claim it and push its value. One lock holder serves every waiter it can (batched
 * wake-ups; all woken after the unlock). A claimed waiter whose value or slot a lock-free
 * operation took in between is woken with STRAND__CHAN_RETRY and looks again; so is every
 * receiver at close (buffered values may still be on their way in).
 *
 * Invariants:
 *  - A value is "accepted" when its position is claimed in the ring (before CLOSED was
 *    set) or it is copied into a receiver's elem; a send returns 0 only then, and every
 *    accepted value is received exactly once: each ring position is taken by exactly one
 *    deq CAS, and a receiver gets -EPIPE only when deq == enq with CLOSED set, i.e. after
 *    every accepted position was taken. A sender woken with -EPIPE had nothing accepted.
 *  - rwait/swait are written only under the lock, set before a waiter's last look and
 *    recomputed from the queues (strand__chan_flags) after every change of them; a stale
 *    1 only costs some operation a visit to the lock.
 *  - Waker side: claim the waiter, copy the value, set status, and wake it only after the
 *    lock is dropped; never touch the waiter after waking it (it lives on its owner's
 *    stack).
 *  - nwait counts waiters that will come back to take the lock again (they timed out or
 *    are select cases that lost); a waker that claims a waiter takes it off that count.
 *    The channel is freed when refs reach zero and nwait is zero, by whichever of release
 *    or the last returning waiter sees that state.
 *  - elem_size is 1 .. STRAND__CHAN_MAX_ELEM (64 KiB); capacity * stride must fit.
 *  - STRAND__STAT_CHAN_OPS is bumped by whoever completes an operation without parking,
 *    for its own operation and for the parked ones it completed (strand__chan_wake.done).
 */
#include "chan_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ create / refs */

int strand_chan_create(strand_chan **out, size_t elem_size, size_t capacity)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (elem_size == 0 || elem_size > STRAND__CHAN_MAX_ELEM)
        return -EINVAL;
    size_t stride = sizeof(strand__chan_slot) + ((elem_size + 7) & ~(size_t)7);
    if (capacity > STRAND__CHAN_MAX_CAP || capacity > (SIZE_MAX / 2) / stride)
        return -EINVAL;
    /* An unbuffered channel never touches the ring's lines (enq, deq, buf): it is
     * allocated without them, two cache lines in all (ring of 10,000 strands: 1.3 MB). */
    size_t head = capacity == 0 ? offsetof(struct strand_chan, enq) : sizeof(struct strand_chan);
    size_t bytes = head + capacity * stride;
    bytes = (bytes + STRAND__CACHELINE - 1) & ~(size_t)(STRAND__CACHELINE - 1);
    struct strand_chan *ch = aligned_alloc(STRAND__CACHELINE, bytes);
    if (ch == NULL)
        return -ENOMEM;
    memset(ch, 0, head);
    ch->elem_size = (uint32_t)elem_size;
    ch->stride = (uint32_t)stride;
    ch->cap = capacity;
    ch->pow2 = capacity != 0 && (capacity & (capacity - 1)) == 0;
    ch->mask = capacity - 1;
    for (size_t i = 0; i < capacity; i++) /* position i's sender goes first */
        atomic_init(&strand__chan_slot_at(ch, i)->seq, 2 * (uint64_t)i);
    atomic_init(&ch->refs, 1);
    *out = ch;
    return 0;
}

int strand_chan_retain(strand_chan *ch)
{
    if (ch == NULL)
        return -EINVAL;
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return 0;
}

void strand_chan_release(strand_chan *ch)
{
    if (ch == NULL)
        return;
    /* acq_rel: every earlier use of the channel by any holder happens before the free */
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    strand__wlock_acquire(&ch->lock);
    ch->dead = true;
    bool free_now = ch->nwait == 0;
    strand__wlock_release(&ch->lock);
    if (free_now)
        free(ch);
}

/* ------------------------------------------------------------------ waiting (wait.h) */

static int chan_publish(struct strand_chan *ch, strand__waitq *q, strand__waiter *w)
{
    strand__waitq_push(q, w, ch);
    ch->nwait++;
    return 0;
}

/* A waiter came back after a timeout (or a lost select case): unregister it if a waker
 * has not already dropped it; the channel is freed if that waiter was the last thing
 * keeping it. */
static void *chan_unlink(struct strand_chan *ch, strand__waitq *q, strand__waiter *w)
{
    if (w->obj != NULL)
        strand__waitq_remove(q, w);
    if (ch->cap > 0)
        strand__chan_flags(ch);
    ch->nwait--;
    return ch->dead && ch->nwait == 0 ? ch : NULL;
}

static int send_publish(void *obj, strand__waiter *w)
{
    struct strand_chan *ch = obj;
    return chan_publish(ch, &ch->sendq, w);
}

static int recv_publish(void *obj, strand__waiter *w)
{
    struct strand_chan *ch = obj;
    return chan_publish(ch, &ch->recvq, w);
}

static void *send_unlink(void *obj, strand__waiter *w)
{
    struct strand_chan *ch = obj;
    return chan_unlink(ch, &ch->sendq, w);
}

static void *recv_unlink(void *obj, strand__waiter *w)
{
    struct strand_chan *ch = obj;
    return chan_unlink(ch, &ch->recvq, w);
}

STRAND__LOCK_FIRST(struct strand_chan);
const strand__wait_ops strand__chan_send_ops = {
    strand__wait_wlock, strand__wait_wunlock, send_publish, send_unlink,
};
const strand__wait_ops strand__chan_recv_ops = {
    strand__wait_wlock, strand__wait_wunlock, recv_publish, recv_unlink,
};

size_t strand_chan_len(strand_chan *ch)
{
    if (ch == NULL || ch->cap == 0)
        return 0;
    /* deq first: enq read after it is at least as new, so the difference is >= 0 */
    uint64_t d = atomic_load_explicit(&ch->deq, memory_order_acquire);
    uint64_t e = atomic_load_explicit(&ch->enq, memory_order_acquire) & ~STRAND__CHAN_CLOSED;
    uint64_t n = e > d ? e - d : 0;
    return n > ch->cap ? ch->cap : (size_t)n;
}

size_t strand_chan_cap(strand_chan *ch)
{
    return ch == NULL ? 0 : ch->cap;
}

/* ------------------------------------------------------------------ settling (lock held) */

static void hand_over(strand__chan_wake *wk, strand__waiter *w, int rc)
{
    w->status = rc == -EAGAIN || rc == -EINPROGRESS ? STRAND__CHAN_RETRY : rc;
    if (rc == 0)
        wk->done++;
    strand__wakelist_add(&wk->list, w);
}

/* Serve every waiter the ring can serve now (see "Settling"); leaves the flags matching
 * the queues. */
static void chan_settle(struct strand_chan *ch, strand__chan_wake *wk)
{
    for (;;) {
        strand__waiter *w;
        if (!strand__waitq_empty(&ch->recvq) && strand__chan_ring_ready(ch)) {
            if ((w = strand__waitq_claim(&ch->recvq)) != NULL) {
                ch->nwait--;
                hand_over(wk, w, strand__chan_ring_pop(ch, w->elem));
            }
            continue;
        }
        if (!strand__waitq_empty(&ch->sendq) && strand__chan_ring_room(ch)) {
            if ((w = strand__waitq_claim(&ch->sendq)) != NULL) {
                ch->nwait--;
                hand_over(wk, w, strand__chan_ring_push(ch, w->elem));
            }
            continue;
        }
        break;
    }
    strand__chan_flags(ch);
}

/* A lock-free operation succeeded: if the other side may wait (its flag, read by
 * its seq_cst load, see "No lost wake-up"), settle under the lock. */
static STRAND__NOINLINE void chan_settle_locked(struct strand_chan *ch)
{
    strand__chan_wake wk = { NULL, 0 };
    strand__wlock_acquire(&ch->lock);
    chan_settle(ch, &wk);
    strand__wlock_release(&ch->lock);
    strand__chan_wake_run(&wk);
}

/* ------------------------------------------------------------------ unbuffered (locked)
 * The try_* helpers run with the lock held and return with it held; each either completes
 * the operation (returning 0 or -EPIPE and possibly a waiter to wake after unlocking) or
 * returns -EAGAIN. select.c uses them too. */

static int unbuf_try_send(struct strand_chan *ch, const void *elem, strand__chan_wake *wk)
{
    if (STRAND__UNLIKELY(ch->closed))
        return -EPIPE;
    strand__waiter *w = strand__waitq_claim(&ch->recvq);
    if (w == NULL)
        return -EAGAIN;
    ch->nwait--;
    strand__chan_copy(w->elem, elem, ch->elem_size);
    w->status = 0;
    strand__wakelist_add(&wk->list, w);
    wk->done += 2; /* ours and the receiver's, which does not count itself */
    return 0;
}

static int unbuf_try_recv(struct strand_chan *ch, void *elem, strand__chan_wake *wk)
{
    strand__waiter *w = strand__waitq_claim(&ch->sendq);
    if (w == NULL)
        return ch->closed ? -EPIPE : -EAGAIN;
    ch->nwait--;
    strand__chan_copy(elem, w->elem, ch->elem_size);
    w->status = 0;
    strand__wakelist_add(&wk->list, w);
    wk->done += 2;
    return 0;
}

int strand__chan_try_send(struct strand_chan *ch, const void *elem, strand__chan_wake *wk)
{
    if (ch->cap == 0)
        return unbuf_try_send(ch, elem, wk);
    int rc = strand__chan_ring_push(ch, elem);
    if (rc == 0) {
        wk->done++;
        chan_settle(ch, wk);
    }
    return rc;
}

int strand__chan_try_recv(struct strand_chan *ch, void *elem, strand__chan_wake *wk)
{
    if (ch->cap == 0)
        return unbuf_try_recv(ch, elem, wk);
    int rc = strand__chan_ring_pop(ch, elem);
    if (rc == 0) {
        wk->done++;
        chan_settle(ch, wk);
    }
    return rc;
}

/* Park the caller on one queue of ch (lock held on entry, released here). Returns what
 * the waker wrote (0, -EPIPE or STRAND__CHAN_RETRY) or -ETIMEDOUT. */
static int chan_wait(struct strand_chan *ch, void *elem, int64_t deadline, bool send)
{
    strand__wait_reg r;
    r.w.elem = elem;
    if (send)
        return strand__wait(&r, &strand__chan_send_ops, ch, deadline, STRAND__WAIT_CHAN_SEND, 0);
    return strand__wait(&r, &strand__chan_recv_ops, ch, deadline, STRAND__WAIT_CHAN_RECV, 0);
}

/* The other side is a few instructions from completing an operation that may let ours
 * through: wait for it without parking (parking on it could miss its wake-up check,
 * which may already be behind it). Strands let their worker run others meanwhile. */
static STRAND__NOINLINE void chan_backoff(unsigned round)
{
    if (round < 16) {
        for (unsigned i = 0; i < 8u << (round / 4); i++)
            strand__cpu_relax();
    } else if (strand__current() != NULL) {
        strand_yield();
    } else {
        atomic_uint nap = 0; /* a plain thread: a 10 us futex nap, no wake needed */
        strand__futex_wait(&nap, 0, strand_now() + 10000);
    }
}

/* The locked path of a buffered channel: with the lock, raise this side's flag, try once
 * more (the last look), then park; again while a waker says "retry". */
static STRAND__NOINLINE int chan_slow(struct strand_chan *ch, void *elem, int64_t deadline,
                                      bool send)
{
    for (unsigned round = 0;; round++) {
        strand__chan_wake wk = { NULL, 0 };
        strand__wlock_acquire(&ch->lock);
        /* seq_cst: the waiting side's store of "No lost wake-up" */
        atomic_store_explicit(send ? &ch->swait : &ch->rwait, 1, memory_order_seq_cst);
        int rc = send ? strand__chan_try_send(ch, elem, &wk) : strand__chan_try_recv(ch, elem, &wk);
        bool busy = rc == -EINPROGRESS;
        if (busy)
            rc = -EAGAIN; /* as far as our caller is concerned: not possible yet */
        if (rc != -EAGAIN || busy || deadline == 0 ||
            (deadline > 0 && deadline <= strand_now())) {
            if (rc != 0) /* no wait after all: lower our flag again */
                strand__chan_flags(ch);
            strand__wlock_release(&ch->lock);
            strand__chan_wake_run(&wk);
            if (rc != -EAGAIN || deadline == 0)
                return rc;
            if (deadline > 0 && deadline <= strand_now())
                return -ETIMEDOUT;
            chan_backoff(round); /* busy: the in-flight operation finishes soon */
            continue;
        }
        rc = chan_wait(ch, elem, deadline, send);
        if (rc != STRAND__CHAN_RETRY)
            return rc;
    }
}

/* An unbuffered operation: all under the lock, a parked partner served directly (its
 * wake puts it in this worker's run-next slot, so a ping-pong runs it next). */
static inline int unbuf_op(struct strand_chan *ch, void *elem, int64_t deadline, bool send)
{
    strand__chan_wake wk = { NULL, 0 };
    strand__wlock_acquire(&ch->lock);
    int rc = send ? unbuf_try_send(ch, elem, &wk) : unbuf_try_recv(ch, elem, &wk);
    if (rc == -EAGAIN) {
        if (deadline == 0) {
            strand__wlock_release(&ch->lock);
            return -EAGAIN;
        }
        return chan_wait(ch, elem, deadline, send);
    }
    strand__wlock_release(&ch->lock);
    if (wk.list != NULL)
        strand__waitq_wake(wk.list);
    if (rc == 0)
        strand__stat_add(STRAND__STAT_CHAN_OPS, wk.done);
    return rc;
}

int strand_chan_send(strand_chan *ch, const void *elem, int64_t deadline)
{
    if (STRAND__UNLIKELY(ch == NULL || elem == NULL))
        return -EINVAL;
    if (ch->cap == 0)
        return unbuf_op(ch, (void *)elem, deadline, true);
    if (!atomic_load_explicit(&ch->swait, memory_order_relaxed)) {
        int rc = strand__chan_ring_push(ch, elem);
        if (STRAND__LIKELY(rc == 0)) {
            /* seq_cst: the waking side's load of "No lost wake-up" */
            if (STRAND__UNLIKELY(atomic_load_explicit(&ch->rwait, memory_order_seq_cst)))
                chan_settle_locked(ch);
            strand__stat_add(STRAND__STAT_CHAN_OPS, 1);
            return 0;
        }
        if (rc == -EPIPE)
            return rc;
    }
    return chan_slow(ch, (void *)elem, deadline, true);
}

int strand_chan_recv(strand_chan *ch, void *elem, int64_t deadline)
{
    if (STRAND__UNLIKELY(ch == NULL || elem == NULL))
        return -EINVAL;
    if (ch->cap == 0)
        return unbuf_op(ch, elem, deadline, false);
    {
        int rc = strand__chan_ring_pop(ch, elem);
        if (STRAND__LIKELY(rc == 0)) {
            /* seq_cst: as in strand_chan_send */
            if (STRAND__UNLIKELY(atomic_load_explicit(&ch->swait, memory_order_seq_cst)))
                chan_settle_locked(ch);
            strand__stat_add(STRAND__STAT_CHAN_OPS, 1);
            return 0;
        }
        if (rc == -EPIPE)
            return rc;
    }
    return chan_slow(ch, elem, deadline, false);
}

int strand_chan_close(strand_chan *ch)
{
    if (ch == NULL)
        return -EINVAL;
    strand__waiter *list = NULL;
    strand__wlock_acquire(&ch->lock);
    if (ch->closed) {
        strand__wlock_release(&ch->lock);
        return -EPIPE;
    }
    ch->closed = true;
    /* From here no send claims a ring position; the claims before it stay accepted. */
    if (ch->cap > 0)
        atomic_fetch_or_explicit(&ch->enq, STRAND__CHAN_CLOSED, memory_order_acq_rel);
    /* Waiting senders had nothing accepted and all fail. Waiting receivers of an
     * unbuffered channel see the end; those of a buffered one look again, as accepted
     * values may still be on their way into the ring. */
    int rstatus = ch->cap > 0 ? STRAND__CHAN_RETRY : -EPIPE;
    ch->nwait -= (size_t)strand__waitq_claim_all(&ch->recvq, rstatus, &list);
    ch->nwait -= (size_t)strand__waitq_claim_all(&ch->sendq, -EPIPE, &list);
    if (ch->cap > 0)
        strand__chan_flags(ch);
    strand__wlock_release(&ch->lock);
    strand__wakelist_run(list);
    return 0;
}
