/*
 * chan_internal.h - the channel structure, the lock-free ring of a buffered channel, and
 * the locked helpers chan.c shares with select.c. See chan.c for the protocol and the
 * invariants.
 *
 * The ring (a bounded MPMC queue with a sequence word per slot, as Vyukov's): positions
 * `enq` and `deq` only grow; position p lives in slot p % cap. A slot's `seq` says whose
 * turn it is: 2p = free for the sender of position p, 2p + 1 = holds the value of p for
 * its receiver; a receiver that took p sets 2(p + cap), the next lap's sender's turn.
 * (Twice the position, so that even a 1-slot ring never mistakes "full" for "free".)
 * A sender claims p with one CAS on `enq` (seq_cst: it is also its half of chan.c's "No
 * lost wake-up"), copies, then publishes with a plain release store of seq; a receiver
 * likewise with `deq`. So an operation that does not wait is one atomic read-modify-write.
 * A position claimed but not yet published (or taken but not yet freed) is "in flight":
 * the ring operations say -EINPROGRESS for it, so that a would-be waiter does not park on
 * it (its owner is a few instructions from done). Closing sets CHAN_CLOSED in `enq`, so no send can
 * claim a position after it and a receiver knows the buffer is drained for good when it
 * finds deq == enq with that bit set.
 */
#ifndef STRAND_CHAN_INTERNAL_H
#define STRAND_CHAN_INTERNAL_H

#include "wait.h"
#include "waitq.h"

#include <string.h>

#define STRAND__CHAN_MAX_ELEM ((size_t)64 * 1024)  /* bytes per element */
#define STRAND__CHAN_MAX_CAP  ((size_t)1 << 30)    /* elements */

/* A waker's status for a waiter it claimed but could not complete (the value it meant to
 * hand over was taken by a lock-free receive, the slot it meant to fill by a lock-free
 * send, or the channel closed under a receiver): "look again". Never returned to a caller;
 * positive, so it is no errno and not STRAND__STATUS_PENDING. */
#define STRAND__CHAN_RETRY 1

#define STRAND__CHAN_CLOSED ((uint64_t)1 << 63) /* in enq: closed, no send claims more */

struct strand_chan {
    /* --- the slow path's line: waiters (everything here under `lock`) */
    strand__wlock lock;
    bool          closed;
    bool          dead;      /* no references left; freed once nwait drops to 0 */
    strand__waitq sendq, recvq;
    size_t        nwait;     /* waiters that will come back to this lock (see chan.c) */
    atomic_size_t refs;
    /* --- read by every operation: written rarely (the flags in slow paths only) */
    _Alignas(STRAND__CACHELINE) uint32_t elem_size;
    uint32_t      stride;    /* bytes per ring slot: seq + the element, 8-aligned */
    size_t        cap;
    size_t        mask;      /* cap - 1 (used when pow2) */
    bool          pow2;      /* cap is a power of two: slot index by mask, not by division */
    /* "someone may wait on recvq / sendq": 1 from just before a waiter's last look at the
     * ring (under the lock) until the queue is seen empty (under the lock). A lock-free
     * operation that may have enabled a waiter reads it (seq_cst) after its publish. */
    atomic_uint   rwait, swait;
    /* --- the senders' and the receivers' positions, each on its own line */
    _Alignas(STRAND__CACHELINE) _Atomic uint64_t enq;
    _Alignas(STRAND__CACHELINE) _Atomic uint64_t deq;
    _Alignas(STRAND__CACHELINE) unsigned char buf[]; /* cap slots of `stride` bytes */
};

/* Element copy with the common small sizes unrolled (a call to memcpy with a variable
 * size costs more than the rest of an uncontended channel operation). */
static inline void strand__chan_copy(void *dst, const void *src, uint32_t size)
{
    switch (size) {
    case 1: memcpy(dst, src, 1); return;
    case 2: memcpy(dst, src, 2); return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default: memcpy(dst, src, size); return;
    }
}

