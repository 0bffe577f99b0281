/*
 * sched_private.h - the scheduler's own header: the worker, the scheduler's process-wide
 * state, and the hot paths every scheduler file shares as static inline functions (queueing
 * a runnable strand, the local pop, the quick search), so that splitting the scheduler into
 * files costs no call on those paths. Only the scheduler's files (src/sched_*.c) may include
 * it; everything else uses the "scheduler" section of internal.h.
 *
 * The scheduler's files, each one job:
 *   sched_runq.h     the per-worker ring (a data structure)
 *   sched_globalq.*  the global queue (a data structure)
 *   sched_local.c    a worker's local queues: overflow, the pinned inbox, the slow pop
 *   sched_idle.c     idle list, spinning, the one wake routine, sleeping, timer wake-ups
 *   sched_find.c     finding work: timers, the network, stealing, then going idle
 *   sched_switch.c   thread-local state, the switch, finish_switch, sanitizer fibers
 *   sched_park.c     the parking protocol and the waiter API
 *   sched_worker.c   worker lifecycle: start, the worker thread's loop, stop, spawning
 *   sched_host.c     host-driven mode
 *   sched_counters.c counters, the active count and waiting for quiet
 *   sched_monitor.c  the monitor thread: hand-off to spare threads, the time slice
 *
 * Ownership. A worker's rings are single-producer (the owner pushes), multi-consumer (the
 * owner and thieves take with a CAS). Its caches, counters, `prev`/`prev_action`, `tick`,
 * `rng`, `prio_mask` and `spinning` are touched by the owning thread only; counters are
 * relaxed atomics so strand_stats() may read them from anywhere. `runnext` is taken with an
 * exchange so a thief may empty it too. The inbox is under its spinlock (any thread pushes,
 * the owner pops). `wake`, `idle`, `in_poll` and `sleep_until` are the idle protocol's
 * (sched_idle.c says who writes them and why the orders are enough).
 */
#ifndef STRAND_SCHED_PRIVATE_H
#define STRAND_SCHED_PRIVATE_H

#ifndef STRAND__SCHED_INTERNAL
#error "sched_private.h is private to the scheduler (src/sched_*.c): use internal.h"
#endif

#include "internal.h"
#include "sched_globalq.h"
#include "sched_runq.h"

/* What the strand that just switched away asked for; done by whoever runs next on this
 * worker (finish_switch, sched_switch.c), off that strand's stack. */
enum strand__prev {
    STRAND__PREV_NONE = 0,
    STRAND__PREV_YIELD,
    STRAND__PREV_PARK,
    STRAND__PREV_EXIT,
};

/* Why a sleeping worker was woken: the value a waker stores in w->wake (its futex word). */
enum strand__wake_reason {
    STRAND__WAKE_NONE = 0, /* asleep, or about to be */
    STRAND__WAKE_SPIN,     /* wakep took it off the idle list and hands it its spinning slot */
    STRAND__WAKE_PINNED,   /* taken off the idle list: a strand pinned to it is runnable */
    STRAND__WAKE_STOP,     /* the runtime is stopping (it stays on the idle list) */
    STRAND__WAKE_DEADLINE, /* the earliest timer moved before its wake-up: recompute (it stays
                            * on the idle list; never overwrites another reason) */
    STRAND__WAKE_RECHECK,  /* look at `leave` (hand-off, sched_monitor.c); as DEADLINE: it
                            * stays on the idle list and never overwrites another reason */
};

/* A spare thread's struct (sched_monitor.c). FREE: no thread; PARKED: its thread waits for
 * a role on role_word; ACTIVE: its thread runs strands (standing in for `charge`, or, with
 * no charge, finishing the strand it held when its role was taken away); EXITING: its
 * thread is ending (idle too long, or the runtime stops); EXITED: its (detached) thread
 * will not touch the struct again, which a new spare thread may then reuse. */
enum strand__spare_state {
    STRAND__SPARE_FREE = 0,
    STRAND__SPARE_PARKED,
    STRAND__SPARE_ACTIVE,
    STRAND__SPARE_EXITING,
    STRAND__SPARE_EXITED,
};

