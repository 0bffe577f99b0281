/*
 * sched_monitor.c - the monitor thread (Go's sysmon): hand-off of a stuck worker's role and
 * queue to a spare thread, the time slice behind strand_maybe_yield(), and the timers and
 * the network served while every worker is busy.
 *
 * The model. A configured worker (strand__workers[0 .. nworkers)) is a role, Go's P: its
 * rings, run-next, pinned inbox, caches and counters. Unlike Go, each role keeps its own
 * thread for good, because a thread stuck in a foreign call cannot be told to let go of its
 * role's producer-side structures (its rings are single-producer): it may come back and push
 * to them at any instant without a word to anyone. So a hand-off does not move the struct;
 * it moves the role's *work*. A spare is a struct of its own (strand__workers[nworkers ..
 * cap), with a detached thread started on demand) that stands in for the stuck worker: it
 * empties the worker's rings and run-next into its own (the consumer side, which any thread
 * may take from), runs the worker's pinned strands from its inbox, and is woken for them. The
 * stuck strand keeps its thread. When that thread comes back to a scheduling point it runs
 * nothing more (`leave`, checked at every switch): it asks for its role back and waits
 * until the stand-in has moved its queue to the global queue and let go, so there is again
 * one thread running strands per configured worker. A stand-in that gets stuck itself
 * gives the role straight back to a waiting worker, or on to another spare, and keeps only
 * its stuck strand ("orphaned": charge NULL).
 *
 * Detection. Every `period` the monitor samples each running struct's current strand and
 * switch counter. Unchanged since `since` means one strand has held that thread since then
 * (a system call, a foreign library, a loop: it cannot tell which, and need not). After
 * slice_ms it sets the struct's `preempt` flag (strand_maybe_yield yields); after
 * handoff_ms, and at least one tick after the yield request, it hands off.
 *
 * Sleeping. The monitor sleeps in the kernel, with no timeout, while every running struct
 * is on the idle list (nidle == nrunning): a worker leaving the idle list kicks it
 * (sched_idle.c). Dekker with seq_cst on both sides: the monitor stores monitor_asleep and
 * then reads nidle; a waking worker decrements nidle and then reads monitor_asleep.
 *
 * Locking and ownership. role_lock (a mutex: hand-offs are rare) orders every change of
 * `standin`, `charge`, `role_wait` and a spare's `spare_state`; the flags read without it
 * (`leave`, `standin`, `charge`) are requests or hints re-read under it. The samples, the
 * tick state and the creation of spare threads belong to the monitor thread; a spare's
 * rings and caches to its own thread, as any worker's. `preempt` is set by the monitor
 * (exchange 0 -> 1) and cleared by whoever exchanges it back first (the strand yielding, or
 * the monitor when the strand moved on); strand__preempt_any counts the set flags, plus one
 * for the count-based STRAND_YIELD_INTERVAL, so strand_maybe_yield's common case is one
 * relaxed load of one global.
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A parked spare's thread ends after this long without a role. */
#define SPARE_IDLE_NS (1000LL * 1000000)

typedef struct sample {
    struct strand *s;
    uint64_t       switches;
    int64_t        since;      /* when s was first seen holding the thread */
    int64_t        asked_at;   /* preempt requested at this tick (0: not yet) */
    bool           handed;     /* handed off for this hold */
} sample;

atomic_bool strand__monitor_asleep;
atomic_uint strand__preempt_any;

static atomic_bool handoff_on; /* strand__handoff_enabled(): read from any thread */

static struct {
    pthread_t       thread;
    bool            running;
    atomic_bool     stop;
    atomic_uint     word;        /* futex: kicks and stop */
    int64_t         period;      /* ns */
    int64_t         slice;       /* ns, 0 = off */
    int64_t         handoff;     /* ns, 0 = off */
    sample         *samples;     /* [strand__nthreads_cap], the monitor's */
    atomic_int      nbusy_spares;   /* spares that run strands (ACTIVE) */
    atomic_int      nspare_threads; /* spare threads alive */
    int             interval_bias;  /* 1 in strand__preempt_any for the count mode */
} mon;

