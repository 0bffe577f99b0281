/*
 * sched_globalq.h - the global run queue: where strands go that no worker's ring can take
 * (spawns and wake-ups from plain threads, a full ring's overflow). One per scheduler; a
 * data structure only (tests/test_globalq.c drives one of its own).
 *
 * Shape: one growable ring of pointers per priority, under one mutex. Moving strands in and
 * out never touches their control blocks (each is on its own stack page: with a million
 * queued strands a linked list costs a cache and TLB miss per strand). If a ring cannot
 * grow, strands go on that priority's intrusive list (`spill`, through s->next) instead: a
 * queue must not fail. FIFO within a priority (the spill list is behind the ring and the
 * ring takes nothing new while the list is non-empty).
 *
 * `n` counts queued strands of every priority. It is written under the lock and read
 * without it (relaxed) only as a hint: an empty-looking queue is rechecked under the lock
 * by whoever must not miss work (the idle path's full barrier covers it, see sched_idle.c).
 */
#ifndef STRAND_SCHED_GLOBALQ_H
#define STRAND_SCHED_GLOBALQ_H

#include "sched_runq.h"

/* The order the scheduler scans priorities in: highest first, and, every 31st pick, lowest
 * first so that LOW cannot starve. */
static const int strand__prio_order[2][STRAND__PRIOS] = {
    {STRAND_PRIO_MAX, STRAND_PRIO_HIGH, STRAND_PRIO_NORMAL, STRAND_PRIO_LOW},
    {STRAND_PRIO_LOW, STRAND_PRIO_NORMAL, STRAND_PRIO_HIGH, STRAND_PRIO_MAX},
};

typedef struct strand__globalq_ring {
    struct strand **buf;
    size_t cap, head, count;
    struct strand *spill_head, *spill_tail;
} strand__globalq_ring;

typedef struct strand__globalq {
    pthread_mutex_t      lock;
    strand__globalq_ring ring[STRAND__PRIOS];
    atomic_uint          n;
} strand__globalq;

#define STRAND__GLOBALQ_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }

/* For a queue not statically initialised (tests); destroy frees the rings (not strands). */
void strand__globalq_init(strand__globalq *q);
void strand__globalq_destroy(strand__globalq *q);

/* Queue s at priority prio (passed, so that queueing never touches the control block). */
void strand__globalq_push(strand__globalq *q, struct strand *s, int prio);
/* Queue v[0..n) at priority prio under one lock, in order. */
void strand__globalq_push_many(strand__globalq *q, int prio, struct strand *const *v, unsigned n);

/* Take one strand to run and move a fair share of the rest into rq[prio] (at most
 * len/share + 1 strands in all, at most half a ring), highest priority first, or lowest
 * first with low_first. A priority other than NORMAL that got strands sets its bit in
 * *prio_mask. NULL if the queue is empty. rq is owned by the caller (it is the producer). */
struct strand *strand__globalq_take(strand__globalq *q, unsigned share, strand__runq *rq,
                                    unsigned *prio_mask, bool low_first);

static inline unsigned strand__globalq_len(strand__globalq *q)
{
    return atomic_load_explicit(&q->n, memory_order_relaxed);
}

#endif