struct strand__worker {
    int              index;
    bool             host;        /* host-driven: the host's thread, no worker thread */
    bool             spinning;
    strand__ctx      sched_ctx;   /* the worker's own stack: idle loop */
    struct strand   *prev;
    int              prev_action; /* enum strand__prev */
    _Atomic(struct strand *) current;
    _Atomic(struct strand *) runnext;
    strand__runq     q[STRAND__PRIOS];
    strand__deque    spawned;     /* children of its strands, work-first (sched_runq.h) */
    unsigned         prio_mask;   /* owner's hint: which non-normal queues may hold work */
    strand__spinlock inbox_lock;  /* strands pinned to this worker */
    struct strand   *inbox_head, *inbox_tail;
    atomic_uint      inbox_n;
    atomic_uint      wake;        /* futex: enum strand__wake_reason */
    atomic_bool      idle;        /* on the idle list */
    atomic_bool      in_poll;     /* blocked (or about to block) in strand__netpoll */
    _Atomic int64_t  sleep_until; /* asleep until then (INT64_MAX: no deadline); 0: awake */
    uint32_t         tick;
    uint64_t         rng;         /* victim choice */
    uint64_t         seed_rng;    /* deterministic mode's choice among runnable strands */
    strand__caches   caches;      /* the memory layer's per-worker caches (internal.h) */
    atomic_ullong    stat[STRAND__STAT_COUNT];
    pthread_t        thread;
    void            *g0_lo;       /* the worker thread's own stack, for ASan */
    size_t           g0_size;
    void            *g0_fake;
    void            *g0_fiber;    /* TSan */
    struct strand__worker *idle_next;

    /* ---- Hand-off and the time slice (sched_monitor.c says who writes each field and why
     * the orders are enough). A configured worker (index < strand__nworkers) is a role, Go's
     * P, that keeps its own thread; a spare (index >= strand__nworkers) is a struct of its
     * own with a thread started on demand, which holds a stuck worker's role meanwhile. */
    atomic_bool      leave;       /* at the next scheduling point, go back to the thread's
                                   * own loop (the role moves: sched_monitor.c) */
    atomic_uint      preempt;     /* the slice is used up: strand_maybe_yield() yields */
    bool             spare;       /* a spare's struct (set before its thread starts) */
    bool             role_wait;   /* worker: its thread came back, waits for its role (role_lock) */
    _Atomic(struct strand__worker *) standin; /* worker: the spare holding its role */
    _Atomic(struct strand__worker *) charge;  /* spare: the worker whose role it holds */
    _Atomic(struct strand__worker *) take_from; /* spare: an earlier stand-in to empty first */
    atomic_int       spare_state; /* spare: enum strand__spare_state */
    atomic_uint      role_word;   /* futex: a parked spare waits on it, a worker for its role */
    atomic_int       tid;         /* kernel thread id, for the dump (blocked in the kernel?) */
    _Atomic int64_t  stuck_since; /* worker: handed off; since when its strand holds it (0: not) */
};

/* The scheduler's process-wide state (defined in sched_worker.c). `host`, `seeded` and
 * `thread_start` are written by strand__sched_start/stop only, while no worker runs. The
 * idle list is under idle_lock; nidle and nspinning are its counts, read without it
 * (sched_idle.c). */
struct strand__sched {
    atomic_int       nspinning;
    atomic_int       nidle;
    pthread_mutex_t  idle_lock;
    struct strand__worker *idle_head;
    strand__globalq  gq;
    atomic_bool      stopping;
    bool             host;
    bool             seeded;     /* deterministic mode (a seed and one worker) */
    void           (*thread_start)(void); /* run first by each thread that becomes a worker */
};
extern struct strand__sched strand__sched;
/* The workers, written like `host` (tools/strand-gdb.py reads them by these names).
 * strand__workers has room for the spares too (strand__nthreads_cap entries): the configured
 * workers are [0, strand__nworkers), spares follow. strand__nthreads counts the structs in
 * use; it only grows while the runtime runs (a spare's struct outlives its thread and is
 * reused), published with release after the struct is set up, so a reader that loads it
 * (acquire) may read every struct below it. */
extern struct strand__worker **strand__workers;
extern int strand__nworkers;
extern atomic_int strand__nthreads;
extern int strand__nthreads_cap;

/* Every struct in use, configured workers and spares (for stealing, sums, rechecks). */
static inline int strand__sched_nthreads(void)
{
    return atomic_load_explicit(&strand__nthreads, memory_order_acquire);
}

/* Thread-local state, defined in sched_switch.c: the worker this thread is (NULL on a plain
 * thread) and the strand it runs (NULL between strands). Only its own thread writes it. */
extern _Thread_local struct strand__worker *strand__tls_worker
    __attribute__((tls_model("initial-exec")));
extern _Thread_local struct strand *strand__tls_current __attribute__((tls_model("initial-exec")));

