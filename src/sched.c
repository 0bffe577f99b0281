/*
 * sched.c - the M:N scheduler: workers, run queues, work stealing, idle/wake, parking.
 *
 * Workers. strand__cfg.workers threads (or, host-driven, none: the host's thread acts as
 * worker 0 inside strand_run_until_idle). Each worker owns four run queues (one per
 * priority, single producer / multi consumer rings, sched.h), a stealable "run next" slot
 * for the strand it just woke, and an inbox for strands pinned to it (never stolen).
 * Spawns from outside the runtime go to the global queue.
 *
 * Switching. A strand that yields, parks or exits picks the next strand itself and
 * switches to it directly (one switch, no detour through the worker's own stack); when it
 * finds nothing it switches to the worker's idle loop (sched_ctx). What the old strand
 * asked for (requeue it, complete its park, free its stack) is recorded in w->prev and
 * done by whatever runs next on that worker (finish_switch), off the old strand's stack:
 * until then another worker must not see it, or two workers could run on one stack.
 *
 * Parking (internal.h, verify/park.pml). finish_switch completes PARKING -> PARKED with a
 * CAS; a waker that got there first (PARKING -> RUNNABLE) makes the CAS fail and the
 * strand is requeued here. strand__ready does PARKED -> RUNNABLE and queues it.
 *
 * Idle and wake (Go's rule, design notes §3). A worker out of work becomes "spinning"
 * (bounded: at most half the busy workers spin) and steals half of a victim's queue. Before
 * it sleeps it puts itself on the idle list, stops spinning, issues a full barrier and
 * rechecks every queue; whoever makes work runnable publishes it, issues a full barrier,
 * then wakes an idle worker unless one is already spinning. One of the two always sees the
 * other, so nothing sleeps while work is queued. One sleeping worker (the poller) blocks in
 * epoll_wait with the next timer's deadline; the others sleep on their futex.
 */
#include "internal.h"
#include "worker.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(STRAND_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

struct strand__worker **strand__workers;
int strand__nworkers;

/* The global queue of one priority: a growable ring of pointers, so that moving strands in
 * and out never touches their control blocks (each on its own stack page: with a million
 * queued strands a linked list costs a cache and TLB miss per strand). If the ring cannot
 * grow, strands go on an intrusive list (`spill`) instead: a queue must not fail. */
typedef struct gring {
    struct strand **buf;
    size_t cap, head, count;
    struct strand *spill_head, *spill_tail;
} gring;