static pthread_mutex_t role_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counters of strand_stats (relaxed RMWs: hand-offs are rare, and no reader needs more). */
static atomic_ullong c_handoffs, c_handoff_strands, c_handoff_waits, c_slice_requests,
    c_slice_yields, c_spares_started, c_spares_reaped, c_ticks;

static void count(atomic_ullong *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ------------------------------------------------------------------ small queries */

int strand__sched_nrunning(void)
{
    return strand__nworkers + atomic_load_explicit(&mon.nbusy_spares, memory_order_relaxed);
}

struct strand__worker *strand__sched_role_thread(struct strand__worker *w)
{
    struct strand__worker *sp = atomic_load_explicit(&w->standin, memory_order_acquire);
    return sp ? sp : w;
}

bool strand__handoff_enabled(void)
{
    return atomic_load_explicit(&handoff_on, memory_order_relaxed);
}

/* ------------------------------------------------------------------ moving queues */

/* Take every strand queued in src's rings and run-next into w's (w's own thread). */
static uint64_t take_all(struct strand__worker *w, struct strand__worker *src)
{
    struct strand *batch[STRAND__RUNQ_SIZE / 2];
    uint64_t moved = 0;
    struct strand *s = atomic_exchange_explicit(&src->runnext, NULL, memory_order_acq_rel);
    if (s) {
        strand__sched_push(w, s, false);
        moved++;
    }
    for (int p = 0; p < STRAND__PRIOS; p++) {
        unsigned got;
        while ((got = strand__runq_grab(&src->q[p], batch)) != 0) {
            for (unsigned j = 0; j < got; j++)
                strand__sched_push(w, batch[j], false);
            moved += got;
        }
    }
    if (moved)
        strand__wakep(); /* more than this thread can run at once, perhaps */
    return moved;
}

/* Everything queued on w (its own thread) to the global queue, for the role's thread. */
static void release_queue(struct strand__worker *w)
{
    struct strand *batch[STRAND__RUNQ_SIZE / 2];
    bool any = false;
    struct strand *s = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
    if (s) {
        strand__globalq_push(&strand__sched.gq, s, s->prio);
        any = true;
    }
    for (int p = 0; p < STRAND__PRIOS; p++) {
        unsigned got;
        while ((got = strand__runq_grab(&w->q[p], batch)) != 0) {
            strand__globalq_push_many(&strand__sched.gq, p, batch, got);
            any = true;
        }
    }
    w->prio_mask = 0;
    if (any)
        strand__wakep();
}

/* Strands left in the rings of orphaned spares (stuck with their last strand): w takes them. */
static void take_orphans(struct strand__worker *w)
{
    int n = strand__sched_nthreads();
    for (int i = strand__nworkers; i < n; i++) {
        struct strand__worker *sp = strand__workers[i];
        if (atomic_load_explicit(&sp->spare_state, memory_order_acquire) ==
                STRAND__SPARE_ACTIVE &&
            !atomic_load_explicit(&sp->charge, memory_order_acquire))
            take_all(w, sp);
    }
}

struct strand *strand__sched_standin_pop(struct strand__worker *w)
{
    struct strand__worker *c = atomic_load_explicit(&w->charge, memory_order_acquire);
    return c ? strand__sched_inbox_pop(c) : NULL;
}

/* ------------------------------------------------------------------ the role comes back */

/* Under role_lock: sp lets go of c's role; c's thread (waiting for it) resumes. */
static void give_back_locked(struct strand__worker *c, struct strand__worker *sp)
{
    atomic_store_explicit(&sp->charge, NULL, memory_order_release);
    atomic_store_explicit(&c->standin, NULL, memory_order_release);
    atomic_store_explicit(&c->stuck_since, 0, memory_order_relaxed);
    /* release: the waiter that sees the new word sees standin NULL */
    atomic_fetch_add_explicit(&c->role_word, 1, memory_order_release);
    strand__futex_wake(&c->role_word, 1);
}

/* A configured worker's thread came back with `leave` set: wait for its role. */
static void worker_on_leave(struct strand__worker *w)
{
    atomic_store_explicit(&w->leave, false, memory_order_relaxed);
    pthread_mutex_lock(&role_lock);
    struct strand__worker *sp = atomic_load_explicit(&w->standin, memory_order_relaxed);
    if (!sp) {
        pthread_mutex_unlock(&role_lock);
        return;
    }
    w->role_wait = true;
    atomic_store_explicit(&sp->leave, true, memory_order_seq_cst);
    pthread_mutex_unlock(&role_lock);
    strand__sched_wake_recheck(sp);
    for (;;) {
        unsigned seq = atomic_load_explicit(&w->role_word, memory_order_acquire);
        if (!atomic_load_explicit(&w->standin, memory_order_acquire) || strand__sched_stopping())
            break;
        strand__futex_wait(&w->role_word, seq, strand_now() + 100 * 1000000LL);
    }
    pthread_mutex_lock(&role_lock);
    w->role_wait = false;
    pthread_mutex_unlock(&role_lock);
    take_orphans(w);
}

/* A spare's thread came back with `leave` set: true if it still holds a role. */
static bool spare_on_leave(struct strand__worker *sp)
{
    atomic_store_explicit(&sp->leave, false, memory_order_relaxed);
    pthread_mutex_lock(&role_lock);
    struct strand__worker *c = atomic_load_explicit(&sp->charge, memory_order_relaxed);
    bool keep = c != NULL;
    if (c && c->role_wait && atomic_load_explicit(&c->standin, memory_order_relaxed) == sp) {
        give_back_locked(c, sp);
        keep = false;
    }
    pthread_mutex_unlock(&role_lock);
    return keep;
}

bool strand__sched_on_leave(struct strand__worker *w)
{
    if (!w->spare) {
        worker_on_leave(w);
        return true;
    }
    return spare_on_leave(w);
}

/* ------------------------------------------------------------------ spare threads */

/* A parked spare waits for a role; false when it should end (idle too long, or stop). */
static bool spare_park(struct strand__worker *sp)
{
    /* Its cached stacks are of no use to anyone while it waits: back to the pool. */
    strand__stack_cache_drain(&sp->caches.stacks);
    pthread_mutex_lock(&role_lock);
    atomic_store_explicit(&sp->spare_state, STRAND__SPARE_PARKED, memory_order_release);
    atomic_fetch_sub_explicit(&mon.nbusy_spares, 1, memory_order_relaxed);
    pthread_mutex_unlock(&role_lock);
    int64_t until = strand_now() + SPARE_IDLE_NS;
    for (;;) {
        unsigned seq = atomic_load_explicit(&sp->role_word, memory_order_acquire);
        if (atomic_load_explicit(&sp->spare_state, memory_order_acquire) == STRAND__SPARE_ACTIVE)
            return true;
        if (strand__sched_stopping() || atomic_load_explicit(&mon.stop, memory_order_acquire))
            break;
        if (strand__futex_wait(&sp->role_word, seq, until) == -ETIMEDOUT &&
            strand_now() >= until)
            break;
    }
    pthread_mutex_lock(&role_lock);
    bool granted = atomic_load_explicit(&sp->spare_state, memory_order_relaxed) ==
                   STRAND__SPARE_ACTIVE;
    if (!granted) /* no longer PARKED: the monitor grants it nothing now */
        atomic_store_explicit(&sp->spare_state, STRAND__SPARE_EXITING, memory_order_relaxed);
    pthread_mutex_unlock(&role_lock);
    return granted && !strand__sched_stopping();
}

static void *spare_main(void *arg)
{
    struct strand__worker *sp = arg;
    strand__sched_thread_enter(sp);
    for (;;) {
        /* ACTIVE: the monitor set charge (and take_from) before it woke or created us. */
        struct strand__worker *old = atomic_exchange_explicit(&sp->take_from, NULL,
                                                              memory_order_acq_rel);
        struct strand__worker *c = atomic_load_explicit(&sp->charge, memory_order_acquire);
        uint64_t moved = 0;
        if (old)
            moved += take_all(sp, old);
        if (c)
            moved += take_all(sp, c);
        count(&c_handoff_strands, moved);
        strand__sched_run_loop(sp);
        release_queue(sp);
        if (strand__sched_stopping())
            break;
        if (!spare_park(sp))
            break;
    }
    /* Caches back to the pool: the struct stays (others may still read its rings) and is
     * reused by the next spare thread. Counters stay in it (sums must never go down). */
    strand__stack_cache_drain(&sp->caches.stacks);
    strand__sched_set_worker(NULL);
    pthread_mutex_lock(&role_lock);
    if (atomic_load_explicit(&sp->spare_state, memory_order_relaxed) == STRAND__SPARE_ACTIVE)
        atomic_fetch_sub_explicit(&mon.nbusy_spares, 1, memory_order_relaxed); /* stopping */
    atomic_store_explicit(&sp->spare_state, STRAND__SPARE_EXITING, memory_order_relaxed);
    pthread_mutex_unlock(&role_lock);
    atomic_fetch_sub_explicit(&mon.nspare_threads, 1, memory_order_relaxed);
    if (!strand__sched_stopping())
        count(&c_spares_reaped, 1);
    /* The last touch of the struct (release: a new thread on it, after an acquire load of
     * EXITED, sees everything this one did). The thread is detached: nothing joins it. */
    atomic_store_explicit(&sp->spare_state, STRAND__SPARE_EXITED, memory_order_release);
    return NULL;
}

/* Monitor thread, under role_lock: a spare set ACTIVE with `charge` c (its thread woken or
 * started), or NULL when no thread can be had. */
static struct strand__worker *spare_get_locked(struct strand__worker *c,
                                               struct strand__worker *old)
{
    int n = strand__sched_nthreads();
    struct strand__worker *sp = NULL;
    for (int i = strand__nworkers; i < n && !sp; i++) {
        struct strand__worker *v = strand__workers[i];
        if (atomic_load_explicit(&v->spare_state, memory_order_relaxed) == STRAND__SPARE_PARKED)
            sp = v;
    }
    if (sp) {
        atomic_store_explicit(&sp->leave, false, memory_order_relaxed);
        atomic_store_explicit(&sp->take_from, old, memory_order_relaxed);
        atomic_store_explicit(&sp->charge, c, memory_order_relaxed);
        atomic_store_explicit(&sp->spare_state, STRAND__SPARE_ACTIVE, memory_order_release);
        atomic_fetch_add_explicit(&mon.nbusy_spares, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&sp->role_word, 1, memory_order_release);
        strand__futex_wake(&sp->role_word, 1);
        return sp;
    }
    /* A new thread: on a struct whose old thread is done with it (EXITED), else a fresh one. */
    for (int i = strand__nworkers; i < n && !sp; i++) {
        struct strand__worker *v = strand__workers[i];
        int st = atomic_load_explicit(&v->spare_state, memory_order_acquire);
        if (st == STRAND__SPARE_EXITED) /* its old thread is done with it */
            atomic_store_explicit(&v->spare_state, STRAND__SPARE_FREE, memory_order_relaxed);
        if (atomic_load_explicit(&v->spare_state, memory_order_relaxed) == STRAND__SPARE_FREE)
            sp = v;
    }
    bool fresh = false;
    if (!sp) {
        if (n >= strand__nthreads_cap)
            return NULL;
        sp = strand__sched_worker_new(n, strand__cfg.seed);
        if (!sp)
            return NULL;
        sp->spare = true;
        fresh = true;
    }
    atomic_store_explicit(&sp->take_from, old, memory_order_relaxed);
    atomic_store_explicit(&sp->charge, c, memory_order_relaxed);
    atomic_store_explicit(&sp->spare_state, STRAND__SPARE_ACTIVE, memory_order_relaxed);
    atomic_store_explicit(&sp->leave, false, memory_order_relaxed);
    if (fresh) {
        strand__workers[n] = sp;
        atomic_store_explicit(&strand__nthreads, n + 1, memory_order_release);
    }
    atomic_fetch_add_explicit(&mon.nbusy_spares, 1, memory_order_relaxed);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024);
    /* Detached: a reaped spare ends on its own, with no one waiting to join it (a program
     * that exits without strand_shutdown would otherwise leave joinable threads). */
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&sp->thread, &a, spare_main, sp);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&mon.nbusy_spares, 1, memory_order_relaxed);
        atomic_store_explicit(&sp->charge, NULL, memory_order_relaxed);
        atomic_store_explicit(&sp->take_from, NULL, memory_order_relaxed);
        atomic_store_explicit(&sp->spare_state, STRAND__SPARE_FREE, memory_order_relaxed);
        return NULL;
    }
    atomic_fetch_add_explicit(&mon.nspare_threads, 1, memory_order_relaxed);
    count(&c_spares_started, 1);
    return sp;
}