/* The scheduler reads them through these tiny functions, never inline: a strand may resume
 * on another thread, and the compiler must not keep one thread's TLS address across a
 * switch. Each scheduler file gets its own static copy, so the compiler knows what a call
 * clobbers (as it does for a call within one file) and the hot paths save no registers for
 * it; other layers call strand__current() / strand__worker_self() (internal.h). */
static STRAND__NOINLINE __attribute__((unused)) struct strand__worker *sched_worker(void)
{
    return strand__tls_worker;
}

static STRAND__NOINLINE __attribute__((unused)) struct strand *sched_current(void)
{
    return strand__tls_current;
}

static inline void strand__worker_stat(struct strand__worker *w, int which, uint64_t n)
{
    /* relaxed load + store, not an RMW: only the owner writes it. COMPLETED is stored with
     * release: a reader that sees a completion (acquire) then sees that strand's spawn
     * counted too, which is what makes strand_stats' spawned >= completed hold (see
     * sched_counters.c). A plain store either way on x86. */
    uint64_t v = atomic_load_explicit(&w->stat[which], memory_order_relaxed);
    atomic_store_explicit(&w->stat[which], v + n,
                          which == STRAND__STAT_COMPLETED ? memory_order_release
                                                          : memory_order_relaxed);
}

/* ------------------------------------------------------------------ out of line */

/* The poller's (io_internal.h declares it for the I/O files, which the scheduler must not
 * include): host-driven, arm the alarm that makes strand_poll_fd() readable at `when`. */
void strand__netpoll_timer_hint(int64_t when);

/* sched_local.c */
void strand__sched_overflow(struct strand__worker *w, int prio, struct strand *s);
struct strand *strand__sched_inbox_pop(struct strand__worker *w);
void strand__sched_push_pinned(struct strand__worker *w, struct strand *s);
struct strand *strand__sched_local_pop_slow(struct strand__worker *w);

/* sched_idle.c */
void strand__wakep(void);
void strand__sched_wake_pinned(struct strand__worker *w);
void strand__sched_wake_stop(struct strand__worker *w);
void strand__sched_idle_push(struct strand__worker *w);
bool strand__sched_idle_remove(struct strand__worker *w);
void strand__sched_accept_wake(struct strand__worker *w);
void strand__sched_start_spinning(struct strand__worker *w);
void strand__sched_stop_spinning(struct strand__worker *w);
void strand__sched_sleep(struct strand__worker *w);
void strand__sched_wake_recheck(struct strand__worker *w);

/* sched_find.c */
void strand__sched_poll_timers(void);
bool strand__sched_work_anywhere(struct strand__worker *w);
struct strand *strand__sched_find_blocking(struct strand__worker *w);

/* sched_switch.c */
void strand__sched_set_worker(struct strand__worker *w);
void strand__sched_g0_bounds(struct strand__worker *w);
void strand__sched_run_from_idle(struct strand__worker *w, struct strand *s);
/* Switch the current strand away; the worker does `action` (enum strand__prev) with it
 * afterwards. Returns when the strand runs again (perhaps on another worker). */
void strand__sched_switch_away(struct strand *self, int action);

/* sched_worker.c */
struct strand__worker *strand__sched_worker_new(int i, uint64_t seed);
void strand__sched_thread_enter(struct strand__worker *w);
void strand__sched_run_loop(struct strand__worker *w);

/* sched_monitor.c */
int  strand__monitor_start(void);
void strand__monitor_stop(void);
void strand__monitor_kick(void);          /* a worker left the idle list while it slept */
extern atomic_bool strand__monitor_asleep;
/* The worker thread's loop came back to its own stack with `leave` set: give the role up,
 * or wait for it. true: go on running strands as w; false: w's thread should stop (a
 * spare whose role went away). */
bool strand__sched_on_leave(struct strand__worker *w);
/* A spare standing in: a strand pinned to its charge, or NULL. */
struct strand *strand__sched_standin_pop(struct strand__worker *w);
/* The thread that runs w's role now: its stand-in, else w itself. */
struct strand__worker *strand__sched_role_thread(struct strand__worker *w);
/* How many structs run strands now (workers and spares that hold a role or a strand). */
int  strand__sched_nrunning(void);

/* sched_counters.c */
void strand__sched_notify_quiet(void);
void strand__sched_retire_counters(struct strand__worker *w);

/* ------------------------------------------------------------------ queueing (hot) */

/* Queue a runnable strand: the one place that decides where. A pinned strand goes to the
 * inbox of its worker, which is woken unless it is w; otherwise to w's "run next" slot
 * (`next`, so a wake-then-block hand-off stays on this core) or ring, or, with no worker
 * (w NULL), to the global queue. Returns true if any worker may run it: the caller then
 * decides whether to wake one (strand__wakep); false for a pinned strand. */
