/*
 * sched_switch.c - switching: the thread-local state (which worker, which strand), the
 * switch from one strand to the next, finish_switch, and the sanitizers' fiber
 * announcements around every switch. Also strand_yield, which is a switch and nothing else
 * (strand_maybe_yield, which the time slice drives, is in sched_monitor.c).
 *
 * A strand that yields, parks or exits picks the next strand itself and switches to it
 * directly (one switch, no detour through the worker's own stack); when it finds nothing it
 * switches to the worker's idle loop (sched_ctx). What the old strand asked for (requeue it,
 * complete its park, free its stack) is recorded in w->prev and done by whatever runs next
 * on that worker (finish_switch), off the old strand's stack: until then another worker
 * must not see it, or two workers could run on one stack.
 *
 * Parking (internal.h, verify/park.pml): finish_switch completes PARKING -> PARKED with a
 * CAS; a waker that got there first (PARKING -> RUNNABLE) makes the CAS fail and the strand
 * is requeued here.
 *
 * Thread-local state is written by its own thread only: strand__tls_worker when a worker
 * thread starts or stops (or the host enters and leaves strand_run_until_idle),
 * strand__tls_current at every switch. w->current mirrors it for the watchdog and the dump
 * (relaxed).
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(STRAND_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

/* initial-exec: a direct %fs-relative access instead of a __tls_get_addr call (the
 * library is built position-independent, which would otherwise pick the general model). */
_Thread_local struct strand__worker *strand__tls_worker __attribute__((tls_model("initial-exec")));
_Thread_local struct strand *strand__tls_current __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ thread-local state */

STRAND__NOINLINE struct strand *strand__current(void)
{
    return strand__tls_current;
}

STRAND__NOINLINE struct strand__worker *strand__worker_self(void)
{
    return strand__tls_worker;
}

STRAND__NOINLINE strand__caches *strand__worker_caches(void)
{
    struct strand__worker *w = strand__tls_worker;
    return w ? &w->caches : NULL;
}

static STRAND__NOINLINE void set_current(struct strand__worker *w, struct strand *s)
{
    strand__tls_current = s;
    atomic_store_explicit(&w->current, s, memory_order_relaxed);
}

STRAND__NOINLINE void strand__sched_set_worker(struct strand__worker *w)
{
    strand__tls_worker = w;
}

/* The calling thread's own stack (for ASan) and fiber (for TSan): the idle context. */
void strand__sched_g0_bounds(struct strand__worker *w)
{
#if defined(STRAND_ASAN)
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &w->g0_lo, &w->g0_size);
        pthread_attr_destroy(&a);
    }
#endif
#if defined(STRAND_TSAN)
    w->g0_fiber = __tsan_get_current_fiber();
#endif
    (void)w;
}

/* ------------------------------------------------------------------ the switch */

static inline void do_switch(void **fake_save, strand__ctx *from, strand__ctx *to,
                             const void *to_lo, size_t to_size, void *to_fiber)
{
#if defined(STRAND_ASAN)
    __sanitizer_start_switch_fiber(fake_save, to_lo, to_size);
#else
    (void)fake_save;
    (void)to_lo;
    (void)to_size;
#endif
#if defined(STRAND_TSAN)
    __tsan_switch_to_fiber(to_fiber, 0);
#else
    (void)to_fiber;
#endif
    strand__ctx_switch(from, to);
#if defined(STRAND_ASAN)
    __sanitizer_finish_switch_fiber(fake_save ? *fake_save : NULL, NULL, NULL);
#endif
}

static void *fake_slot(struct strand *s)
{
#if defined(STRAND_ASAN)
    return &s->asan_fake_stack;
#else
    (void)s;
    return NULL;
#endif
}

static void *fiber_of(struct strand *s)
{
#if defined(STRAND_TSAN)
    return s->tsan_fiber;
#else
    (void)s;
    return NULL;
#endif
}

static void overflow_abort(struct strand *s)
{
    char msg[256];
    /* the same words as the guard report (signals.c), so one grep finds both */
    int n = snprintf(msg, sizeof msg,
                     "strand: stack overflow in strand %lld \"%s\": its stack of %zu bytes is "
                     "too small (found past its end at a switch or on release); raise "
                     "STRAND_STACK_SIZE or strand_attr.stack_size\n",
                     (long long)s->id, s->name, s->stack->size);
    (void)!write(2, msg, (size_t)n);
    abort();
}

/* A strand's first run: bind a stack from this worker's cache (its credit, reserved at
 * spawn, is spent) and place its first frame there. False only when mappings ran out and
 * the free stacks sit in other workers' caches: the strand is requeued on the global queue
 * (or its pinned inbox) and runs once one comes back. */
static STRAND__NOINLINE bool bind_stack(struct strand__worker *w, struct strand *s)
{
    strand__stack *st = strand__stack_get(0, &w->caches.stacks);
    if (STRAND__UNLIKELY(!st)) {
        strand__sched_push(NULL, s, false);
        return false;
    }
    /* relaxed: the fault handler reads it on this thread, after this store */
    atomic_store_explicit(&st->owner, s, memory_order_relaxed);
    s->stack = st;
    s->reserved_stack = 0;
    strand__ctx_place(&s->ctx, st->lo, strand__stack_usable(st));
#if defined(STRAND_TSAN)
    s->tsan_fiber = __tsan_create_fiber(0);
#endif
    return true;
}