/* ------------------------------------------------------------------ hand-off */

/* w (a worker, or a spare standing in) has held one strand since p->since: move its role.
 * true when done (or nothing to do); false when no thread could be had (retried later). */
static bool hand_off(struct strand__worker *w, const sample *p)
{
    pthread_mutex_lock(&role_lock);
    struct strand__worker *c = w->spare ? atomic_load_explicit(&w->charge, memory_order_relaxed)
                                        : w;
    struct strand__worker *cur = c ? atomic_load_explicit(&c->standin, memory_order_relaxed)
                                   : NULL;
    /* Nothing to hand: an orphan, a role already moved, or the strand moved on meanwhile. */
    if (!c || (w->spare && cur != w) || (!w->spare && cur != NULL) ||
        atomic_load_explicit(&w->current, memory_order_relaxed) != p->s) {
        pthread_mutex_unlock(&role_lock);
        return true;
    }
    if (w->spare && c->role_wait) {
        /* The worker's own thread is back and waits: it takes its role again. */
        give_back_locked(c, w);
        atomic_store_explicit(&w->leave, true, memory_order_seq_cst);
        pthread_mutex_unlock(&role_lock);
        return true;
    }
    struct strand__worker *sp = spare_get_locked(c, w->spare ? w : NULL);
    if (!sp) {
        pthread_mutex_unlock(&role_lock);
        count(&c_handoff_waits, 1);
        return false;
    }
    if (w->spare)
        atomic_store_explicit(&w->charge, NULL, memory_order_release); /* orphaned */
    else
        atomic_store_explicit(&c->stuck_since, p->since, memory_order_relaxed);
    atomic_store_explicit(&c->standin, sp, memory_order_release);
    /* The stuck thread, when it comes back, runs nothing before it has its role again (a
     * worker) or gives up the strand it held (an orphaned spare). */
    atomic_store_explicit(&w->leave, true, memory_order_seq_cst);
    pthread_mutex_unlock(&role_lock);
    count(&c_handoffs, 1);
    return true;
}

