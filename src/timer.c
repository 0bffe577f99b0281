/*
 * timer.c - the one timer facility: every deadline in strand (sleeps, timeouts of blocking
 * calls, accept back-off) is a strand__timer in one of the per-thread 4-ary min-heaps.
 *
 * Layout: each thread that starts a timer gets a heap of its own (up to TIMER_HEAPS; more
 * threads share them round-robin), with its own spinlock and an atomic copy of its
 * earliest deadline (`top`, INT64_MAX when empty). Only that thread starts timers there,
 * so the lock is uncontended unless a runner on another worker runs its due timers (any
 * thread may run any heap's). strand__timers_next() is the minimum of the tops in use: one
 * atomic load per heap, no lock, no scan of timers.
 *
 * The heap holds entries {when, slot} by value (a 4-ary heap, as Go's: half the depth of a
 * binary one, and the four children of a node share a cache line). A slot is heap-owned
 * memory (a per-heap pool, never freed) standing for one start of one timer; the timer
 * (on its owner's stack, usually) points at its slot and remembers the slot's generation.
 * The heap never points at the timer except through a PENDING or RUNNING slot, so the
 * owner may reuse the timer's memory as soon as stop returns.
 *
 * A slot's `word` is gen << 2 | state:
 *   FREE -> PENDING (start, owner, under the lock) -> RUNNING (a runner's CAS, under the
 *   lock) -> FREE with gen + 1 (the runner, after the callback returned)
 *   PENDING -> CANCELLED (stop: one CAS, any thread, no lock) -> FREE with gen + 1 (lazily:
 *   whoever pops the entry, under the lock)
 * A stop that finds another generation knows its start is over (fired, or cancelled and
 * swept). Cancelled entries are dropped when they reach the top, or all at once when they
 * outnumber the live ones (compaction at a start: O(n) for n/2 stops, so O(1) each); so
 * start is O(log n) and stop O(1) at any size. A stop of its heap's earliest timer sweeps
 * the top itself when it can take the lock without waiting, so `top` stays exact in the
 * common case; otherwise it may name a cancelled deadline until the next sweep - earlier
 * than any live one, never later, so a worker sleeping until it only wakes early.
 *
 * Rules for users: a timer must not be started again while pending; call
 * strand__timer_stop before the timer goes out of scope, even when it has fired (a runner
 * may still be finishing its callback: stop waits for that).
 *
 * Invariants: slot->h is the heap the slot lives in; a PENDING or RUNNING slot's t is the
 * timer it was started for; top == a[0].when (or INT64_MAX) whenever the lock is free, up
 * to cancellations after the holder's last sweep.
 *
 * A passive facility: nothing here calls above it (no scheduler, no poller). A start says
 * whether it moved its heap's earliest deadline (the store of `top` is seq_cst and comes
 * before the return), and the scheduler decides whom that wakes (strand__sched_timer_start,
 * sched_idle.c, which states the ordering argument).
 */
#include "internal.h"

#include <stdlib.h>
#include <time.h>

#define TIMER_HEAPS 64
#define SLOT_CHUNK  256

enum { S_FREE = 0, S_PENDING, S_RUNNING, S_CANCELLED };

struct timer_heap;

typedef struct strand__tslot {
    atomic_uint            word;  /* gen << 2 | state */
    strand__timer         *t;
    struct timer_heap     *h;
    struct strand__tslot  *next_free;
} tslot;

typedef struct {
    int64_t when;
    tslot  *slot;
} entry;

typedef struct timer_heap {
    strand__spinlock lock;
    int32_t          n, cap;
    entry           *a;
    tslot           *free_slots;
    atomic_int       ncancel;   /* CANCELLED entries still in a[] */
    _Atomic int64_t  top;
} __attribute__((aligned(STRAND__CACHELINE))) timer_heap;

static timer_heap heaps[TIMER_HEAPS] = {
    [0 ... TIMER_HEAPS - 1] = { .top = INT64_MAX },
};
static atomic_uint next_heap_no;   /* heaps handed out so far (may exceed TIMER_HEAPS) */
static _Thread_local int my_heap_no = -1;

/* Not inlined: a strand may move between threads, so the TLS address is recomputed. */
static STRAND__NOINLINE int heap_for_thread(void)
{
    if (my_heap_no < 0)
        my_heap_no = (int)(atomic_fetch_add_explicit(&next_heap_no, 1, memory_order_relaxed) %
                           TIMER_HEAPS);
    return my_heap_no;
}

static int heaps_in_use(void)
{
    unsigned n = atomic_load_explicit(&next_heap_no, memory_order_relaxed);
    return n < TIMER_HEAPS ? (int)n : TIMER_HEAPS;
}

