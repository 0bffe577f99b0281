/*
 * sched_runq.h - the per-worker run queue: a fixed ring of strand pointers, one producer,
 * many consumers (as Go's runq). A data structure only: it knows nothing of workers,
 * priorities or waking, so tests/test_runq.c can drive it on its own.
 *
 * Ownership. Only the owning worker pushes (runq_put, at `tail`); the owner and thieves take
 * from `head` with a CAS (runq_get one, runq_grab the older half). `head` only grows, so a
 * CAS that succeeds proves nobody else took those slots; a slot is rewritten by the owner
 * only after `head` passed it (put checks t - h < size against an acquire load of head).
 * Indexes are free-running unsigned counters: t - h is the length even across wrap-around.
 */
#ifndef STRAND_SCHED_RUNQ_H
#define STRAND_SCHED_RUNQ_H

#include "internal.h"

#define STRAND__RUNQ_SIZE 256 /* a power of two */

typedef struct strand__runq {
    _Alignas(STRAND__CACHELINE) atomic_uint head; /* consumers, by CAS */
    _Alignas(STRAND__CACHELINE) atomic_uint tail; /* owner only */
    _Atomic(struct strand *) buf[STRAND__RUNQ_SIZE];
} strand__runq;

/* Owner only. false when full (the caller overflows to the global queue). */
static inline bool strand__runq_put(strand__runq *q, struct strand *s)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h >= STRAND__RUNQ_SIZE)
        return false;
    atomic_store_explicit(&q->buf[t % STRAND__RUNQ_SIZE], s, memory_order_relaxed);
    /* release: a consumer that sees the new tail sees the slot and the strand */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

/* Any thread: the oldest strand, or NULL when empty. */
static inline struct strand *strand__runq_get(strand__runq *q)
{
    for (;;) {
        unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (h == t)
            return NULL;
        struct strand *s = atomic_load_explicit(&q->buf[h % STRAND__RUNQ_SIZE],
                                                memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return s;
    }
}

/* Any thread: take the older half (rounded up) into out[STRAND__RUNQ_SIZE / 2]; how many. */
static inline unsigned strand__runq_grab(strand__runq *q, struct strand **out)
{
    for (;;) {
        unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);
        unsigned n = t - h;
        n -= n / 2;
        if (n == 0)
            return 0;
        if (n > STRAND__RUNQ_SIZE / 2)
            continue; /* head and tail read at different times */
        for (unsigned i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&q->buf[(h + i) % STRAND__RUNQ_SIZE],
                                          memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + n, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return n;
    }
}

static inline bool strand__runq_empty(strand__runq *q)
{
    return atomic_load_explicit(&q->head, memory_order_acquire) ==
           atomic_load_explicit(&q->tail, memory_order_acquire);
}

/* Deterministic mode: swap a strand picked by *rng (xorshift) to the head. Only with one
 * worker, so no thief races the swap; its own generator, because the stealing one advances
 * a timing-dependent number of times. */
static inline void strand__runq_shuffle(strand__runq *q, uint64_t *rng)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h < 2)
        return;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    unsigned k = h + (unsigned)(*rng % (t - h));
    struct strand *a = atomic_load_explicit(&q->buf[h % STRAND__RUNQ_SIZE], memory_order_relaxed);
    struct strand *b = atomic_load_explicit(&q->buf[k % STRAND__RUNQ_SIZE], memory_order_relaxed);
    atomic_store_explicit(&q->buf[h % STRAND__RUNQ_SIZE], b, memory_order_relaxed);
    atomic_store_explicit(&q->buf[k % STRAND__RUNQ_SIZE], a, memory_order_relaxed);
}

/* ------------------------------------------------------------------ the spawn deque
 *
 * Children spawned by a running strand, work-first (the Cilk / Chase-Lev discipline): the
 * owner pushes and pops at `bottom` (newest first: running the child the parent just made
 * keeps a spawn tree depth-first, so a worker's live stacks are bounded by the depth of the
 * tree instead of its width), thieves take from `top` (oldest first: the biggest subtrees).
 * Fixed size, no growth: a full deque makes the caller use the ring.
 *
 * Ordering, as in Le, Pop, Cohen and Zappa Nardelli's C11 Chase-Lev: the owner's pop stores
 * bottom - 1, then a seq_cst fence, then reads top; a thief reads top, a seq_cst fence, then
 * bottom. Of an owner and a thief both reaching for the last entry, at least one sees the
 * other's write, and the CAS on `top` picks the one that gets it. A slot is rewritten only by
 * push, which checks bottom - top < size against an acquire load of top, so a thief that read
 * a slot before its CAS succeeded read the entry that CAS claims. Indexes are free-running
 * unsigned counters, compared through their signed difference. */

#define STRAND__DEQUE_SIZE 256 /* a power of two */

typedef struct strand__deque {
    _Alignas(STRAND__CACHELINE) atomic_uint top;    /* thieves, by CAS (and the owner's last) */
    _Alignas(STRAND__CACHELINE) atomic_uint bottom; /* owner only */
    _Atomic(struct strand *) buf[STRAND__DEQUE_SIZE];
} strand__deque;

/* Owner only. false when full. */
static inline bool strand__deque_push(strand__deque *d, struct strand *s)
{
    unsigned b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&d->top, memory_order_acquire);
    if (b - t >= STRAND__DEQUE_SIZE)
        return false;
    atomic_store_explicit(&d->buf[b % STRAND__DEQUE_SIZE], s, memory_order_relaxed);
    /* release: a thief that sees the new bottom sees the slot and the strand */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return true;
}

/* Owner only: the newest entry, or NULL. */
static inline struct strand *strand__deque_pop(strand__deque *d)
{
    unsigned b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&d->top, memory_order_relaxed);
    if ((int)(b - t) <= 0)
        return NULL; /* a cheap early out: only the owner makes it non-empty */
    b--;
    atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    t = atomic_load_explicit(&d->top, memory_order_relaxed);
    if ((int)(b - t) < 0) { /* a thief took the last one */
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
        return NULL;
    }
    struct strand *s = atomic_load_explicit(&d->buf[b % STRAND__DEQUE_SIZE], memory_order_relaxed);
    if (b != t)
        return s;
    /* The last entry: race the thieves for it. */
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        s = NULL;
    atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    return s;
}

/* Any thread but the owner: the oldest entry, or NULL (empty, or lost a race). */
static inline struct strand *strand__deque_steal(strand__deque *d)
{
    unsigned t = atomic_load_explicit(&d->top, memory_order_acquire);
    atomic_thread_fence(memory_order_seq_cst);
    unsigned b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    if ((int)(b - t) <= 0)
        return NULL;
    struct strand *s = atomic_load_explicit(&d->buf[t % STRAND__DEQUE_SIZE], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return NULL;
    return s;
}

static inline bool strand__deque_empty(strand__deque *d)
{
    unsigned t = atomic_load_explicit(&d->top, memory_order_acquire);
    unsigned b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    return (int)(b - t) <= 0;
}

#endif