/* ------------------------------------------------------------------ the time slice */

static void preempt_set(struct strand__worker *w)
{
    if (atomic_exchange_explicit(&w->preempt, 1, memory_order_relaxed) == 0) {
        atomic_fetch_add_explicit(&strand__preempt_any, 1, memory_order_relaxed);
        count(&c_slice_requests, 1);
    }
}

/* true if this call cleared the flag (then it also drops the count). */
static bool preempt_clear(struct strand__worker *w)
{
    if (atomic_load_explicit(&w->preempt, memory_order_relaxed) == 0 ||
        atomic_exchange_explicit(&w->preempt, 0, memory_order_relaxed) == 0)
        return false;
    atomic_fetch_sub_explicit(&strand__preempt_any, 1, memory_order_relaxed);
    return true;
}

static STRAND__NOINLINE void maybe_yield_slow(void)
{
    struct strand *s = sched_current();
    if (!s)
        return;
    struct strand__worker *w = sched_worker();
    /* A cancelled loop gives way at every call that gets here (fate.h), so what cancelled
     * it runs. A loop gets here once the monitor asks it to yield (one slice at most). */
    if (STRAND__UNLIKELY(atomic_load_explicit(&s->fate.cancelled, memory_order_relaxed)) &&
        s->fate.shield == 0) {
        s->yield_count = 0;
        strand__sched_switch_away(s, STRAND__PREV_YIELD);
        return;
    }
    if (preempt_clear(w)) {
        count(&c_slice_yields, 1);
        s->yield_count = 0;
        strand__sched_switch_away(s, STRAND__PREV_YIELD);
        return;
    }
    int every = strand__cfg.yield_interval;
    if (every > 0 && ++s->yield_count >= (uint32_t)every) {
        s->yield_count = 0;
        strand__sched_switch_away(s, STRAND__PREV_YIELD);
    }
}

