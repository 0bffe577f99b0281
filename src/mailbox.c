/*
 * mailbox.c - per-strand mailboxes (BEAM style): strand_send copies a message into the
 * target's queue; the target takes the oldest (strand_recv) or the oldest one a predicate
 * accepts (strand_recv_match), leaving the rest in order.
 *
 * Invariants:
 *  - s->mbox.lock guards head, tail, count and waiter. Senders only append at the tail;
 *    only the owning strand unlinks and frees nodes. So the owner may read nodes (and the
 *    `next` links of every node but the tail it last saw under the lock) without the lock:
 *    message contents never change after they are published.
 *  - Every message enters through strand__mailbox_deliver (strand_send, and the runtime's
 *    own notices), whose caller keeps the target live: strand_send runs it inside
 *    strand__with_live, so the target cannot finish (and drain its mailbox) while a
 *    message is being appended; after the exit path's drain no send can reach the strand,
 *    so a message is either received, dropped by the drain (counted as
 *    STRAND__STAT_MAILBOX_DROPPED), or refused (-ESRCH, -EMSGSIZE, -ENOMEM, the message
 *    still the caller's) - never lost silently.
 *  - At most one waiter (the owner's) is registered, through wait.h (mb_ops). A sender
 *    claims it, clears the pointer, and wakes it after the lock is released; the owner
 *    cannot finish before that wake, so waking outside the lock is safe.
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

struct deliver {
    int64_t     from;
    const void *msg;
    size_t      len;
};

/* The largest message a mailbox holds (its node's size must fit a size_t). */
#define MSG_MAX (SIZE_MAX / 2)

int strand__mailbox_deliver(struct strand *to, int64_t from, const void *msg, size_t len)
{
    if (len > MSG_MAX)
        return -EMSGSIZE;
    struct strand__msg *m = malloc(sizeof *m + len);
    if (m == NULL)
        return -ENOMEM;
    m->next = NULL;
    m->from = from;
    m->len = len;
    if (len > 0)
        memcpy(m->data, msg, len);

    strand__mailbox *mb = &to->mbox;
    strand__waiter *wake = NULL;
    strand__spin_lock(&mb->lock);
    if (mb->tail != NULL)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    mb->count++;
    strand__waiter *w = mb->waiter;
    if (w != NULL && strand__waiter_claim(w)) {
        mb->waiter = NULL;
        w->status = 0;
        wake = w;
    }
    strand__spin_unlock(&mb->lock);
    /* `to` cannot finish before this wake (the caller keeps it live), so waking after
     * the unlock is safe. */
    if (wake != NULL)
        strand__waiter_wake(wake);
    strand__stat_add(STRAND__STAT_MAILBOX_SENT, 1);
    return 0;
}

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

/* Unlink `m` (whose predecessor is `prev`, NULL for the head) under the lock. */
static void unlink_msg(strand__mailbox *mb, struct strand__msg *prev, struct strand__msg *m)
{
    strand__spin_lock(&mb->lock);
    if (prev == NULL)
        mb->head = m->next;
    else
        prev->next = m->next;
    if (mb->tail == m)
        mb->tail = prev;
    mb->count--;
    strand__spin_unlock(&mb->lock);
}

static ssize_t take(strand__mailbox *mb, struct strand__msg *prev, struct strand__msg *m,
                    void *buf, size_t cap, int64_t *from)
{
    if (m->len > cap)
        return -EMSGSIZE; /* it stays queued */
    unlink_msg(mb, prev, m);
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
    w->obj = mb;
    mb->waiter = w;
    return 0;
}

static void *mb_unlink(void *obj, strand__waiter *w)
{
    strand__mailbox *mb = obj;
    if (mb->waiter == w)
        mb->waiter = NULL;
    return NULL;
}

STRAND__LOCK_FIRST(strand__mailbox);
static const strand__wait_ops mb_ops = {
    strand__wait_spin_lock, strand__wait_spin_unlock, mb_publish, mb_unlink,
};

/* Wait for a message newer than `seen` (NULL: for any message). Returns 0 when there is
 * one (maybe already), -EAGAIN/-ETIMEDOUT otherwise. */
static int wait_for_more(struct strand *cur, struct strand__msg *seen, int64_t deadline)
{
    strand__mailbox *mb = &cur->mbox;
    strand__spin_lock(&mb->lock);
    bool more = seen == NULL ? mb->head != NULL : seen->next != NULL;
    if (more || deadline == 0) {
        strand__spin_unlock(&mb->lock);
        return more ? 0 : -EAGAIN;
    }
    strand__wait_reg r;
    return strand__wait(&r, &mb_ops, mb, deadline, STRAND__WAIT_MAILBOX, 0);
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
        /* Snapshot the list under the lock; then examine it without. */
        strand__spin_lock(&mb->lock);
        struct strand__msg *m = seen == NULL ? mb->head : seen->next;
        struct strand__msg *last = mb->tail;
        strand__spin_unlock(&mb->lock);
        struct strand__msg *prev = seen;
        while (m != NULL) {
            if (pred == NULL || pred(m->data, m->len, m->from, ctx))
                return take(mb, prev, m, buf, cap, from);
            prev = seen = m;
            m = m == last ? NULL : m->next;
        }
        int rc = wait_for_more(cur, seen, deadline);
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
    strand__spin_lock(&mb->lock);
    struct strand__msg *m = mb->head;
    mb->head = mb->tail = NULL;
    mb->count = 0;
    mb->waiter = NULL;
    strand__spin_unlock(&mb->lock);
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
