/*
 * timer.c - the one timer facility: every deadline in strand (sleeps, timeouts of blocking
 * calls, accept back-off) is a strand__timer in one of a few binary min-heaps.
 *
 * Layout: STRAND__TIMER_HEAPS heaps, each with its own spinlock and an atomic copy of its
 * earliest deadline (`top`, INT64_MAX when empty). A thread adds timers to "its" heap (a
 * heap number picked once per thread), so workers rarely contend; any thread may run any
 * heap's due timers. strand__timers_next() is the minimum of the tops: a handful of atomic
 * loads, no lock. Start and stop are O(log n): each timer knows its heap and index.
 *
 * A timer's life (t->state):
 *   IDLE -> PENDING (start, in a heap) -> RUNNING (popped by a runner, callback executing)
 *        -> FIRED (callback returned; the runner never touches t again)
 *   PENDING -> IDLE (stop, removed from the heap)
 * Start never reads the timer's old contents (it may be fresh stack memory), so a timer
 * must not be started again while it is pending. Only the owner starts or stops a timer;
 * runners only move PENDING -> RUNNING (under the heap lock) and RUNNING -> FIRED.
 * strand__timer_stop on a RUNNING timer waits for FIRED, so after stop returns the owner may
 * reuse the memory the timer and its callback touch.
 * Hence the rule for users: always call strand__timer_stop before the timer goes out of
 * scope, even when it has fired (the runner's final store may still be in flight).
 *
 * Invariants: a[i]->heap_index == i for every timer in a heap; heap_no is only written by
 * start, while the timer is not in any heap; top == a[0]->when (or INT64_MAX), written
 * under the heap lock.
 *
 * A passive facility: nothing here calls above it (no scheduler, no poller). A start says
 * whether it moved its heap's earliest deadline (the store of `top` is seq_cst and comes
 * before the return), and the scheduler decides whom that wakes (strand__sched_timer_start,
 * sched_idle.c, which states the ordering argument).
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>

#define STRAND__TIMER_HEAPS 8

enum { T_IDLE = 0, T_PENDING, T_RUNNING, T_FIRED };

typedef struct timer_heap {
    strand__spinlock  lock;
    int32_t           n, cap;
    strand__timer   **a;
    _Atomic int64_t   top;
} __attribute__((aligned(STRAND__CACHELINE))) timer_heap;

static timer_heap heaps[STRAND__TIMER_HEAPS] = {
    [0 ... STRAND__TIMER_HEAPS - 1] = { .top = INT64_MAX },
};
static atomic_uint next_heap_no;
static _Thread_local int my_heap_no = -1;

/* Not inlined: a strand may move between threads, so the TLS address is recomputed. */
static STRAND__NOINLINE int heap_for_thread(void)
{
    if (my_heap_no < 0)
        my_heap_no = (int)(atomic_fetch_add_explicit(&next_heap_no, 1, memory_order_relaxed) %
                           STRAND__TIMER_HEAPS);
    return my_heap_no;
}

/* ------------------------------------------------------------------ heap primitives */

static void heap_set(timer_heap *h, int32_t i, strand__timer *t)
{
    h->a[i] = t;
    t->heap_index = i;
}

static void sift_up(timer_heap *h, int32_t i)
{
    strand__timer *t = h->a[i];
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (h->a[p]->when <= t->when)
            break;
        heap_set(h, i, h->a[p]);
        i = p;
    }
    heap_set(h, i, t);
}

static void sift_down(timer_heap *h, int32_t i)
{
    strand__timer *t = h->a[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1]->when < h->a[c]->when)
            c++;
        if (t->when <= h->a[c]->when)
            break;
        heap_set(h, i, h->a[c]);
        i = c;
    }
    heap_set(h, i, t);
}

static void heap_publish_top(timer_heap *h)
{
    atomic_store_explicit(&h->top, h->n > 0 ? h->a[0]->when : INT64_MAX, memory_order_seq_cst);
}

