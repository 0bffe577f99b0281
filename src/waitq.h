/*
 * waitq.h - the waiter queue of every object strands wait on: channels, select, the
 * strand synchronisation objects and the per-fd records (chan.c, select.c, sync.c,
 * netpoll.c), and the wake list their wakers use after dropping the object's lock.
 *
 * strand__waitq: a FIFO of strand__waiter, doubly linked through waiter->next/prev.
 *   Invariants: every operation runs under the lock of the object owning the queue;
 *   waiter->obj is non-NULL exactly while the waiter is linked into some queue (it is the
 *   owning object, for the dump), so a waiter that timed out can tell, under the same lock,
 *   whether a waker already took it off the queue. A zeroed queue is empty.
 */
#ifndef STRAND_WAITQ_H
#define STRAND_WAITQ_H

#include "wlock.h"

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

/* Claim every waiter of q that can still be claimed, give each `status` and put it on the
 * wake list *list (see below). Returns how many it claimed. */
static inline int strand__waitq_claim_all(strand__waitq *q, int status, strand__waiter **list)
{
    int n = 0;
    strand__waiter *w;
    while ((w = strand__waitq_claim(q)) != NULL) {
        w->status = status;
        w->next = *list;
        *list = w;
        n++;
    }
    return n;
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

/* Wake every waiter of the list; returns how many. */
static inline int strand__wakelist_run(strand__waiter *list)
{
    int n = 0;
    while (list != NULL) {
        strand__waiter *next = list->next; /* read before the wake: w dies with it */
        strand__waitq_wake(list);
        list = next;
        n++;
    }
    return n;
}

#endif
