/*
 * mailbox.c - per-strand mailboxes (BEAM style): strand_send copies a message into the
 * target's queue; the target takes the oldest (strand_recv) or the oldest one a predicate
 * accepts (strand_recv_match), leaving the rest in order.
 *
 * Two lists per mailbox:
 *  - `inbox`, the senders' side: a lock-free stack (newest first) that senders push with
 *    one CAS and the owner empties with one exchange. Its low bit, MB_WAITING, says the
 *    owner is parked on it (or about to be): the sender whose CAS replaces a word with that
 *    bit set (the bit is cleared by that same CAS) is the one that wakes the owner.
 *  - head/tail, the owner's private FIFO: each drain reverses what it took from the inbox
 *    (so the FIFO holds messages in the order their CASes succeeded) and appends it. Only
 *    the owner reads or changes it, with no lock and no atomics, so selective receive
 *    scans and unlinks freely and keeps the order guarantee: of the messages a predicate
 *    accepts, the oldest is taken; the others stay queued, in order.
 *
 * Waiting, through wait.h (mb_ops): the owner, under `lock`, publishes its waiter in
 * `waiter` and then CASes the inbox from empty (0) to MB_WAITING; if the inbox is not empty
 * the publish is refused and the owner drains instead. A sender whose CAS saw MB_WAITING
 * takes `lock`, claims the waiter, clears it and wakes it after the unlock. A timed-out
 * owner takes the registration back under `lock` and CASes MB_WAITING back to 0 (if a
 * sender got there first, its wake is harmless: the waiter is claimed once). One word
 * carries both the messages and the flag, so no wake-up can be lost between them.
 *
 * Invariants:
 *  - Every message enters through strand__mailbox_deliver (strand_send, and the runtime's
 *    own notices), whose caller keeps the target live: strand_send runs it inside
 *    strand__with_live, so the target cannot finish (and drain its mailbox) while a
 *    message is being pushed; after the exit path's drain no send can reach the strand,
 *    so a message is either received, dropped by the drain (counted as
 *    STRAND__STAT_MAILBOX_DROPPED), or refused (-ESRCH, -EMSGSIZE, -ENOMEM, the message
 *    still the caller's) - never lost silently.
 *  - MB_WAITING is set only by the owner's publish (lock held, `waiter` set) and cleared by
 *    the push that replaces it or by the owner's take-back. The owner cannot finish before
 *    a claimed wake, so waking outside the lock is safe.
 */
#include "wait.h"

#include <stdlib.h>
#include <string.h>

struct strand__msg {
    struct strand__msg *next;
    int64_t             from;
    size_t              len;
    _Alignas(16) unsigned char data[];
};

#define MB_WAITING ((uintptr_t)1) /* in inbox: the owner waits (messages are 16-aligned) */

/* The largest message a mailbox holds (its node's size must fit a size_t). */
#define MSG_MAX (SIZE_MAX / 2)

/* The owner is parked: claim its waiter (if a timeout did not) and wake it. */
static STRAND__NOINLINE void wake_owner(strand__mailbox *mb)
{
    strand__waiter *wake = NULL;
    strand__spin_lock(&mb->lock);
    strand__waiter *w = mb->waiter;
    if (w != NULL && strand__waiter_claim(w)) {
        mb->waiter = NULL;
        w->status = 0;
        wake = w;
    }
    strand__spin_unlock(&mb->lock);
    if (wake != NULL)
        strand__waiter_wake(wake);
}

int strand__mailbox_deliver(struct strand *to, int64_t from, const void *msg, size_t len)
{
    if (len > MSG_MAX)
        return -EMSGSIZE;
    struct strand__msg *m = malloc(sizeof *m + len);
    if (m == NULL)
        return -ENOMEM;
    m->from = from;
    m->len = len;
    if (len > 0)
        memcpy(m->data, msg, len);

    strand__mailbox *mb = &to->mbox;
    uintptr_t old = atomic_load_explicit(&mb->inbox, memory_order_relaxed);
    do
        m->next = (struct strand__msg *)(old & ~MB_WAITING);
    /* release: the message's contents are visible to the owner's acquiring exchange */
    while (!atomic_compare_exchange_weak_explicit(&mb->inbox, &old, (uintptr_t)m,
                                                  memory_order_release, memory_order_relaxed));
    if (STRAND__UNLIKELY(old & MB_WAITING))
        wake_owner(mb);
    strand__stat_add(STRAND__STAT_MAILBOX_SENT, 1);
    return 0;
}

struct deliver {
    int64_t     from;
    const void *msg;
    size_t      len;
};

static int deliver(struct strand *s, void *ctx)
{
    struct deliver *d = ctx;
    return strand__mailbox_deliver(s, d->from, d->msg, d->len);
}

int strand_send(int64_t to, const void *msg, size_t len)
{
    if (msg == NULL && len > 0)
        return -EINVAL;
    if (len > MSG_MAX)
        return -EINVAL;
    if (to <= 0)
        return -ESRCH;
    struct deliver d = { strand_self(), msg, len };
    return strand__with_live(to, deliver, &d);
}

/* ------------------------------------------------------------------ the owner's FIFO */

/* Move what the senders pushed onto the private FIFO, oldest first. Returns whether
 * anything came. Owner only. */