static struct {
    atomic_int       nspinning;
    atomic_int       nidle;
    pthread_mutex_t  idle_lock;
    struct strand__worker *idle_head;
    pthread_mutex_t  gq_lock;
    gring            gq[PRIOS];
    atomic_uint      gq_n;
    atomic_bool      poller_busy;
    atomic_bool      stopping;
    bool             host;
    bool             seeded;
    atomic_ullong    ext_stat[STRAND__STAT_COUNT]; /* counted off any worker */
    atomic_ullong    peak;
    atomic_uint      quiet;        /* futex for strand_wait_all */
    atomic_int       nwaiting;
} g = {
    .idle_lock = PTHREAD_MUTEX_INITIALIZER,
    .gq_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* initial-exec: a direct %fs-relative access instead of a __tls_get_addr call (the
 * library is built position-independent, which would otherwise pick the general model). */
static _Thread_local struct strand__worker *tls_worker __attribute__((tls_model("initial-exec")));
static _Thread_local struct strand *tls_current __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ thread-local state */

STRAND__NOINLINE struct strand *strand__current(void)
{
    return tls_current;
}

STRAND__NOINLINE struct strand__worker *strand__worker_self(void)
{
    return tls_worker;
}

static STRAND__NOINLINE void set_current(struct strand__worker *w, struct strand *s)
{
    tls_current = s;
    atomic_store_explicit(&w->current, s, memory_order_relaxed);
}

static STRAND__NOINLINE void set_worker(struct strand__worker *w)
{
    tls_worker = w;
}

/* ------------------------------------------------------------------ futex */

int strand__futex_wait(atomic_uint *addr, unsigned expected, int64_t deadline)
{
    struct timespec ts, *tp = NULL;
    if (deadline >= 0) {
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, as our deadlines are. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0;
}

void strand__futex_wake(atomic_uint *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ counters */

void strand__stat_add(int which, uint64_t n)
{
    struct strand__worker *w = strand__worker_self();
    if (w)
        strand__worker_stat(w, which, n);
    else
        atomic_fetch_add_explicit(&g.ext_stat[which], n, memory_order_relaxed);
}

static uint64_t stat_sum(int which)
{
    uint64_t v = atomic_load_explicit(&g.ext_stat[which], memory_order_relaxed);
    for (int i = 0; i < strand__nworkers; i++)
        v += atomic_load_explicit(&strand__workers[i]->stat[which], memory_order_relaxed);
    return v;
}

void strand__stats_collect(uint64_t out[STRAND__STAT_COUNT])
{
    for (int k = 0; k < STRAND__STAT_COUNT; k++)
        out[k] = stat_sum(k);
}

/* Completed is summed before spawned: both only grow, so a zero result means that at
 * some instant between the two sums no strand was alive. */
static uint64_t active_now(void)
{
    uint64_t done = stat_sum(STRAND__STAT_COMPLETED);
    uint64_t spawned = stat_sum(STRAND__STAT_SPAWNED);
    return spawned > done ? spawned - done : 0;
}

static void peak_update(uint64_t active)
{
    unsigned long long p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    while (active > p && !atomic_compare_exchange_weak_explicit(&g.peak, &p, active,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed))
        ;
}

void strand__active_peak(uint64_t *active, uint64_t *peak)
{
    uint64_t a = active_now();
    peak_update(a);
    *active = a;
    *peak = atomic_load_explicit(&g.peak, memory_order_relaxed);
}

/* Spawn bookkeeping; the peak is sampled every 64 spawns of a worker (and at every
 * strand_stats call), which keeps a shared cache line off the spawn path. */
void strand__count_spawn(void)
{
    struct strand__worker *w = strand__worker_self();
    if (!w) {
        atomic_fetch_add_explicit(&g.ext_stat[STRAND__STAT_SPAWNED], 1, memory_order_relaxed);
        peak_update(active_now());
        return;
    }
    strand__worker_stat(w, STRAND__STAT_SPAWNED, 1);
    if ((atomic_load_explicit(&w->stat[STRAND__STAT_SPAWNED], memory_order_relaxed) & 63) == 0)
        peak_update(active_now());
}

int strand__worker_index(const struct strand__worker *w)
{
    return w ? w->index : -1;
}

int strand__worker_count(void)
{
    return strand__nworkers;
}

struct strand *strand__worker_current(int i, uint64_t *switches)
{
    if (i < 0 || i >= strand__nworkers)
        return NULL;
    struct strand__worker *w = strand__workers[i];
    if (switches) /* every scheduling point, including yields that did not switch */
        *switches = atomic_load_explicit(&w->stat[STRAND__STAT_SWITCHES], memory_order_relaxed) +
                    atomic_load_explicit(&w->stat[STRAND__STAT_YIELDS_IN_PLACE], memory_order_relaxed);
    return atomic_load_explicit(&w->current, memory_order_relaxed);
}

/* ------------------------------------------------------------------ run queues */

static inline bool runq_put(strand__runq *q, struct strand *s)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h >= RUNQ_SIZE)
        return false;
    atomic_store_explicit(&q->buf[t % RUNQ_SIZE], s, memory_order_relaxed);
    /* release: a consumer that sees the new tail sees the slot and the strand */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

static inline struct strand *runq_get(strand__runq *q)
{
    for (;;) {
        unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (h == t)
            return NULL;
        struct strand *s = atomic_load_explicit(&q->buf[h % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return s;
    }
}

/* Take the older half (rounded up) of q into out[]; returns how many. */
static unsigned runq_grab(strand__runq *q, struct strand **out)
{
    for (;;) {
        unsigned h = atomic_load_explicit(&q->head, memory_order_acquire);
        unsigned t = atomic_load_explicit(&q->tail, memory_order_acquire);
        unsigned n = t - h;
        n -= n / 2;
        if (n == 0)
            return 0;
        if (n > RUNQ_SIZE / 2)
            continue; /* head and tail read at different times */
        for (unsigned i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&q->buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + n, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return n;
    }
}

static bool runq_empty(strand__runq *q)
{
    return atomic_load_explicit(&q->head, memory_order_acquire) ==
           atomic_load_explicit(&q->tail, memory_order_acquire);
}

/* Deterministic mode: swap a random queued strand to the head before taking it. Only with
 * one worker, so no thief races the swap. */
static void runq_shuffle(struct strand__worker *w, strand__runq *q)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_relaxed);
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - h < 2)
        return;
    /* its own generator: the stealing one advances a timing-dependent number of times */
    w->seed_rng ^= w->seed_rng << 13;
    w->seed_rng ^= w->seed_rng >> 7;
    w->seed_rng ^= w->seed_rng << 17;
    unsigned k = h + (unsigned)(w->seed_rng % (t - h));
    struct strand *a = atomic_load_explicit(&q->buf[h % RUNQ_SIZE], memory_order_relaxed);
    struct strand *b = atomic_load_explicit(&q->buf[k % RUNQ_SIZE], memory_order_relaxed);
    atomic_store_explicit(&q->buf[h % RUNQ_SIZE], b, memory_order_relaxed);
    atomic_store_explicit(&q->buf[k % RUNQ_SIZE], a, memory_order_relaxed);
}

/* ------------------------------------------------------------------ global queue */

static bool gring_grow(gring *r)
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

/* p is the strand's priority, passed so that queueing never touches the control block */
static void gq_push_prio_locked(struct strand *s, int p)
{
    gring *r = &g.gq[p];
    atomic_fetch_add_explicit(&g.gq_n, 1, memory_order_relaxed);
    if (!r->spill_head && (r->count < r->cap || gring_grow(r))) {
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

static void gq_push_locked(struct strand *s)
{
    gq_push_prio_locked(s, s->prio);
}

static struct strand *gq_take_locked(int p)
{
    gring *r = &g.gq[p];
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
        atomic_fetch_sub_explicit(&g.gq_n, 1, memory_order_relaxed);
    return s;
}

static void gq_push(struct strand *s)
{
    pthread_mutex_lock(&g.gq_lock);
    gq_push_locked(s);
    pthread_mutex_unlock(&g.gq_lock);
}

static const int prio_order[2][PRIOS] = {
    {STRAND_PRIO_MAX, STRAND_PRIO_HIGH, STRAND_PRIO_NORMAL, STRAND_PRIO_LOW},
    {STRAND_PRIO_LOW, STRAND_PRIO_NORMAL, STRAND_PRIO_HIGH, STRAND_PRIO_MAX}, /* anti-starvation */
};

/* Take one strand to run and move a fair share of the rest to w's queues. */
static struct strand *gq_pop(struct strand__worker *w)
{
    if (atomic_load_explicit(&g.gq_n, memory_order_relaxed) == 0)
        return NULL;
    struct strand *first = NULL;
    pthread_mutex_lock(&g.gq_lock);
    unsigned n = atomic_load_explicit(&g.gq_n, memory_order_relaxed);
    unsigned want = n / (unsigned)strand__nworkers + 1;
    if (want > RUNQ_SIZE / 2)
        want = RUNQ_SIZE / 2;
    const int *order = prio_order[(w->tick % 31) == 0];
    for (int i = 0; i < PRIOS && want; i++) {
        int p = order[i];
        struct strand *s;
        while (want && (s = gq_take_locked(p))) {
            want--;
            if (!first) {
                first = s;
                continue;
            }
            if (!runq_put(&w->q[p], s)) {
                gq_push_prio_locked(s, p);
                want = 0;
            } else if (p != STRAND_PRIO_NORMAL) {
                w->prio_mask |= 1u << p;
            }
        }
    }
    pthread_mutex_unlock(&g.gq_lock);
    return first;
}

/* ------------------------------------------------------------------ pinned inbox */

static void inbox_push(struct strand__worker *w, struct strand *s)
{
    s->next = NULL;
    strand__spin_lock(&w->inbox_lock);
    if (w->inbox_tail)
        w->inbox_tail->next = s;
    else
        w->inbox_head = s;
    w->inbox_tail = s;
    atomic_fetch_add_explicit(&w->inbox_n, 1, memory_order_relaxed);
    strand__spin_unlock(&w->inbox_lock);
}

static struct strand *inbox_pop(struct strand__worker *w)
{
    if (atomic_load_explicit(&w->inbox_n, memory_order_relaxed) == 0)
        return NULL;
    strand__spin_lock(&w->inbox_lock);
    struct strand *s = w->inbox_head;
    if (s) {
        w->inbox_head = s->next;
        if (!w->inbox_head)
            w->inbox_tail = NULL;
        atomic_fetch_sub_explicit(&w->inbox_n, 1, memory_order_relaxed);
    }
    strand__spin_unlock(&w->inbox_lock);
    return s;
}

/* ------------------------------------------------------------------ idle list and waking */

static void idle_push(struct strand__worker *w)
{
    pthread_mutex_lock(&g.idle_lock);
    atomic_store_explicit(&w->wake, 0, memory_order_relaxed);
    atomic_store_explicit(&w->idle, true, memory_order_relaxed);
    w->idle_next = g.idle_head;
    g.idle_head = w;
    atomic_fetch_add_explicit(&g.nidle, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&g.idle_lock);
}

static void idle_unlink_locked(struct strand__worker *w)
{
    struct strand__worker **pp = &g.idle_head;
    while (*pp && *pp != w)
        pp = &(*pp)->idle_next;
    if (*pp)
        *pp = w->idle_next;
    atomic_store_explicit(&w->idle, false, memory_order_relaxed);
    atomic_fetch_sub_explicit(&g.nidle, 1, memory_order_seq_cst);
}

/* true if w was still on the list (nobody woke it) and is now off it */
static bool idle_remove(struct strand__worker *w)
{
    bool was = false;
    pthread_mutex_lock(&g.idle_lock);
    if (atomic_load_explicit(&w->idle, memory_order_relaxed)) {
        idle_unlink_locked(w);
        was = true;
    }
    pthread_mutex_unlock(&g.idle_lock);
    return was;
}

static struct strand__worker *idle_pop(void)
{
    pthread_mutex_lock(&g.idle_lock);
    struct strand__worker *w = g.idle_head;
    if (w)
        idle_unlink_locked(w);
    pthread_mutex_unlock(&g.idle_lock);
    return w;
}

/* Wake a worker taken off the idle list. The store of `wake` and the load of `in_poll`
 * pair with the worker's store of `in_poll` and load of `wake` (both seq_cst), so either
 * it sees the wake before blocking in epoll_wait or we see it is there and interrupt it. */
static void kick(struct strand__worker *w)
{
    atomic_store_explicit(&w->wake, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&w->in_poll, memory_order_seq_cst))
        strand__netpoll_wake();
    else
        strand__futex_wake(&w->wake, 1);
}

void strand__wakep(void)
{
    /* Full barrier between publishing work and reading the idle/spinning counts: pairs
     * with the barrier of a worker going idle (see the top of this file). */
    atomic_thread_fence(memory_order_seq_cst);
    if (g.host) {
        if (!strand__worker_self())
            strand__netpoll_wake();
        return;
    }
    if (atomic_load_explicit(&g.nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&g.nidle, memory_order_relaxed) == 0)
        return;
    int zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&g.nspinning, &zero, 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    struct strand__worker *w = idle_pop();
    if (!w) {
        atomic_fetch_sub_explicit(&g.nspinning, 1, memory_order_seq_cst);
        return;
    }
    kick(w); /* it wakes up spinning: the nspinning we took is its */
}

/* Wake a particular worker (a strand pinned to it became runnable). */
static void wake_worker(struct strand__worker *w)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (g.host) {
        if (!strand__worker_self())
            strand__netpoll_wake();
        return;
    }
    if (!atomic_load_explicit(&w->idle, memory_order_seq_cst))
        return; /* running, or rechecking its inbox before it sleeps */
    bool took = false;
    pthread_mutex_lock(&g.idle_lock);
    if (atomic_load_explicit(&w->idle, memory_order_relaxed)) {
        idle_unlink_locked(w);
        took = true;
    }
    pthread_mutex_unlock(&g.idle_lock);
    if (took) {
        atomic_store_explicit(&w->wake, 2, memory_order_seq_cst); /* 2: woken, not spinning */
        if (atomic_load_explicit(&w->in_poll, memory_order_seq_cst))
            strand__netpoll_wake();
        else
            strand__futex_wake(&w->wake, 1);
    }
}

void strand__sched_timer_changed(void)
{
    /* The sleeper with the earliest deadline is the poller (or a futex sleeper with a
     * timeout); interrupt it so it recomputes. Cheap when nobody sleeps. */
    if (atomic_load_explicit(&g.nidle, memory_order_relaxed) == 0)
        return;
    strand__netpoll_wake();
    pthread_mutex_lock(&g.idle_lock);
    for (struct strand__worker *w = g.idle_head; w; w = w->idle_next)
        if (!atomic_load_explicit(&w->in_poll, memory_order_relaxed)) {
            strand__futex_wake(&w->wake, 1); /* a spurious wake: it rechecks and recomputes */
            break;
        }
    pthread_mutex_unlock(&g.idle_lock);
}

/* ------------------------------------------------------------------ queueing */

/* Full: move half of the queue and s to the global queue, as Go does. */
static STRAND__NOINLINE void runq_overflow(struct strand__worker *w, int p, struct strand *s)
{
    struct strand *batch[RUNQ_SIZE / 2];
    unsigned n = runq_grab(&w->q[p], batch);
    pthread_mutex_lock(&g.gq_lock);
    for (unsigned i = 0; i < n; i++)
        gq_push_prio_locked(batch[i], p);
    gq_push_prio_locked(s, p);
    pthread_mutex_unlock(&g.gq_lock);
}

static STRAND__NOINLINE void push_pinned(struct strand__worker *w, struct strand *s)
{
    struct strand__worker *t = strand__workers[s->pinned];
    inbox_push(t, s);
    if (t != w)
        wake_worker(t);
}

void strand__sched_push(struct strand__worker *w, struct strand *s, bool next)
{
    if (STRAND__UNLIKELY(s->pinned >= 0)) {
        push_pinned(w, s);
        return;
    }
    if (next && !g.seeded) {
        s = atomic_exchange_explicit(&w->runnext, s, memory_order_acq_rel);
        if (!s)
            return;
    }
    int p = s->prio;
    if (STRAND__UNLIKELY(p != STRAND_PRIO_NORMAL))
        w->prio_mask |= 1u << p;
    if (STRAND__UNLIKELY(!runq_put(&w->q[p], s)))
        runq_overflow(w, p, s);
}

static void enqueue_ready(struct strand *s)
{
    struct strand__worker *w = strand__worker_self();
    if (w) {
        /* from a strand: "run next", so a wake-then-block hand-off stays on this core */
        strand__sched_push(w, s, strand__current() != NULL);
    } else if (s->pinned >= 0) {
        struct strand__worker *t = strand__workers[s->pinned];
        inbox_push(t, s);
        wake_worker(t);
        return;
    } else {
        gq_push(s);
    }
    strand__wakep();
}

void strand__ready(struct strand *s)
{
    int st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (st == STRAND__PARKING) {
            /* It has not switched away yet; its scheduler's CAS will fail and requeue it. */
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, STRAND__RUNNABLE,
                                                      memory_order_acq_rel, memory_order_acquire))
                return;
        } else if (st == STRAND__PARKED) {
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, STRAND__RUNNABLE,
                                                      memory_order_acq_rel, memory_order_acquire)) {
                enqueue_ready(s);
                return;
            }
        } else {
            static const char msg[] = "strand: internal error: wake of a strand that is not waiting\n";
            (void)!write(2, msg, sizeof msg - 1);
            abort();
        }
    }
}