static inline bool strand__sched_push(struct strand__worker *w, struct strand *s, bool next)
{
    if (STRAND__UNLIKELY(s->pinned >= 0)) {
        strand__sched_push_pinned(w, s);
        return false;
    }
    if (STRAND__UNLIKELY(!w)) {
        strand__globalq_push(&strand__sched.gq, s, s->prio);
        return true;
    }
    if (next && !strand__sched.seeded) {
        s = atomic_exchange_explicit(&w->runnext, s, memory_order_acq_rel);
        if (!s)
            return true;
    }
    int p = s->prio;
    if (STRAND__UNLIKELY(p != STRAND_PRIO_NORMAL))
        w->prio_mask |= 1u << p;
    if (STRAND__UNLIKELY(!strand__runq_put(&w->q[p], s)))
        strand__sched_overflow(w, p, s);
    return true;
}

/* A strand became runnable (woken, or spawned): queue it from wherever we are and make sure
 * some worker will look. Host-driven, a spawn always goes to the global queue (or its
 * pinned inbox), even from a strand running on the host's thread. */
static inline void strand__sched_make_runnable(struct strand *s, bool spawn)
{
    struct strand__worker *w = sched_worker();
    if (w && spawn && w->host)
        w = NULL;
    bool from_strand = w && sched_current() != NULL;
    /* Work-first: a running strand's child goes on its worker's spawn deque (run newest
     * first here, stolen oldest first elsewhere); priorities, pinned strands and the
     * deterministic mode keep the rings. A woken strand goes to "run next" as before. */
    if (spawn && from_strand && s->prio == STRAND_PRIO_NORMAL && s->pinned < 0 &&
        !strand__sched.seeded && strand__deque_push(&w->spawned, s)) {
        strand__wakep();
        return;
    }
    if (strand__sched_push(w, s, from_strand && !spawn))
        strand__wakep();
}

/* Has the monitor moved this thread's role (or asked for it back)? One relaxed load: the
 * flag is only a request, acted on under role_lock (sched_monitor.c). */
static inline bool strand__sched_leaving(struct strand__worker *w)
{
    return STRAND__UNLIKELY(atomic_load_explicit(&w->leave, memory_order_relaxed));
}

/* ------------------------------------------------------------------ taking (hot) */

static inline struct strand *strand__sched_local_pop(struct strand__worker *w)
{
    struct strand *s = atomic_load_explicit(&w->runnext, memory_order_relaxed);
    if (s && !atomic_load_explicit(&w->inbox_n, memory_order_relaxed)) {
        s = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
        if (s)
            return s;
    }
    if (STRAND__LIKELY(w->prio_mask == 0 && !strand__sched.seeded && (w->tick % 31) != 0 &&
                       !atomic_load_explicit(&w->inbox_n, memory_order_relaxed))) {
        /* Spawned children first (work-first), but every 16th pick the ring's oldest: a
         * strand that keeps spawning cannot starve the woken and yielding ones. */
        if ((w->tick & 15) != 0 && (s = strand__deque_pop(&w->spawned)))
            return s;
        if ((s = strand__runq_get(&w->q[STRAND_PRIO_NORMAL])))
            return s;
        return strand__deque_pop(&w->spawned);
    }
    s = strand__sched_local_pop_slow(w);
    if (s)
        return s;
    return atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
}

/* One strand from the global queue, and a fair share of the rest into w's rings. */
static inline struct strand *strand__sched_global_pop(struct strand__worker *w)
{
    if (strand__globalq_len(&strand__sched.gq) == 0)
        return NULL;
    return strand__globalq_take(&strand__sched.gq, (unsigned)strand__nworkers, w->q,
                                &w->prio_mask, (w->tick % 31) == 0);
}

/* Work without stealing: what a strand looks at before switching away. */
static inline struct strand *strand__sched_quick_pick(struct strand__worker *w)
{
    struct strand *s;
    if ((w->tick % 61) == 0) {
        strand__sched_poll_timers();
        if ((s = strand__sched_global_pop(w)))
            return s;
    }
    if ((s = strand__sched_local_pop(w)))
        return s;
    return strand__sched_global_pop(w);
}

/* `tick` counts picks that found a strand, not attempts: the idle loop polls a number of
 * times that depends on timing, and deterministic mode must not depend on that. */
static inline struct strand *strand__sched_find_quick(struct strand__worker *w)
{
    struct strand *s = strand__sched_quick_pick(w);
    if (s)
        w->tick++;
    return s;
}

#endif