/* One relaxed load of one global when nothing is asked of any thread: relaxed is enough,
 * the flag is a request that may be seen a little late (the slice is a hint, not a bound). */
void strand_maybe_yield(void)
{
    if (STRAND__LIKELY(atomic_load_explicit(&strand__preempt_any, memory_order_relaxed) == 0))
        return;
    maybe_yield_slow();
}

/* ------------------------------------------------------------------ the monitor's tick */

static bool runs_strands(struct strand__worker *w)
{
    return !w->spare ||
           atomic_load_explicit(&w->spare_state, memory_order_relaxed) == STRAND__SPARE_ACTIVE;
}

static void check_one(struct strand__worker *w, sample *p, int64_t now)
{
    struct strand *cur = atomic_load_explicit(&w->current, memory_order_relaxed);
    uint64_t sw = atomic_load_explicit(&w->stat[STRAND__STAT_SWITCHES], memory_order_relaxed) +
                  atomic_load_explicit(&w->stat[STRAND__STAT_YIELDS_IN_PLACE],
                                       memory_order_relaxed);
    if (!cur || cur != p->s || sw != p->switches || !runs_strands(w)) {
        /* It moved on: a yield request left over is stale. */
        preempt_clear(w);
        *p = (sample){ .s = cur, .switches = sw, .since = now };
        return;
    }
    int64_t held = now - p->since;
    if (mon.slice && !p->asked_at && held >= mon.slice) {
        preempt_set(w);
        p->asked_at = now;
    }
    /* A hand-off waits one tick after the yield request: a loop that calls
     * strand_maybe_yield() gives its worker up by itself. */
    if (mon.handoff && !p->handed && held >= mon.handoff &&
        (!mon.slice || (p->asked_at && p->asked_at < now)))
        p->handed = hand_off(w, p);
}