/* ------------------------------------------------------------------ the ring */

typedef struct strand__chan_slot {
    _Atomic uint64_t seq;
    unsigned char    data[];
} strand__chan_slot;

static inline strand__chan_slot *strand__chan_slot_at(struct strand_chan *ch, uint64_t pos)
{
    size_t i = ch->pow2 ? (size_t)pos & ch->mask : (size_t)(pos % ch->cap);
    return (strand__chan_slot *)(ch->buf + i * ch->stride);
}

/* Put a copy of elem at the ring's tail: 0, -EAGAIN (full), -EINPROGRESS (full but the
 * slot's receiver is still copying out), or -EPIPE (closed). */
static inline int strand__chan_ring_push(struct strand_chan *ch, const void *elem)
{
    /* relaxed: the slot's seq (acquire) orders the copy; enq only arbitrates positions */
    uint64_t pos = atomic_load_explicit(&ch->enq, memory_order_relaxed);
    strand__chan_slot *sl;
    for (;;) {
        if (STRAND__UNLIKELY(pos & STRAND__CHAN_CLOSED))
            return -EPIPE;
        sl = strand__chan_slot_at(ch, pos);
        /* acquire: the receiver that freed the slot has finished copying out of it */
        uint64_t seq = atomic_load_explicit(&sl->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - 2 * pos);
        if (diff == 0) {
            /* seq_cst: the claim is the sender's store of "No lost wake-up" (chan.c) */
            if (atomic_compare_exchange_weak_explicit(&ch->enq, &pos, pos + 1,
                                                      memory_order_seq_cst, memory_order_relaxed))
                break;
        } else if (diff < 0) {
            /* The previous lap's value is still there - or its receiver has claimed it and
             * is copying out. seq_cst: this load of deq is the waiting sender's last look */
            uint64_t d = atomic_load_explicit(&ch->deq, memory_order_seq_cst);
            return d + ch->cap > pos ? -EINPROGRESS : -EAGAIN;
        } else {
            pos = atomic_load_explicit(&ch->enq, memory_order_relaxed);
        }
    }
    strand__chan_copy(sl->data, elem, ch->elem_size);
    /* release: the copy is visible to the receiver that sees this seq */
    atomic_store_explicit(&sl->seq, 2 * pos + 1, memory_order_release);
    return 0;
}

/* Take the value at the ring's head into elem: 0, -EAGAIN (empty), -EINPROGRESS (the next
 * value is still being copied in), or -EPIPE (closed and drained). */
static inline int strand__chan_ring_pop(struct strand_chan *ch, void *elem)
{
    uint64_t pos = atomic_load_explicit(&ch->deq, memory_order_relaxed);
    strand__chan_slot *sl;
    for (;;) {
        sl = strand__chan_slot_at(ch, pos);
        /* acquire: pairs with the sender's publishing store, the value is complete */
        uint64_t seq = atomic_load_explicit(&sl->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - (2 * pos + 1));
        if (diff == 0) {
            /* seq_cst: the claim is the receiver's store of "No lost wake-up" (chan.c) */
            if (atomic_compare_exchange_weak_explicit(&ch->deq, &pos, pos + 1,
                                                      memory_order_seq_cst, memory_order_relaxed))
                break;
        } else if (diff < 0) {
            /* Nothing published at pos: empty, unless a sender has claimed it. seq_cst:
             * this load of enq is the waiting receiver's last look; a CLOSED seen here
             * comes after every claim it closed out */
            uint64_t e = atomic_load_explicit(&ch->enq, memory_order_seq_cst);
            uint64_t claimed = e & ~STRAND__CHAN_CLOSED;
            if (claimed == pos)
                return (e & STRAND__CHAN_CLOSED) ? -EPIPE : -EAGAIN;
            return claimed > pos ? -EINPROGRESS : -EAGAIN;
        } else {
            pos = atomic_load_explicit(&ch->deq, memory_order_relaxed);
        }
    }
    strand__chan_copy(elem, sl->data, ch->elem_size);
    /* release: our copy-out is done before the next lap's sender reuses the slot */
    atomic_store_explicit(&sl->seq, 2 * (pos + ch->cap), memory_order_release);
    return 0;
}