/* ------------------------------------------------------------------ finding work */

/* The rare cases: a pinned strand, priorities, deterministic mode, and every 31st pick,
 * which scans the priorities from the lowest so that LOW cannot starve. */
static STRAND__NOINLINE struct strand *local_pop_slow(struct strand__worker *w)
{
    struct strand *s = inbox_pop(w);
    if (s)
        return s;
    const int *order = prio_order[(w->tick % 31) == 0];
    for (int i = 0; i < PRIOS; i++) {
        int p = order[i];
        if (g.seeded)
            runq_shuffle(w, &w->q[p]);
        s = runq_get(&w->q[p]);
        if (s)
            return s;
        if (p != STRAND_PRIO_NORMAL)
            w->prio_mask &= ~(1u << p);
    }
    return NULL;
}

static inline struct strand *local_pop(struct strand__worker *w)
{
    struct strand *s = atomic_load_explicit(&w->runnext, memory_order_relaxed);
    if (s && !atomic_load_explicit(&w->inbox_n, memory_order_relaxed)) {
        s = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
        if (s)
            return s;
    }
    if (STRAND__LIKELY(w->prio_mask == 0 && !g.seeded && (w->tick % 31) != 0 &&
                       !atomic_load_explicit(&w->inbox_n, memory_order_relaxed)))
        return runq_get(&w->q[STRAND_PRIO_NORMAL]);
    s = local_pop_slow(w);
    if (s)
        return s;
    return atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel);
}