/* Every worker busy: nobody sleeps in the poller, so the monitor runs what is due. The
 * strands it readies go to the global queue (a plain thread's wake) and wake a worker. */
static void serve_timers_and_network(void)
{
    if (atomic_load_explicit(&strand__sched.nidle, memory_order_seq_cst) != 0)
        return;
    int64_t next = strand__timers_next();
    if (next >= 0 && next <= strand_now())
        strand__sched_poll_timers();
    strand__netpoll(0);
}

static void tick(int64_t now)
{
    count(&c_ticks, 1);
    int n = strand__sched_nthreads();
    for (int i = 0; i < n; i++)
        check_one(strand__workers[i], &mon.samples[i], now);
    serve_timers_and_network();
}

static bool all_idle(void)
{
    return atomic_load_explicit(&strand__sched.nidle, memory_order_seq_cst) >=
           strand__sched_nrunning();
}

/* Sleep with no timeout while everything is idle (see the top of the file). */
static void sleep_while_idle(void)
{
    unsigned seq = atomic_load_explicit(&mon.word, memory_order_acquire);
    atomic_store_explicit(&strand__monitor_asleep, true, memory_order_seq_cst);
    if (all_idle() && !atomic_load_explicit(&mon.stop, memory_order_acquire))
        strand__futex_wait(&mon.word, seq, -1);
    atomic_store_explicit(&strand__monitor_asleep, false, memory_order_seq_cst);
    /* Whatever runs now started after the wake: sample afresh. */
    int n = strand__sched_nthreads();
    for (int i = 0; i < n; i++)
        mon.samples[i] = (sample){ 0 };
}

