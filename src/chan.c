/*
 * chan.c - channels of fixed-size elements (strand_chan_*), as Go's hchan: one lock per
 * channel, a ring buffer of `cap` elements, and a waiter queue per direction.
 *
 * Invariants (all under ch->lock):
 *  - A sender waits on sendq only when no receiver waits and the buffer is full; a receiver
 *    waits on recvq only when the buffer is empty and no sender waits. So at most one of
 *    the two queues holds claimable waiters at a time.
 *  - A value is "accepted" when it is in the buffer or copied into a receiver's elem; a
 *    send returns 0 only then. A sender woken with -EPIPE (close) never had its value taken.
 *  - Waker side: claim the waiter, copy the value, set status, and wake it only after the
 *    lock is dropped; never touch the waiter after waking it (it lives on its owner's
 *    stack). An unbuffered send hands the value straight into the parked receiver's elem.
 *  - nwait counts waiters that will come back to take the lock again (they timed out or
 *    are select cases that lost); a waker that claims a waiter takes it off that count.
 *    The channel is freed when refs reach zero and nwait is zero, by whichever of release
 *    or the last returning waiter sees that state.
 *  - elem_size is 1 .. STRAND__CHAN_MAX_ELEM (64 KiB); capacity * elem_size must fit.
 *  - STRAND__STAT_CHAN_OPS is bumped by whoever completes an operation without parking,
 *    for its own operation and for the parked one it completed (see count_ops).
 */
#include "chan_internal.h"

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
    if (capacity > STRAND__CHAN_MAX_CAP || capacity > (SIZE_MAX / 2) / elem_size)
        return -EINVAL;
    size_t bytes = sizeof(struct strand_chan) + capacity * elem_size;
    struct strand_chan *ch = calloc(1, bytes);
    if (ch == NULL)
        return -ENOMEM;
    ch->elem_size = (uint32_t)elem_size;
    ch->cap = capacity;
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
    if (ch == NULL)
        return 0;
    strand__wlock_acquire(&ch->lock);
    size_t n = ch->count;
    strand__wlock_release(&ch->lock);
    return n;
}

size_t strand_chan_cap(strand_chan *ch)
{
    return ch == NULL ? 0 : ch->cap;
}

/* ------------------------------------------------------------------ the operations
 * The try_* helpers run with the lock held and return with it held; each either completes
 * the operation (returning 0 or -EPIPE and possibly a waiter to wake after unlocking) or
 * returns -EAGAIN. select.c uses them too. */

int strand__chan_try_send(struct strand_chan *ch, const void *elem, strand__waiter **wake)
{
    if (STRAND__UNLIKELY(ch->closed))
        return -EPIPE;
    strand__waiter *w = strand__waitq_claim(&ch->recvq);
    if (w != NULL) {
        /* a parked receiver means the buffer is empty: hand the value over directly */
        ch->nwait--;
        strand__chan_copy(w->elem, elem, ch->elem_size);
        w->status = 0;
        *wake = w;
        return 0;
    }
    if (ch->count < ch->cap) {
        strand__chan_copy(strand__chan_slot(ch, ch->sendx), elem, ch->elem_size);
        if (++ch->sendx == ch->cap)
            ch->sendx = 0;
        ch->count++;
        return 0;
    }
    return -EAGAIN;
}

int strand__chan_try_recv(struct strand_chan *ch, void *elem, strand__waiter **wake)
{
    if (ch->count > 0) {
        strand__chan_copy(elem, strand__chan_slot(ch, ch->recvx), ch->elem_size);
        /* A claimable parked sender means the buffer is full (count == cap, sendx ==
         * recvx): its value takes the slot just freed, behind everything buffered. */
        strand__waiter *w = strand__waitq_claim(&ch->sendq);
        if (w != NULL) {
            ch->nwait--;
            strand__chan_copy(strand__chan_slot(ch, ch->recvx), w->elem, ch->elem_size);
            w->status = 0;
            *wake = w;
            if (++ch->recvx == ch->cap)
                ch->recvx = 0;
            ch->sendx = ch->recvx;
            return 0;
        }
        if (++ch->recvx == ch->cap)
            ch->recvx = 0;
        ch->count--;
        return 0;
    }
    strand__waiter *w = strand__waitq_claim(&ch->sendq);
    if (w != NULL) {
        /* unbuffered (or a select sender): take the value straight from the sender */
        ch->nwait--;
        strand__chan_copy(elem, w->elem, ch->elem_size);
        w->status = 0;
        *wake = w;
        return 0;
    }
    if (ch->closed)
        return -EPIPE;
    return -EAGAIN;
}

/* Park the caller on one queue of ch (lock held on entry, released here). Returns what
 * the waker wrote (0 or -EPIPE) or -ETIMEDOUT. */
static int chan_wait(struct strand_chan *ch, void *elem, int64_t deadline, bool send)
{
    strand__wait_reg r;
    r.w.elem = elem;
    if (send)
        return strand__wait(&r, &strand__chan_send_ops, ch, deadline, STRAND__WAIT_CHAN_SEND, 0);
    return strand__wait(&r, &strand__chan_recv_ops, ch, deadline, STRAND__WAIT_CHAN_RECV, 0);
}

/* Count completed operations: a hand-off completes two (ours and the parked waiter's, which
 * does not count itself), so the ping-pong path pays for one counter update, not two. */
static inline void count_ops(strand__waiter *wake)
{
    strand__stat_add(STRAND__STAT_CHAN_OPS, wake != NULL ? 2 : 1);
}

int strand_chan_send(strand_chan *ch, const void *elem, int64_t deadline)
{
    if (STRAND__UNLIKELY(ch == NULL || elem == NULL))
        return -EINVAL;
    strand__waiter *wake = NULL;
    strand__wlock_acquire(&ch->lock);
    int rc = strand__chan_try_send(ch, elem, &wake);
    if (rc == -EAGAIN) {
        if (deadline == 0) {
            strand__wlock_release(&ch->lock);
            return -EAGAIN;
        }
        return chan_wait(ch, (void *)elem, deadline, true);
    }
    strand__wlock_release(&ch->lock);
    if (wake != NULL)
        strand__waitq_wake(wake);
    if (rc == 0)
        count_ops(wake);
    return rc;
}

int strand_chan_recv(strand_chan *ch, void *elem, int64_t deadline)
{
    if (STRAND__UNLIKELY(ch == NULL || elem == NULL))
        return -EINVAL;
    strand__waiter *wake = NULL;
    strand__wlock_acquire(&ch->lock);
    int rc = strand__chan_try_recv(ch, elem, &wake);
    if (rc == -EAGAIN) {
        if (deadline == 0) {
            strand__wlock_release(&ch->lock);
            return -EAGAIN;
        }
        return chan_wait(ch, elem, deadline, false);
    }
    strand__wlock_release(&ch->lock);
    if (wake != NULL)
        strand__waitq_wake(wake);
    if (rc == 0)
        count_ops(wake);
    return rc;
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
    /* Waiting receivers imply an empty buffer, so they all see the end; waiting senders
     * had nothing accepted and all fail. */
    ch->nwait -= (size_t)strand__waitq_claim_all(&ch->recvq, -EPIPE, &list);
    ch->nwait -= (size_t)strand__waitq_claim_all(&ch->sendq, -EPIPE, &list);
    strand__wlock_release(&ch->lock);
    strand__wakelist_run(list);
    return 0;
}