static void poll_timers(void)
{
    if (strand__timers_next() >= 0)
        strand__timers_run(strand_now());
}

/* Work without stealing: what a strand looks at before switching away. */
static struct strand *find_quick_pick(struct strand__worker *w)
{
    struct strand *s;
    if ((w->tick % 61) == 0) {
        poll_timers();
        if ((s = gq_pop(w)))
            return s;
    }
    if ((s = local_pop(w)))
        return s;
    return gq_pop(w);
}

/* `tick` counts picks that found a strand, not attempts: the idle loop polls a number of
 * times that depends on timing, and deterministic mode must not depend on that. */
static struct strand *find_quick(struct strand__worker *w)
{
    struct strand *s = find_quick_pick(w);
    if (s)
        w->tick++;
    return s;
}

/* Steal from the other workers, visiting them from a random start. */
static struct strand *steal(struct strand__worker *w, bool take_runnext)
{
    int n = strand__nworkers;
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    int start = (int)(w->rng % (uint64_t)n);
    struct strand *batch[RUNQ_SIZE / 2];
    for (int k = 0; k < n; k++) {
        struct strand__worker *v = strand__workers[(start + k) % n];
        if (v == w)
            continue;
        for (int i = 0; i < PRIOS; i++) {
            int p = prio_order[0][i];
            unsigned got = runq_grab(&v->q[p], batch);
            if (!got)
                continue;
            strand__worker_stat(w, STRAND__STAT_STEALS, got);
            for (unsigned j = 0; j + 1 < got; j++)
                strand__sched_push(w, batch[j], false);
            return batch[got - 1];
        }
        if (take_runnext && atomic_load_explicit(&v->runnext, memory_order_relaxed)) {
            struct strand *s = atomic_exchange_explicit(&v->runnext, NULL, memory_order_acq_rel);
            if (s) {
                strand__worker_stat(w, STRAND__STAT_STEALS, 1);
                return s;
            }
        }
    }
    return NULL;
}