static bool drain_inbox(strand__mailbox *mb)
{
    if (atomic_load_explicit(&mb->inbox, memory_order_relaxed) == 0)
        return false;
    /* acquire: pairs with the senders' releasing CAS; the contents are complete */
    uintptr_t top = atomic_exchange_explicit(&mb->inbox, 0, memory_order_acquire);
    struct strand__msg *m = (struct strand__msg *)(top & ~MB_WAITING), *fifo = NULL;
    if (m == NULL)
        return false;
    struct strand__msg *last = m;
    while (m != NULL) { /* reverse: newest first -> oldest first */
        struct strand__msg *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    if (mb->tail != NULL)
        mb->tail->next = fifo;
    else
        mb->head = fifo;
    mb->tail = last;
    return true;
}

static ssize_t take(strand__mailbox *mb, struct strand__msg *prev, struct strand__msg *m,
                    void *buf, size_t cap, int64_t *from)
{
    if (m->len > cap)
        return -EMSGSIZE; /* it stays queued */
    if (prev == NULL)
        mb->head = m->next;
    else
        prev->next = m->next;
    if (mb->tail == m)
        mb->tail = prev;
    if (m->len > 0)
        memcpy(buf, m->data, m->len);
    if (from != NULL)
        *from = m->from;
    ssize_t n = (ssize_t)m->len;
    free(m);
    return n;
}

/* ------------------------------------------------------------------ waiting (wait.h) */

static int mb_publish(void *obj, strand__waiter *w)
{
    strand__mailbox *mb = obj;
    uintptr_t empty = 0;
    /* release/acquire: a sender that sees the bit finds `waiter` under the lock anyway;
     * acquire so a refused publish's drain sees the messages */
    if (!atomic_compare_exchange_strong_explicit(&mb->inbox, &empty, MB_WAITING,
                                                 memory_order_acq_rel, memory_order_acquire))
        return -EAGAIN; /* messages came: no wait */
    w->obj = mb;
    mb->waiter = w;
    return 0;
}

static void *mb_unlink(void *obj, strand__waiter *w)
{
    strand__mailbox *mb = obj;
    if (mb->waiter == w)
        mb->waiter = NULL;
    uintptr_t flag = MB_WAITING;
    atomic_compare_exchange_strong_explicit(&mb->inbox, &flag, 0, memory_order_relaxed,
                                            memory_order_relaxed);
    return NULL;
}

STRAND__LOCK_FIRST(strand__mailbox);
static const strand__wait_ops mb_ops = {
    strand__wait_spin_lock, strand__wait_spin_unlock, mb_publish, mb_unlink,
};

/* Nothing new in the FIFO: wait for a sender. 0 when one may have come, -EAGAIN or
 * -ETIMEDOUT otherwise. */
static int wait_for_more(strand__mailbox *mb, int64_t deadline)
{
    if (deadline == 0)
        return -EAGAIN;
    strand__spin_lock(&mb->lock);
    strand__wait_reg r;
    int rc = strand__wait(&r, &mb_ops, mb, deadline, STRAND__WAIT_MAILBOX, 0);
    return rc == -EAGAIN ? 0 : rc;
}

static ssize_t recv_common(strand_match_fn pred, void *ctx, void *buf, size_t cap,
                           int64_t *from, int64_t deadline)
{
    if (buf == NULL && cap > 0)
        return -EINVAL;
    struct strand *cur = strand__current();
    if (cur == NULL)
        return -EPERM;
    strand__mailbox *mb = &cur->mbox;
    struct strand__msg *seen = NULL; /* the newest message the predicate refused */

    for (;;) {
        drain_inbox(mb);
        struct strand__msg *m = seen == NULL ? mb->head : seen->next;
        struct strand__msg *prev = seen;
        while (m != NULL) {
            if (pred == NULL || pred(m->data, m->len, m->from, ctx))
                return take(mb, prev, m, buf, cap, from);
            prev = seen = m;
            m = m->next;
        }
        if (drain_inbox(mb))
            continue;
        int rc = wait_for_more(mb, deadline);
        if (rc != 0)
            return rc;
    }
}

ssize_t strand_recv(void *buf, size_t cap, int64_t *from, int64_t deadline)
{
    return recv_common(NULL, NULL, buf, cap, from, deadline);
}

ssize_t strand_recv_match(strand_match_fn pred, void *ctx, void *buf, size_t cap,
                          int64_t *from, int64_t deadline)
{
    if (pred == NULL)
        return -EINVAL;
    return recv_common(pred, ctx, buf, cap, from, deadline);
}

void strand__mailbox_drain(struct strand *s)
{
    strand__mailbox *mb = &s->mbox;
    drain_inbox(mb);
    strand__spin_lock(&mb->lock);
    mb->waiter = NULL;
    strand__spin_unlock(&mb->lock);
    struct strand__msg *m = mb->head;
    mb->head = mb->tail = NULL;
    uint64_t n = 0;
    while (m != NULL) {
        struct strand__msg *next = m->next;
        free(m);
        m = next;
        n++;
    }
    if (n > 0)
        strand__stat_add(STRAND__STAT_MAILBOX_DROPPED, n);
}