static void *monitor_main(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&mon.stop, memory_order_acquire)) {
        if (all_idle()) {
            sleep_while_idle();
            continue;
        }
        int64_t now = strand_now();
        tick(now);
        unsigned seq = atomic_load_explicit(&mon.word, memory_order_acquire);
        if (!atomic_load_explicit(&mon.stop, memory_order_acquire))
            strand__futex_wait(&mon.word, seq, now + mon.period);
    }
    return NULL;
}

void strand__monitor_kick(void)
{
    atomic_fetch_add_explicit(&mon.word, 1, memory_order_release);
    strand__futex_wake(&mon.word, 1);
}

/* ------------------------------------------------------------------ start and stop */

int strand__monitor_start(void)
{
    int ms_h = strand__cfg.handoff_ms, ms_s = strand__cfg.slice_ms;
    mon.interval_bias = strand__cfg.yield_interval > 0;
    atomic_store_explicit(&strand__preempt_any, (unsigned)mon.interval_bias,
                          memory_order_relaxed);
    /* Deterministic mode must not depend on timing: no monitor there. */
    if (strand__sched.host || strand__sched.seeded || (ms_h <= 0 && ms_s <= 0))
        return 0;
    mon.handoff = (int64_t)(ms_h > 0 ? ms_h : 0) * 1000000;
    mon.slice = (int64_t)(ms_s > 0 ? ms_s : 0) * 1000000;
    int64_t shortest = mon.handoff && mon.slice ? (mon.handoff < mon.slice ? mon.handoff
                                                                           : mon.slice)
                                                : mon.handoff + mon.slice;
    /* A quarter of the shortest limit keeps each action within 25% of it; 1 to 50 ms. */
    mon.period = shortest / 4;
    if (mon.period < 1000000)
        mon.period = 1000000;
    if (mon.period > 50000000)
        mon.period = 50000000;
    mon.samples = calloc((size_t)strand__nthreads_cap, sizeof *mon.samples);
    if (!mon.samples)
        return -ENOMEM;
    atomic_store(&mon.stop, false);
    atomic_store(&mon.nbusy_spares, 0);
    atomic_store(&mon.nspare_threads, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 128 * 1024);
    int rc = pthread_create(&mon.thread, &a, monitor_main, NULL);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        free(mon.samples);
        mon.samples = NULL;
        return -rc;
    }
    pthread_setname_np(mon.thread, "strand-monitor");
    mon.running = true;
    atomic_store_explicit(&handoff_on, mon.handoff > 0, memory_order_relaxed);
    return 0;
}