static bool work_anywhere(struct strand__worker *w)
{
    if (atomic_load_explicit(&g.gq_n, memory_order_relaxed) ||
        atomic_load_explicit(&w->inbox_n, memory_order_relaxed))
        return true;
    for (int i = 0; i < strand__nworkers; i++) {
        struct strand__worker *v = strand__workers[i];
        if (atomic_load_explicit(&v->runnext, memory_order_relaxed))
            return true;
        for (int p = 0; p < PRIOS; p++)
            if (!runq_empty(&v->q[p]))
                return true;
    }
    int64_t next = strand__timers_next();
    return next >= 0 && next <= strand_now();
}

static void notify_quiet(void)
{
    if (atomic_load_explicit(&g.nwaiting, memory_order_seq_cst) == 0 || active_now() != 0)
        return;
    atomic_fetch_add_explicit(&g.quiet, 1, memory_order_seq_cst);
    strand__futex_wake(&g.quiet, INT32_MAX);
}

static void stop_spinning(struct strand__worker *w)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    atomic_fetch_sub_explicit(&g.nspinning, 1, memory_order_seq_cst);
}

static void start_spinning(struct strand__worker *w)
{
    w->spinning = true;
    atomic_fetch_add_explicit(&g.nspinning, 1, memory_order_seq_cst);
}

static void idle_block(struct strand__worker *w)
{
    int64_t next = strand__timers_next();
    bool no = false;
    if (atomic_compare_exchange_strong_explicit(&g.poller_busy, &no, true, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&w->in_poll, true, memory_order_seq_cst);
        if (atomic_load_explicit(&w->wake, memory_order_seq_cst) == 0) {
            int64_t timeout = -1;
            if (next >= 0) {
                timeout = next - strand_now();
                if (timeout < 0)
                    timeout = 0;
            }
            strand__netpoll(timeout);
        }
        atomic_store_explicit(&w->in_poll, false, memory_order_seq_cst);
        atomic_store_explicit(&g.poller_busy, false, memory_order_release);
        return;
    }
    strand__futex_wait(&w->wake, 0, next);
}

/* We were taken off the idle list by a waker. wakep (wake = 1) hands us the spinning
 * count it took; wake_worker (2) does not. The waker may still be on its way to storing
 * `wake`: wait for it, so a late store cannot fake a wake of our next sleep. */
static void accept_wake(struct strand__worker *w)
{
    unsigned k;
    while ((k = atomic_load_explicit(&w->wake, memory_order_seq_cst)) == 0)
        strand__cpu_relax();
    if (k == 1)
        w->spinning = true;
}

/* How long a spinning worker keeps looking before it sleeps, and how long a strand may
 * sit in another worker's "run next" before a spinner takes it. While a worker spins,
 * wakers skip the futex system call (wakep sees nspinning > 0), which is what keeps a
 * steady hand-off between two strands free of system calls; a strand just woken into "run
 * next" is usually run by its waker within a microsecond, so stealing it early would only
 * move a ping-pong across cores (Go waits ~3 us for the same reason). */