/* Peeks for the settle loop (lock held): is a value ready at the head / a slot free at the
 * tail? Either may be stale by the time the caller acts; the ring operation decides. */
static inline bool strand__chan_ring_ready(struct strand_chan *ch)
{
    uint64_t pos = atomic_load_explicit(&ch->deq, memory_order_relaxed);
    return atomic_load_explicit(&strand__chan_slot_at(ch, pos)->seq, memory_order_relaxed) ==
           2 * pos + 1;
}

static inline bool strand__chan_ring_room(struct strand_chan *ch)
{
    uint64_t pos = atomic_load_explicit(&ch->enq, memory_order_relaxed);
    if (pos & STRAND__CHAN_CLOSED)
        return false;
    return atomic_load_explicit(&strand__chan_slot_at(ch, pos)->seq, memory_order_relaxed) ==
           2 * pos;
}

/* ------------------------------------------------------------------ locked helpers */

/* What a completed operation leaves to do once the locks are dropped: wake the waiters it
 * claimed (`list`, see waitq.h) and count the operations it completed (`done`: its own and
 * the parked ones it finished; STRAND__STAT_CHAN_OPS). */
typedef struct strand__chan_wake {
    strand__waiter *list;
    unsigned        done;
} strand__chan_wake;

static inline void strand__chan_wake_run(strand__chan_wake *wk)
{
    if (wk->list != NULL)
        strand__wakelist_run(wk->list);
    if (wk->done != 0)
        strand__stat_add(STRAND__STAT_CHAN_OPS, wk->done);
}

/* With ch->lock held: complete the operation now (0, or -EPIPE) and note in *wk what to
 * wake, or return -EAGAIN (or -EINPROGRESS: not possible now, but another operation is
 * a few instructions from making it possible - do not park on that). For a buffered channel the caller has raised ch->swait (send)
 * or ch->rwait (recv) with a seq_cst store first (chan.c: "No lost wake-up"). On 0
 * the helpers leave both flags matching the queues; otherwise they leave them raised
 * for the wait to come, and a caller that does not wait calls strand__chan_flags. */
int  strand__chan_try_send(struct strand_chan *ch, const void *elem, strand__chan_wake *wk);
int  strand__chan_try_recv(struct strand_chan *ch, void *elem, strand__chan_wake *wk);
/* With ch->lock held: set rwait/swait from the queues (after a wait that did not happen,
 * and after every change of the queues). */
static inline void strand__chan_flags(struct strand_chan *ch)
{
    /* relaxed: lowering a flag only ever follows its queue becoming empty (under the
     * lock), and a flag raised here for a queue that still holds waiters was raised with
     * seq_cst before their last look already; the Dekker stores are chan_slow's */
    unsigned r = !strand__waitq_empty(&ch->recvq), w = !strand__waitq_empty(&ch->sendq);
    /* Stored only when changed: the line is read by every lock-free operation, and a
     * store nobody needs would take it away from their caches. */
    if (atomic_load_explicit(&ch->rwait, memory_order_relaxed) != r)
        atomic_store_explicit(&ch->rwait, r, memory_order_relaxed);
    if (atomic_load_explicit(&ch->swait, memory_order_relaxed) != w)
        atomic_store_explicit(&ch->swait, w, memory_order_relaxed);
}
/* How the wait layer (wait.h) queues a waiter on a channel's sendq / recvq and takes it
 * back; select.c registers its cases with them. */
extern const strand__wait_ops strand__chan_send_ops, strand__chan_recv_ops;

#endif