/* strand__sched_stop, with `stopping` set: end the monitor, then every spare thread. */
void strand__monitor_stop(void)
{
    atomic_store_explicit(&handoff_on, false, memory_order_relaxed);
    if (mon.running) {
        atomic_store_explicit(&mon.stop, true, memory_order_release);
        strand__monitor_kick();
        pthread_join(mon.thread, NULL);
        mon.running = false;
    }
    int n = strand__sched_nthreads();
    for (int i = 0; i < strand__nworkers; i++) { /* workers waiting for their role */
        atomic_fetch_add_explicit(&strand__workers[i]->role_word, 1, memory_order_release);
        strand__futex_wake(&strand__workers[i]->role_word, 1);
    }
    for (int i = strand__nworkers; i < n; i++) {
        struct strand__worker *sp = strand__workers[i];
        atomic_fetch_add_explicit(&sp->role_word, 1, memory_order_release);
        strand__futex_wake(&sp->role_word, 1);
        strand__sched_wake_stop(sp);
    }
    for (int i = strand__nworkers; i < n; i++) {
        /* Detached threads: wait until each is done with its struct (a spare stuck in a
         * call is waited for, as a stuck worker is joined). */
        struct strand__worker *sp = strand__workers[i];
        int st;
        while ((st = atomic_load_explicit(&sp->spare_state, memory_order_acquire)) !=
                   STRAND__SPARE_FREE &&
               st != STRAND__SPARE_EXITED) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        atomic_store_explicit(&sp->spare_state, STRAND__SPARE_FREE, memory_order_relaxed);
    }
    free(mon.samples);
    mon.samples = NULL;
    mon.handoff = mon.slice = 0;
    atomic_store_explicit(&strand__preempt_any, 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------ introspection */

void strand__handoff_stats(struct strand_stats *out)
{
    out->handoffs = atomic_load_explicit(&c_handoffs, memory_order_relaxed);
    out->handoff_strands = atomic_load_explicit(&c_handoff_strands, memory_order_relaxed);
    out->handoff_waits = atomic_load_explicit(&c_handoff_waits, memory_order_relaxed);
    out->slice_requests = atomic_load_explicit(&c_slice_requests, memory_order_relaxed);
    out->slice_yields = atomic_load_explicit(&c_slice_yields, memory_order_relaxed);
    out->spares_started = atomic_load_explicit(&c_spares_started, memory_order_relaxed);
    out->spares_reaped = atomic_load_explicit(&c_spares_reaped, memory_order_relaxed);
    out->monitor_ticks = atomic_load_explicit(&c_ticks, memory_order_relaxed);
    out->spare_threads = atomic_load_explicit(&mon.nspare_threads, memory_order_relaxed);
}

int strand__thread_count(void)
{
    return strand__sched_nthreads();
}

static int index_of(const struct strand__worker *w)
{
    return w ? w->index : -1;
}

bool strand__thread_info_get(int i, strand__thread_info *out)
{
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= strand__sched_nthreads())
        return false;
    struct strand__worker *w = strand__workers[i];
    out->index = i;
    out->spare = w->spare;
    out->tid = atomic_load_explicit(&w->tid, memory_order_relaxed);
    out->current = atomic_load_explicit(&w->current, memory_order_relaxed);
    /* every scheduling point, yields that did not switch included (as the watchdog wants) */
    out->switches =
        atomic_load_explicit(&w->stat[STRAND__STAT_SWITCHES], memory_order_relaxed) +
        atomic_load_explicit(&w->stat[STRAND__STAT_YIELDS_IN_PLACE], memory_order_relaxed);
    out->standin = index_of(atomic_load_explicit(&w->standin, memory_order_relaxed));
    out->charge = index_of(atomic_load_explicit(&w->charge, memory_order_relaxed));
    out->stuck_since = atomic_load_explicit(&w->stuck_since, memory_order_relaxed);
    out->queued = atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL;
    for (int p = 0; p < STRAND__PRIOS; p++)
        out->queued += atomic_load_explicit(&w->q[p].tail, memory_order_relaxed) -
                       atomic_load_explicit(&w->q[p].head, memory_order_relaxed);
    if (w->spare) {
        int st = atomic_load_explicit(&w->spare_state, memory_order_relaxed);
        out->parked = st == STRAND__SPARE_PARKED;
        out->gone = st == STRAND__SPARE_FREE || st >= STRAND__SPARE_EXITING;
    }
    return true;
}