#define SPIN_NS        50000
#define RUNNEXT_WAIT_NS 3000

static struct strand *spin(struct strand__worker *w)
{
    int64_t start = strand_now(), now = start;
    struct strand *s;
    while (now - start < SPIN_NS) {
        if ((s = steal(w, now - start >= RUNNEXT_WAIT_NS)))
            return s;
        if ((s = find_quick(w)))
            return s;
        if (atomic_load_explicit(&g.stopping, memory_order_relaxed))
            return NULL;
        for (int i = 0; i < 16; i++)
            strand__cpu_relax();
        now = strand_now();
    }
    return NULL;
}

/* The idle loop's search: local, global, timers, network, stealing; sleeps when there is
 * nothing. Returns NULL only when the runtime stops. */
static struct strand *find_blocking(struct strand__worker *w)
{
    for (;;) {
        struct strand *s = find_quick(w);
        if (s)
            return s;
        poll_timers();
        if (strand__netpoll(0) > 0 && (s = local_pop(w)))
            return s;
        if ((s = local_pop(w)))
            return s;
        if (atomic_load_explicit(&g.stopping, memory_order_acquire))
            return NULL;
        if (!w->spinning) {
            int busy = strand__nworkers - atomic_load_explicit(&g.nidle, memory_order_relaxed);
            if (2 * atomic_load_explicit(&g.nspinning, memory_order_relaxed) < busy)
                start_spinning(w);
        }
        if (w->spinning && (s = spin(w)))
            return s;
        /* Going idle: list ourselves, stop spinning, full barrier, then look once more. */
        idle_push(w);
        bool was_spinning = w->spinning;
        stop_spinning(w);
        atomic_thread_fence(memory_order_seq_cst);
        if (work_anywhere(w) || atomic_load_explicit(&g.stopping, memory_order_acquire)) {
            if (idle_remove(w)) {
                if (was_spinning)
                    start_spinning(w);
            } else {
                accept_wake(w);
            }
            continue;
        }
        notify_quiet();
        strand__stack_trim_idle();
        idle_block(w);
        if (!idle_remove(w))
            accept_wake(w);
    }
}

/* ------------------------------------------------------------------ switching */

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

static size_t usable(const struct strand *s)
{
    return (size_t)((uintptr_t)s - (uintptr_t)s->stack_lo);
}

static void overflow_abort(struct strand *s)
{
    char msg[256];
    /* the same words as the guard-page report (signals.c), so one grep finds both */
    int n = snprintf(msg, sizeof msg,
                     "strand: stack overflow in strand %lld \"%s\": its stack of %zu bytes is "
                     "too small (found past its end at a switch or on release); raise "
                     "STRAND_STACK_SIZE or strand_attr.stack_size\n",
                     (long long)s->id, s->name, s->stack_size);
    (void)!write(2, msg, (size_t)n);
    abort();
}

static void release_strand(struct strand *s)
{
    if (!strand__stack_check(s))
        overflow_abort(s);
#if defined(STRAND_TSAN)
    __tsan_destroy_fiber(s->tsan_fiber);
    s->tsan_fiber = NULL;
#endif
    strand__stack_free(s);
}

