/*
 * waitq.h - the lock and the waiter queue shared by channels, select, mailboxes and the
 * strand synchronisation objects (chan.c, select.c, mailbox.c, sync.c).
 *
 * strand__wlock: a test-and-test-and-set lock for sections of a few dozen instructions.
 *   Zero is unlocked (so zeroed mutexes and wait groups are valid). Unlike the plain
 *   spinlock it falls back to sched_yield after a short spin: a plain thread or a worker
 *   holding it may be descheduled by the kernel on a busy machine, and spinning through a
 *   whole time slice would be worse than yielding.
 *
 * strand__waitq: a FIFO of strand__waiter, doubly linked through waiter->next/prev.
 *   Invariants: every operation runs under the lock of the object owning the queue;
 *   waiter->obj is non-NULL exactly while the waiter is linked into some queue (it is the
 *   owning object, for the dump), so a waiter that timed out can tell, under the same lock,
 *   whether a waker already took it off the queue. A zeroed queue is empty.
 */
#ifndef STRAND_WAITQ_H
#define STRAND_WAITQ_H

#include "internal.h"


typedef struct { atomic_uint held; } strand__wlock;

void strand__wlock_slow(strand__wlock *l);

static inline void strand__wlock_acquire(strand__wlock *l)
{
    /* acquire: the section's reads must not move above taking the lock */
    if (STRAND__LIKELY(!atomic_exchange_explicit(&l->held, 1, memory_order_acquire)))
        return;
    strand__wlock_slow(l);
}

static inline bool strand__wlock_try(strand__wlock *l)
{
    return !atomic_exchange_explicit(&l->held, 1, memory_order_acquire);
}

static inline void strand__wlock_release(strand__wlock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

typedef struct strand__waitq {
    strand__waiter *head, *tail;
} strand__waitq;

static inline bool strand__waitq_empty(const strand__waitq *q)
{
    return q->head == NULL;
}

static inline void strand__waitq_push(strand__waitq *q, strand__waiter *w, void *obj)
{
    w->obj = obj;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
}

static inline void strand__waitq_remove(strand__waitq *q, strand__waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->obj = NULL;
}

/* Unlink and return the oldest waiter, or NULL. */
static inline strand__waiter *strand__waitq_pop(strand__waitq *q)
{
    strand__waiter *w = q->head;
    if (w != NULL)
        strand__waitq_remove(q, w);
    return w;
}

/* Unlink the oldest waiter that can still be claimed and claim it; waiters whose claim is
 * lost (a timeout or another select case took it) are dropped from the queue on the way:
 * their owner notices w->obj == NULL when it comes back to unregister. */
static inline strand__waiter *strand__waitq_claim(strand__waitq *q)
{
    strand__waiter *w;
    while ((w = strand__waitq_pop(q)) != NULL) {
        if (strand__waiter_claim(w))
            return w;
    }
    return NULL;
}

/* Select registers one waiter per case but blocks on the first (the primary); a waiter
 * whose `data` is set points at that primary, and it is the primary that must be woken. */
static inline void strand__waitq_wake(strand__waiter *w)
{
    strand__waiter *primary = w->data != 0 ? (strand__waiter *)w->data : w;
    strand__waiter_wake(primary);
}

/* Put a waiter that has been claimed on a private wake list (linked through `next`),
 * to be woken after the object's lock is released. */
static inline void strand__wakelist_add(strand__waiter **list, strand__waiter *w)
{
    w->next = *list;
    *list = w;
}

static inline void strand__wakelist_run(strand__waiter *list)
{
    while (list != NULL) {
        strand__waiter *next = list->next; /* read before the wake: w dies with it */
        strand__waitq_wake(list);
        list = next;
    }
}

/* The identity that owns a mutex: the strand id in a strand, else a negative number unique
 * to the calling thread. Never 0 (0 = unlocked). */
int64_t strand__owner_self(void);

#endif