/* An ended strand: its stack goes back to this worker's cache the moment it is off it (so
 * the next strand to start here reuses it warm), then its descriptor. Its id slot already
 * holds whatever a joiner still needs. */
static void release_strand(struct strand__worker *w, struct strand *s)
{
    strand__stack *st = s->stack;
    if (!strand__stack_check(st))
        overflow_abort(s);
#if defined(STRAND_TSAN)
    __tsan_destroy_fiber(s->tsan_fiber);
    s->tsan_fiber = NULL;
#endif
    atomic_store_explicit(&st->owner, NULL, memory_order_relaxed);
    s->stack = NULL;
    strand__stack_put(st, &w->caches.stacks);
    strand__desc_put(s, &w->caches.descs);
}

/* Do what the strand that switched away on this worker asked for. */
static void finish_switch(struct strand__worker *w)
{
    struct strand *p = w->prev;
    if (!p)
        return;
    w->prev = NULL;
    switch (w->prev_action) {
    case STRAND__PREV_YIELD:
        atomic_store_explicit(&p->state, STRAND__RUNNABLE, memory_order_relaxed);
        strand__sched_push(w, p, false);
        break;
    case STRAND__PREV_PARK: {
        int st = STRAND__PARKING;
        /* acq_rel: a waker that later moves it PARKED -> RUNNABLE and queues it must see
         * every write the strand made, its saved registers included. */
        if (atomic_compare_exchange_strong_explicit(&p->state, &st, STRAND__PARKED,
                                                    memory_order_acq_rel, memory_order_acquire))
            strand__worker_stat(w, STRAND__STAT_PARKS, 1);
        else
            strand__sched_push(w, p, false); /* woken before it was off its stack */
        break;
    }
    case STRAND__PREV_EXIT:
        release_strand(w, p);
        break;
    }
}

void strand__entry_finish(void)
{
#if defined(STRAND_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    finish_switch(sched_worker());
}

static void run_on(struct strand__worker *w, struct strand *s)
{
    atomic_store_explicit(&s->state, STRAND__RUNNING, memory_order_relaxed);
    s->worker = w;
    set_current(w, s);
    strand__worker_stat(w, STRAND__STAT_SWITCHES, 1);
}

/* From the idle loop (the worker's own stack) into a strand and back. */
void strand__sched_run_from_idle(struct strand__worker *w, struct strand *s)
{
    if (STRAND__UNLIKELY(!s->stack) && !bind_stack(w, s)) {
        sched_yield(); /* starved of stacks (see bind_stack): let their holders run */
        return;
    }
    run_on(w, s);
    do_switch(&w->g0_fake, &w->sched_ctx, &s->ctx, s->stack->lo,
              strand__stack_usable(s->stack), fiber_of(s));
    set_current(w, NULL);
    finish_switch(w);
}

/* Switch the current strand away; the worker does `action` (enum strand__prev) with it
 * afterwards. Returns when the strand runs again (perhaps on another worker). */
void strand__sched_switch_away(struct strand *self, int action)
{
    struct strand__worker *w = sched_worker();
    /* An unguarded stack: is the strand below its stack right now (its own frame address
     * says so for free), or was its canary overwritten by an excursion that came back? The
     * canary sits at the far end of the stack, on another page: it is prefetched here and
     * read after the run queue work below, which hides most of that cache and TLB miss. */
    const void *canary = NULL;
    strand__stack *st = self->stack;
    if (STRAND__UNLIKELY(st->guard == STRAND__GUARD_CANARY)) {
        if ((uintptr_t)__builtin_frame_address(0) < (uintptr_t)st->lo + 256)
            overflow_abort(self);
        canary = strand__stack_canary(st);
        __builtin_prefetch(canary);
    }
    /* A thread whose role moves (hand-off, sched_monitor.c) runs nothing more here: it goes
     * back to its own loop, which gives the role up or waits for it. */
    bool leaving = strand__sched_leaving(w);
    struct strand *next = w->host || leaving ? NULL : strand__sched_find_quick(w);
    if (canary && !strand__stack_check(st))
        overflow_abort(self);
    if (next && !next->stack && !bind_stack(w, next))
        next = NULL;
    if (!next && action == STRAND__PREV_YIELD && !w->host && !leaving) {
        /* nothing else to run here: carry on, but show the watchdog we are not stuck */
        strand__worker_stat(w, STRAND__STAT_YIELDS_IN_PLACE, 1);
        return;
    }
    w->prev = self;
    w->prev_action = action;
    void **fake = action == STRAND__PREV_EXIT ? NULL : fake_slot(self);
    if (next) {
        run_on(w, next);
        do_switch(fake, &self->ctx, &next->ctx, next->stack->lo,
                  strand__stack_usable(next->stack), fiber_of(next));
    } else {
        set_current(w, NULL);
        do_switch(fake, &self->ctx, &w->sched_ctx, w->g0_lo, w->g0_size, w->g0_fiber);
    }
    /* Resumed, perhaps on another worker. */
    finish_switch(sched_worker());
}

void strand__sched_exit(struct strand *self)
{
    strand__sched_switch_away(self, STRAND__PREV_EXIT);
    __builtin_unreachable();
}

/* ------------------------------------------------------------------ yield */

void strand_yield(void)
{
    struct strand *s = sched_current();
    if (!s) {
        sched_yield();
        return;
    }
    strand__sched_switch_away(s, STRAND__PREV_YIELD);
}
