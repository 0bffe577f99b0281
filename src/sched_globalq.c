/*
 * sched_globalq.c - the global run queue (the layout and its invariants are in
 * sched_globalq.h). Every operation here holds q->lock except strand__globalq_len.
 */
#include "sched_globalq.h"

#include <stdlib.h>
#include <string.h>

static bool ring_grow(strand__globalq_ring *r)
{
    size_t cap = r->cap ? r->cap * 2 : 1024;
    struct strand **b = malloc(cap * sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < r->count; i++)
        b[i] = r->buf[(r->head + i) % r->cap];
    free(r->buf);
    r->buf = b;
    r->cap = cap;
    r->head = 0;
    return true;
}

static void push_locked(strand__globalq *q, struct strand *s, int prio)
{
    strand__globalq_ring *r = &q->ring[prio];
    /* relaxed: the count is a hint outside the lock (see the header) */
    atomic_fetch_add_explicit(&q->n, 1, memory_order_relaxed);
    if (!r->spill_head && (r->count < r->cap || ring_grow(r))) {
        r->buf[(r->head + r->count++) % r->cap] = s;
        return;
    }
    s->next = NULL;
    if (r->spill_tail)
        r->spill_tail->next = s;
    else
        r->spill_head = s;
    r->spill_tail = s;
}

static struct strand *take_locked(strand__globalq *q, int prio)
{
    strand__globalq_ring *r = &q->ring[prio];
    struct strand *s = NULL;
    if (r->count) {
        s = r->buf[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
    } else if (r->spill_head) {
        s = r->spill_head;
        r->spill_head = s->next;
        if (!r->spill_head)
            r->spill_tail = NULL;
    }
    if (s)
        atomic_fetch_sub_explicit(&q->n, 1, memory_order_relaxed);
    return s;
}

void strand__globalq_init(strand__globalq *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
}

void strand__globalq_destroy(strand__globalq *q)
{
    for (int p = 0; p < STRAND__PRIOS; p++)
        free(q->ring[p].buf);
    pthread_mutex_destroy(&q->lock);
    memset(q, 0, sizeof *q);
}

void strand__globalq_push(strand__globalq *q, struct strand *s, int prio)
{
    pthread_mutex_lock(&q->lock);
    push_locked(q, s, prio);
    pthread_mutex_unlock(&q->lock);
}

void strand__globalq_push_many(strand__globalq *q, int prio, struct strand *const *v, unsigned n)
{
    pthread_mutex_lock(&q->lock);
    for (unsigned i = 0; i < n; i++)
        push_locked(q, v[i], prio);
    pthread_mutex_unlock(&q->lock);
}

struct strand *strand__globalq_take(strand__globalq *q, unsigned share, strand__runq *rq,
                                    unsigned *prio_mask, bool low_first)
{
    if (strand__globalq_len(q) == 0)
        return NULL;
    struct strand *first = NULL;
    pthread_mutex_lock(&q->lock);
    unsigned n = atomic_load_explicit(&q->n, memory_order_relaxed);
    unsigned want = n / (share ? share : 1) + 1;
    if (want > STRAND__RUNQ_SIZE / 2)
        want = STRAND__RUNQ_SIZE / 2;
    const int *order = strand__prio_order[low_first];
    for (int i = 0; i < STRAND__PRIOS && want; i++) {
        int p = order[i];
        struct strand *s;
        while (want && (s = take_locked(q, p))) {
            want--;
            if (!first) {
                first = s;
                continue;
            }
            if (!strand__runq_put(&rq[p], s)) {
                push_locked(q, s, p); /* the ring is full: the rest stays here */
                want = 0;
            } else if (p != STRAND_PRIO_NORMAL) {
                *prio_mask |= 1u << p;
            }
        }
    }
    pthread_mutex_unlock(&q->lock);
    return first;
}