/* Do what the strand that switched away on this worker asked for. */
static void finish_switch(struct strand__worker *w)
{
    struct strand *p = w->prev;
    if (!p)
        return;
    w->prev = NULL;
    switch (w->prev_action) {
    case PREV_YIELD:
        atomic_store_explicit(&p->state, STRAND__RUNNABLE, memory_order_relaxed);
        strand__sched_push(w, p, false);
        break;
    case PREV_PARK: {
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
    case PREV_EXIT:
        release_strand(p);
        break;
    }
}

void strand__entry_finish(void)
{
#if defined(STRAND_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    finish_switch(strand__worker_self());
}

static void run_on(struct strand__worker *w, struct strand *s)
{
    atomic_store_explicit(&s->state, STRAND__RUNNING, memory_order_relaxed);
    s->worker = w;
    set_current(w, s);
    strand__worker_stat(w, STRAND__STAT_SWITCHES, 1);
}

/* From the idle loop (the worker's own stack) into a strand and back. */
static void run_from_idle(struct strand__worker *w, struct strand *s)
{
    run_on(w, s);
    do_switch(&w->g0_fake, &w->sched_ctx, &s->ctx, s->stack_lo, usable(s), fiber_of(s));
    set_current(w, NULL);
    finish_switch(w);
}

void strand__schedule(struct strand *self, int action)
{
    struct strand__worker *w = strand__worker_self();
    /* An unguarded stack: is the strand below its stack right now (its own frame address
     * says so for free), or was its canary overwritten by an excursion that came back? The
     * canary sits at the far end of the stack, on another page: it is prefetched here and
     * read after the run queue work below, which hides most of that cache and TLB miss. */
    const void *canary = NULL;
    if (!self->guarded) {
        if ((uintptr_t)__builtin_frame_address(0) < (uintptr_t)self->stack_lo + 256)
            overflow_abort(self);
        canary = strand__stack_canary(self);
        __builtin_prefetch(canary);
    }
    struct strand *next = w->host ? NULL : find_quick(w);
    if (canary && !strand__stack_check(self))
        overflow_abort(self);
    if (!next && action == PREV_YIELD && !w->host) {
        /* nothing else to run here: carry on, but show the watchdog we are not stuck */
        strand__worker_stat(w, STRAND__STAT_YIELDS_IN_PLACE, 1);
        return;
    }
    w->prev = self;
    w->prev_action = action;
    void **fake = action == PREV_EXIT ? NULL : fake_slot(self);
    if (next) {
        run_on(w, next);
        do_switch(fake, &self->ctx, &next->ctx, next->stack_lo, usable(next), fiber_of(next));
    } else {
        set_current(w, NULL);
        do_switch(fake, &self->ctx, &w->sched_ctx, w->g0_lo, w->g0_size, w->g0_fiber);
    }
    /* Resumed, perhaps on another worker. */
    finish_switch(strand__worker_self());
}

void strand__park(void)
{
    strand__schedule(strand__current(), PREV_PARK);
}

/* ------------------------------------------------------------------ waiters */

void strand__waiter_prepare(strand__waiter *w, atomic_int *claim)
{
    struct strand *s = strand__current();
    w->s = s;
    if (!claim) {
        atomic_store_explicit(&w->own_claim, 0, memory_order_relaxed);
        claim = &w->own_claim;
    }
    w->claim = claim;
    atomic_store_explicit(&w->futex, 0, memory_order_relaxed);
    w->status = 0;
    w->next = w->prev = NULL;
    /* Relaxed is enough: the waiter is published under the object's lock (or with a
     * release), which carries this store to any waker that finds the waiter. */
    if (s)
        atomic_store_explicit(&s->state, STRAND__PARKING, memory_order_relaxed);
}

void strand__waiter_abort(strand__waiter *w)
{
    if (w->s)
        atomic_store_explicit(&w->s->state, STRAND__RUNNING, memory_order_relaxed);
}

void strand__waiter_wake(strand__waiter *w)
{
    struct strand *s = w->s;
    if (s) {
        strand__ready(s);
        return;
    }
    atomic_store_explicit(&w->futex, 1, memory_order_release);
    strand__futex_wake(&w->futex, 1);
}

static void waiter_timeout(strand__timer *t)
{
    strand__waiter *w = t->arg;
    if (!strand__waiter_claim(w))
        return;
    w->status = -ETIMEDOUT;
    strand__waiter_wake(w);
}

static int thread_block(strand__waiter *w, int64_t deadline)
{
    for (;;) {
        if (atomic_load_explicit(&w->futex, memory_order_acquire) == 1)
            return w->status;
        if (strand__futex_wait(&w->futex, 0, deadline) == -ETIMEDOUT &&
            atomic_load_explicit(&w->futex, memory_order_acquire) == 0) {
            if (strand__waiter_claim(w)) {
                w->status = -ETIMEDOUT;
                return -ETIMEDOUT;
            }
            deadline = -1; /* a waker claimed it first: its wake is on the way */
        }
    }
}

int strand__waiter_block(strand__waiter *w, int64_t deadline)
{
    if (!w->s)
        return thread_block(w, deadline);
    if (deadline < 0) {
        strand__park();
    } else {
        strand__timer t;
        strand__timer_start(&t, deadline, waiter_timeout, w);
        strand__park();
        strand__timer_stop(&t);
    }
    w->s->wait_kind = STRAND__WAIT_NONE;
    return w->status;
}

/* ------------------------------------------------------------------ yield */

void strand_yield(void)
{
    struct strand *s = strand__current();
    if (!s) {
        sched_yield();
        return;
    }
    strand__schedule(s, PREV_YIELD);
}

void strand_maybe_yield(void)
{
    int every = strand__cfg.yield_interval;
    if (every <= 0)
        return;
    struct strand *s = strand__current();
    if (s && ++s->yield_count >= (uint32_t)every) {
        s->yield_count = 0;
        strand__schedule(s, PREV_YIELD);
    }
}

/* ------------------------------------------------------------------ workers */

static void g0_bounds(struct strand__worker *w)
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

static void *worker_main(void *arg)
{
    struct strand__worker *w = arg;
    set_worker(w);
    g0_bounds(w);
    strand__diag_thread_start();
    for (;;) {
        struct strand *s = find_blocking(w);
        if (!s)
            break;
        if (w->spinning) {
            /* Found work while spinning: let another idle worker take over the search. */
            stop_spinning(w);
            strand__wakep();
        }
        run_from_idle(w, s);
    }
    set_worker(NULL);
    return NULL;
}

static struct strand__worker *worker_new(int i, uint64_t seed)
{
    struct strand__worker *w = aligned_alloc(STRAND__CACHELINE,
                                             (sizeof *w + STRAND__CACHELINE - 1) &
                                                 ~(size_t)(STRAND__CACHELINE - 1));
    if (!w)
        return NULL;
    memset(w, 0, sizeof *w);
    w->index = i;
    w->rng = seed ? seed + (uint64_t)i * 0x9E3779B97F4A7C15ull
                  : (uint64_t)(uintptr_t)w ^ 0x9E3779B97F4A7C15ull;
    if (!w->rng)
        w->rng = 1;
    w->seed_rng = seed ? seed * 0x9E3779B97F4A7C15ull + 1 : 1;
    return w;
}

int strand__sched_start(void)
{
    int n = strand__cfg.host_driven ? 1 : strand__cfg.workers;
    g.host = strand__cfg.host_driven;
    g.seeded = strand__cfg.seed != 0 && n == 1;
    atomic_store(&g.stopping, false);
    struct strand__worker **ws = calloc((size_t)n, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        if (!(ws[i] = worker_new(i, strand__cfg.seed)))
            return -ENOMEM;
    ws[0]->host = g.host;
    strand__workers = ws;
    strand__nworkers = n;
    if (g.host)
        return 0;
    for (int i = 0; i < n; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        int rc = pthread_create(&ws[i]->thread, &a, worker_main, ws[i]);
        pthread_attr_destroy(&a);
        if (rc != 0)
            return -rc;
    }
    return 0;
}

void strand__sched_stop(void)
{
    atomic_store_explicit(&g.stopping, true, memory_order_seq_cst);
    if (!g.host) {
        for (int i = 0; i < strand__nworkers; i++) {
            struct strand__worker *w = strand__workers[i];
            atomic_store_explicit(&w->wake, 2, memory_order_seq_cst);
            strand__futex_wake(&w->wake, 1);
        }
        strand__netpoll_wake();
        for (int i = 0; i < strand__nworkers; i++)
            pthread_join(strand__workers[i]->thread, NULL);
    }
    /* The counters of these workers live on in ext_stat, so that spawned - completed
     * stays right for the next runtime (strand_wait_all depends on it). */
    for (int i = 0; i < strand__nworkers; i++) {
        struct strand__worker *w = strand__workers[i];
        for (int k = 0; k < STRAND__STAT_COUNT; k++) {
            uint64_t v = atomic_exchange_explicit(&w->stat[k], 0, memory_order_relaxed);
            atomic_fetch_add_explicit(&g.ext_stat[k], v, memory_order_relaxed);
        }
    }
    /* Workers are kept (leaked) if strands are still parked: their control blocks point at
     * them. Otherwise their caches go back to the pool and they are freed; their counters
     * already live on in ext_stat. */
    if (active_now() == 0) {
        struct strand__worker **ws = strand__workers;
        int n = strand__nworkers;
        strand__nworkers = 0;
        strand__workers = NULL;
        for (int i = 0; i < n; i++) {
            while (ws[i]->nstacks)
                strand__stack_spill(ws[i]->stacks[--ws[i]->nstacks]);
            free(ws[i]);
        }
        free(ws);
    }
    g.idle_head = NULL;
    atomic_store(&g.nidle, 0);
    atomic_store(&g.nspinning, 0);
}

bool strand__sched_stopping(void)
{
    return atomic_load_explicit(&g.stopping, memory_order_acquire);
}

/* ------------------------------------------------------------------ spawning */

/* Queue a new strand: on the calling worker ("run next" when a strand spawns, like Go),
 * else on the global queue (or its pinned worker's inbox). */
void strand__sched_spawn(struct strand *s)
{
    struct strand__worker *w = strand__worker_self();
    atomic_store_explicit(&s->state, STRAND__RUNNABLE, memory_order_relaxed);
    if (w && !w->host) {
        strand__sched_push(w, s, strand__current() != NULL);
    } else if (s->pinned >= 0) {
        inbox_push(strand__workers[s->pinned], s);
        wake_worker(strand__workers[s->pinned]);
        return;
    } else {
        gq_push(s);
    }
    strand__wakep();
}

/* ------------------------------------------------------------------ waiting for quiet */

int strand__sched_wait_quiet(void)
{
    atomic_fetch_add_explicit(&g.nwaiting, 1, memory_order_seq_cst);
    for (;;) {
        unsigned seq = atomic_load_explicit(&g.quiet, memory_order_seq_cst);
        if (active_now() == 0)
            break;
        strand__futex_wait(&g.quiet, seq, strand_now() + 100000000); /* re-check every 100 ms */
    }
    atomic_fetch_sub_explicit(&g.nwaiting, 1, memory_order_seq_cst);
    return 0;
}

/* ------------------------------------------------------------------ host-driven */

int strand_run_until_idle(int budget, int *more)
{
    if (more)
        *more = 0;
    if (!g.host || !strand__workers)
        return -EINVAL;
    if (budget <= 0 || strand__current())
        return -EINVAL;
    struct strand__worker *w = strand__workers[0];
    set_worker(w);
    g0_bounds(w); /* the host's stack serves as the idle context */
    static _Thread_local bool diag_ready;
    if (!diag_ready) { /* an alternate signal stack for the overflow report */
        strand__diag_thread_start();
        diag_ready = true;
    }
    int ran = 0;
    while (ran < budget) {
        struct strand *s = find_quick(w);
        if (!s) {
            poll_timers();
            strand__netpoll(0);
            s = local_pop(w);
        }
        if (!s)
            break;
        run_from_idle(w, s);
        ran++;
    }
    if (more)
        *more = work_anywhere(w);
    notify_quiet();
    set_worker(NULL);
    return ran;
}

int strand_poll_fd(void)
{
    if (strand__runtime_ensure() != 0)
        return -EINVAL;
    return strand__netpoll_fd();
}

bool strand__sched_host(void)
{
    return g.host;
}

uint64_t strand__active(void)
{
    return active_now();
}