/* Remove the element at i; the caller holds the lock. */
static void heap_remove_at(timer_heap *h, int32_t i)
{
    int32_t last = --h->n;
    if (i != last) {
        heap_set(h, i, h->a[last]);
        if (i > 0 && h->a[(i - 1) / 2]->when > h->a[i]->when)
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    h->a[last] = NULL;
}

static bool heap_grow(timer_heap *h)
{
    int32_t cap = h->cap ? h->cap * 2 : 256;
    strand__timer **a = realloc(h->a, (size_t)cap * sizeof *a);
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
    int no = heap_for_thread();
    timer_heap *h = &heaps[no];
    strand__spin_lock(&h->lock);
    while (h->n == h->cap) {
        if (!heap_grow(h)) {
            /* Out of memory for one pointer: spin until a timer leaves. Never seen in
             * practice; better than silently never firing. */
            strand__spin_unlock(&h->lock);
            sched_yield();
            strand__spin_lock(&h->lock);
        }
    }
    t->heap_no = no;
    atomic_store_explicit(&t->state, T_PENDING, memory_order_relaxed);
    h->a[h->n] = t;
    sift_up(h, h->n++);
    bool earliest = (t->heap_index == 0);
    if (earliest)
        heap_publish_top(h);
    strand__spin_unlock(&h->lock);
    return earliest;
}

bool strand__timer_stop(strand__timer *t)
{
    int st = atomic_load_explicit(&t->state, memory_order_acquire);
    if (st == T_PENDING) {
        timer_heap *h = &heaps[t->heap_no];
        strand__spin_lock(&h->lock);
        st = atomic_load_explicit(&t->state, memory_order_acquire);
        if (st == T_PENDING) {
            bool was_top = (t->heap_index == 0);
            heap_remove_at(h, t->heap_index);
            atomic_store_explicit(&t->state, T_IDLE, memory_order_relaxed);
            if (was_top)
                heap_publish_top(h);
            strand__spin_unlock(&h->lock);
            return true;
        }
        strand__spin_unlock(&h->lock);
    }
    /* RUNNING: the callback touches memory the caller is about to reuse; wait it out.
     * Callbacks are a claim and a wake: a few hundred nanoseconds. */
    unsigned spins = 0;
    while (atomic_load_explicit(&t->state, memory_order_acquire) == T_RUNNING) {
        if (++spins < 64)
            strand__cpu_relax();
        else
            sched_yield();
    }
    return false;
}

/* Run every due timer of one heap. */
static void heap_run(timer_heap *h, int64_t now)
{
    if (atomic_load_explicit(&h->top, memory_order_acquire) > now)
        return;
    strand__spin_lock(&h->lock);
    while (h->n > 0 && h->a[0]->when <= now) {
        strand__timer *t = h->a[0];
        heap_remove_at(h, 0);
        atomic_store_explicit(&t->state, T_RUNNING, memory_order_relaxed);
        heap_publish_top(h);
        strand__spin_unlock(&h->lock);
        t->fn(t);
        /* release: everything the callback did happens-before the owner's stop returns */
        atomic_store_explicit(&t->state, T_FIRED, memory_order_release);
        strand__spin_lock(&h->lock);
    }
    strand__spin_unlock(&h->lock);
}

int64_t strand__timers_next(void)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < STRAND__TIMER_HEAPS; i++) {
        int64_t w = atomic_load_explicit(&heaps[i].top, memory_order_seq_cst);
        if (w < best)
            best = w;
    }
    return best == INT64_MAX ? -1 : best;
}

int64_t strand__timers_run(int64_t now)
{
    /* Start at this thread's heap so concurrent runners tend to take different locks. */
    int first = heap_for_thread();
    for (int k = 0; k < STRAND__TIMER_HEAPS; k++)
        heap_run(&heaps[(first + k) % STRAND__TIMER_HEAPS], now);
    return strand__timers_next();
}