static int64_t mono_ns(void) /* strand_now's clock; time.c is a layer above */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline unsigned word_of(unsigned gen, unsigned state)
{
    return gen << 2 | state;
}

/* ------------------------------------------------------------------ slots (lock held) */

static tslot *slot_get(timer_heap *h)
{
    if (h->free_slots == NULL) {
        tslot *c = calloc(SLOT_CHUNK, sizeof *c);
        if (c == NULL)
            return NULL;
        for (int i = 0; i < SLOT_CHUNK; i++) {
            c[i].h = h;
            c[i].next_free = h->free_slots;
            h->free_slots = &c[i];
        }
    }
    tslot *s = h->free_slots;
    h->free_slots = s->next_free;
    return s;
}

/* Back to the pool with the next generation: a late stop of the old start sees that. */
static void slot_put(timer_heap *h, tslot *s, unsigned gen)
{
    /* release: a stop that sees the new generation sees the callback's effects */
    atomic_store_explicit(&s->word, word_of(gen + 1, S_FREE), memory_order_release);
    s->next_free = h->free_slots;
    h->free_slots = s;
}

/* ------------------------------------------------------------------ 4-ary heap */

static void sift_up(timer_heap *h, int32_t i)
{
    entry e = h->a[i];
    while (i > 0) {
        int32_t p = (i - 1) / 4;
        if (h->a[p].when <= e.when)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = e;
}

static void sift_down(timer_heap *h, int32_t i)
{
    entry e = h->a[i];
    for (;;) {
        int32_t c = 4 * i + 1;
        if (c >= h->n)
            break;
        int32_t best = c, end = c + 4 < h->n ? c + 4 : h->n;
        for (int32_t k = c + 1; k < end; k++) {
            if (h->a[k].when < h->a[best].when)
                best = k;
        }
        if (e.when <= h->a[best].when)
            break;
        h->a[i] = h->a[best];
        i = best;
    }
    h->a[i] = e;
}

static void pop_top(timer_heap *h)
{
    h->a[0] = h->a[--h->n];
    if (h->n > 0)
        sift_down(h, 0);
}

static bool is_cancelled(const tslot *s)
{
    return (atomic_load_explicit(&s->word, memory_order_acquire) & 3) == S_CANCELLED;
}

/* More cancelled entries than live ones: drop them all and rebuild (Floyd, O(n)). */
static void compact(timer_heap *h)
{
    int32_t m = 0;
    for (int32_t i = 0; i < h->n; i++) {
        tslot *s = h->a[i].slot;
        if (is_cancelled(s)) {
            slot_put(h, s, atomic_load_explicit(&s->word, memory_order_relaxed) >> 2);
            atomic_fetch_sub_explicit(&h->ncancel, 1, memory_order_relaxed);
        } else {
            h->a[m++] = h->a[i];
        }
    }
    h->n = m;
    for (int32_t i = m / 4; i >= 0; i--)
        if (i < m)
            sift_down(h, i);
}

/* Drop cancelled entries from the top (all of them, if they are the majority), then
 * publish the earliest deadline. */
static void sweep_and_publish(timer_heap *h)
{
    if (h->n >= 64 && atomic_load_explicit(&h->ncancel, memory_order_relaxed) > h->n / 2)
        compact(h); /* cheaper than popping them one by one when they reach the top */
    while (h->n > 0 && is_cancelled(h->a[0].slot)) {
        tslot *s = h->a[0].slot;
        pop_top(h);
        slot_put(h, s, atomic_load_explicit(&s->word, memory_order_relaxed) >> 2);
        atomic_fetch_sub_explicit(&h->ncancel, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&h->top, h->n > 0 ? h->a[0].when : INT64_MAX, memory_order_seq_cst);
}

static bool heap_grow(timer_heap *h)
{
    int32_t cap = h->cap ? h->cap * 2 : 256;
    entry *a = realloc(h->a, (size_t)cap * sizeof *a);
    if (a == NULL)
        return false;
    h->a = a;
    h->cap = cap;
    return true;
}

/* ------------------------------------------------------------------ the facility */

bool strand__timer_start(strand__timer *t, int64_t when, void (*fn)(strand__timer *), void *arg)
{
    /* t may be uninitialised stack memory: nothing of its old contents is read. */
    t->when = when < 0 ? INT64_MAX : when;
    t->fn = fn;
    t->arg = arg;
    timer_heap *h = &heaps[heap_for_thread()];
    strand__spin_lock(&h->lock);
    bool moved = false; /* a[0] changed other than by this start */
    if (h->n >= 64 && atomic_load_explicit(&h->ncancel, memory_order_relaxed) > h->n / 2) {
        compact(h);
        moved = true;
    }
    tslot *s;
    while ((h->n == h->cap && !heap_grow(h)) || (s = slot_get(h)) == NULL) {
        /* Out of memory for one entry: wait until a timer leaves. Never seen in practice;
         * better than silently never firing. */
        strand__spin_unlock(&h->lock);
        strand__cpu_relax();
        strand__spin_lock(&h->lock);
    }
    unsigned gen = atomic_load_explicit(&s->word, memory_order_relaxed) >> 2;
    s->t = t;
    t->slot = s;
    t->gen = gen;
    /* relaxed: a stop reads it through t, which the owner itself wrote */
    atomic_store_explicit(&s->word, word_of(gen, S_PENDING), memory_order_relaxed);
    h->a[h->n] = (entry){ t->when, s };
    sift_up(h, h->n++);
    bool earliest = h->a[0].slot == s;
    if (earliest || moved || is_cancelled(h->a[0].slot))
        sweep_and_publish(h);
    strand__spin_unlock(&h->lock);
    return earliest;
}

bool strand__timer_stop(strand__timer *t)
{
    tslot *s = t->slot;
    if (s == NULL)
        return false; /* never started */
    unsigned pending = word_of(t->gen, S_PENDING);
    unsigned w = pending;
    /* acquire (on failure): a FREE of a later generation carries the callback's effects */
    if (atomic_compare_exchange_strong_explicit(&s->word, &w, word_of(t->gen, S_CANCELLED),
                                                memory_order_acq_rel, memory_order_acquire)) {
        timer_heap *h = s->h;
        atomic_fetch_add_explicit(&h->ncancel, 1, memory_order_relaxed);
        /* Our deadline may be the heap's published earliest: sweep it now if the lock is
         * free (else the next sweep will; `top` is only early meanwhile). */
        if (atomic_load_explicit(&h->top, memory_order_relaxed) == t->when &&
            strand__spin_trylock(&h->lock)) {
            sweep_and_publish(h);
            strand__spin_unlock(&h->lock);
        }
        return true;
    }
    /* RUNNING: the callback touches memory the caller is about to reuse; wait it out.
     * Callbacks are a claim and a wake: a few hundred nanoseconds, unless the runner's
     * thread was preempted - then sleep in short steps rather than spin a time slice. */
    unsigned running = word_of(t->gen, S_RUNNING);
    for (unsigned spins = 0; atomic_load_explicit(&s->word, memory_order_acquire) == running;
         spins++) {
        if (spins < 1000)
            strand__cpu_relax();
        else
            strand__futex_wait(&s->word, running, mono_ns() + 50000);
    }
    return false;
}

/* Run every due timer of one heap. */
static void heap_run(timer_heap *h, int64_t now)
{
    if (atomic_load_explicit(&h->top, memory_order_acquire) > now)
        return;
    strand__spin_lock(&h->lock);
    while (h->n > 0 && h->a[0].when <= now) {
        tslot *s = h->a[0].slot;
        pop_top(h);
        unsigned w = atomic_load_explicit(&s->word, memory_order_relaxed);
        unsigned gen = w >> 2;
        /* acquire: the owner's start (t's fields) happens before the callback */
        if ((w & 3) != S_PENDING ||
            !atomic_compare_exchange_strong_explicit(&s->word, &w, word_of(gen, S_RUNNING),
                                                     memory_order_acquire, memory_order_relaxed)) {
            slot_put(h, s, gen); /* cancelled: its stop saw PENDING, nothing else to do */
            atomic_fetch_sub_explicit(&h->ncancel, 1, memory_order_relaxed);
            continue;
        }
        strand__timer *t = s->t;
        sweep_and_publish(h);
        strand__spin_unlock(&h->lock);
        t->fn(t);
        strand__spin_lock(&h->lock);
        slot_put(h, s, gen); /* FREE, next generation: the owner's stop may return */
    }
    sweep_and_publish(h);
    strand__spin_unlock(&h->lock);
}

int64_t strand__timers_next(void)
{
    int64_t best = INT64_MAX;
    int n = heaps_in_use();
    for (int i = 0; i < n; i++) {
        int64_t w = atomic_load_explicit(&heaps[i].top, memory_order_seq_cst);
        if (w < best)
            best = w;
    }
    return best == INT64_MAX ? -1 : best;
}

int64_t strand__timers_run(int64_t now)
{
    /* Start at this thread's heap so concurrent runners tend to take different locks. */
    int first = heap_for_thread(), n = heaps_in_use();
    for (int k = 0; k < n; k++)
        heap_run(&heaps[(first + k) % n], now);
    return strand__timers_next();
}
