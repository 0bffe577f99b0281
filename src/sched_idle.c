/*
 * sched_idle.c - idle workers: the idle list, spinning, the one wake routine, sleeping (in
 * the poller or on the worker's futex), and waking a sleeper when a timer moves the earliest
 * deadline before its wake-up.
 *
 * Work and sleep (Go's rule). A worker out of work becomes "spinning" (bounded: at most half
 * the busy workers spin, sched_find.c) and steals. Before it sleeps it puts itself on the
 * idle list, stops spinning, issues a full barrier and rechecks every queue; whoever makes
 * work runnable publishes it, issues a full barrier (strand__wakep), then wakes an idle
 * worker unless one is already spinning. One of the two always sees the other, so nothing
 * sleeps while work is queued.
 *
 * Waking. A waker stores a reason in w->wake (enum strand__wake_reason) and then reads
 * w->in_poll; a sleeper stores in_poll (if it is the poller) and then reads wake; all
 * seq_cst. So either the sleeper sees the reason before blocking in epoll_wait / futex_wait
 * (the futex compares the word in the kernel), or the waker sees it is in the poller and
 * interrupts it (strand__netpoll_wake), else futex-wakes it. A worker taken off the idle list
 * by a waker (SPIN, PINNED) must consume that waker's store before it may sleep again
 * (strand__sched_accept_wake), or a late store would fake a wake of its next sleep.
 *
 * Deadlines (no lost timer wake-up). One sleeping worker (the poller) blocks in the network
 * poller, the others on their futex; each with the earliest timer as its deadline. When a
 * timer start moves a heap's earliest deadline earlier (strand__sched_timer_start, the only
 * way the process's earliest deadline moves earlier), deadline_moved decides who wakes.
 * A sleeper publishes when it will wake by itself (sleep_until, seq_cst) BEFORE it reads the
 * heap tops (seq_cst) that decide its final timeout; a timer start publishes its heap top (seq_cst,
 * timer.c) BEFORE it reads the sleepers' sleep_until (seq_cst, deadline_moved). In the single
 * order of seq_cst operations one of the two comes first: either the sleeper's read sees the
 * new top and it sleeps no later than it, or the start sees the sleeper's sleep_until and, if
 * that is later than the new deadline, wakes it (reason DEADLINE) to recompute. A sleeper that
 * has not published yet (sleep_until 0) will read the new top itself; `nidle` is a safe first
 * filter because it is incremented (seq_cst) before sleep_until is published. The poll
 * timeout is computed here, once, and passed to strand__netpoll whole.
 *
 * Locking: the idle list and each worker's `idle` flag are under strand__sched.idle_lock.
 *
 * Spares (sched_monitor.c) that hold a role use this list like any worker; a parked spare is
 * not on it. Leaving the list kicks the monitor if it sleeps (it sleeps only while every
 * running struct is listed here).
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

static atomic_bool poller_taken; /* a sleeping worker is (about to be) in the poller */

/* ------------------------------------------------------------------ the idle list */

void strand__sched_idle_push(struct strand__worker *w)
{
    struct strand__sched *sc = &strand__sched;
    pthread_mutex_lock(&sc->idle_lock);
    atomic_store_explicit(&w->wake, STRAND__WAKE_NONE, memory_order_relaxed);
    atomic_store_explicit(&w->idle, true, memory_order_relaxed);
    w->idle_next = sc->idle_head;
    sc->idle_head = w;
    atomic_fetch_add_explicit(&sc->nidle, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&sc->idle_lock);
}

static void idle_unlink_locked(struct strand__worker *w)
{
    struct strand__worker **pp = &strand__sched.idle_head;
    while (*pp && *pp != w)
        pp = &(*pp)->idle_next;
    if (*pp)
        *pp = w->idle_next;
    atomic_store_explicit(&w->idle, false, memory_order_relaxed);
    atomic_fetch_sub_explicit(&strand__sched.nidle, 1, memory_order_seq_cst);
    /* The monitor sleeps only while every running struct is on this list; it stores
     * strand__monitor_asleep and then reads nidle, we decrement nidle and then read the flag
     * (all seq_cst): one of the two sees the other (sched_monitor.c). */
    if (atomic_load_explicit(&strand__monitor_asleep, memory_order_seq_cst))
        strand__monitor_kick();
}

/* true if w was still on the list (nobody woke it) and is now off it */
bool strand__sched_idle_remove(struct strand__worker *w)
{
    bool was = false;
    pthread_mutex_lock(&strand__sched.idle_lock);
    if (atomic_load_explicit(&w->idle, memory_order_relaxed)) {
        idle_unlink_locked(w);
        was = true;
    }
    pthread_mutex_unlock(&strand__sched.idle_lock);
    return was;
}

static struct strand__worker *idle_pop(void)
{
    pthread_mutex_lock(&strand__sched.idle_lock);
    struct strand__worker *w = strand__sched.idle_head;
    if (w)
        idle_unlink_locked(w);
    pthread_mutex_unlock(&strand__sched.idle_lock);
    return w;
}

/* ------------------------------------------------------------------ spinning */

void strand__sched_start_spinning(struct strand__worker *w)
{
    w->spinning = true;
    atomic_fetch_add_explicit(&strand__sched.nspinning, 1, memory_order_seq_cst);
}

void strand__sched_stop_spinning(struct strand__worker *w)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    atomic_fetch_sub_explicit(&strand__sched.nspinning, 1, memory_order_seq_cst);
}

/* ------------------------------------------------------------------ waking */

/* The one wake routine (the protocol is at the top of this file). DEADLINE only replaces
 * NONE: it must not overwrite a hand-off that accept_wake waits for. */
static void wake(struct strand__worker *w, enum strand__wake_reason why)
{
    if (why == STRAND__WAKE_DEADLINE || why == STRAND__WAKE_RECHECK) {
        unsigned none = STRAND__WAKE_NONE;
        if (!atomic_compare_exchange_strong_explicit(&w->wake, &none, why, memory_order_seq_cst,
                                                     memory_order_relaxed))
            return; /* already being woken */
    } else {
        atomic_store_explicit(&w->wake, why, memory_order_seq_cst);
    }
    if (atomic_load_explicit(&w->in_poll, memory_order_seq_cst))
        strand__netpoll_wake();
    else
        strand__futex_wake(&w->wake, 1);
}

/* Host-driven there is one worker, the host's thread, which sleeps in its own poll() on
 * strand_poll_fd(): a wake from another thread interrupts that; from the host's thread
 * there is nothing to do. True if the mode is host-driven (the wake is then done). */
static bool host_wake(void)
{
    if (!strand__sched.host)
        return false;
    if (!sched_worker())
        strand__netpoll_wake();
    return true;
}

/* We were taken off the idle list by a waker: SPIN hands us the spinning count it took,
 * PINNED does not. The waker may still be on its way to storing `wake`: wait for it. */
void strand__sched_accept_wake(struct strand__worker *w)
{
    unsigned k;
    while ((k = atomic_load_explicit(&w->wake, memory_order_seq_cst)) == STRAND__WAKE_NONE ||
           k == STRAND__WAKE_DEADLINE || k == STRAND__WAKE_RECHECK)
        strand__cpu_relax();
    if (k == STRAND__WAKE_SPIN)
        w->spinning = true;
}

/* Kick an idle worker if no worker is looking for work. */
void strand__wakep(void)
{
    /* Full barrier between publishing work and reading the idle/spinning counts: pairs
     * with the barrier of a worker going idle (see the top of this file). */
    atomic_thread_fence(memory_order_seq_cst);
    if (host_wake())
        return;
    if (atomic_load_explicit(&strand__sched.nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&strand__sched.nidle, memory_order_relaxed) == 0)
        return;
    int zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&strand__sched.nspinning, &zero, 1,
                                                 memory_order_seq_cst, memory_order_relaxed))
        return;
    struct strand__worker *w = idle_pop();
    if (!w) {
        atomic_fetch_sub_explicit(&strand__sched.nspinning, 1, memory_order_seq_cst);
        return;
    }
    wake(w, STRAND__WAKE_SPIN); /* it wakes up spinning: the nspinning we took is its */
}

/* Wake a particular worker: a strand pinned to it became runnable. */
void strand__sched_wake_pinned(struct strand__worker *w)
{
    atomic_thread_fence(memory_order_seq_cst); /* as in wakep: the inbox push, then `idle` */
    if (host_wake())
        return;
    if (!atomic_load_explicit(&w->idle, memory_order_seq_cst))
        return; /* running, or rechecking its inbox before it sleeps */
    bool took = false;
    pthread_mutex_lock(&strand__sched.idle_lock);
    if (atomic_load_explicit(&w->idle, memory_order_relaxed)) {
        idle_unlink_locked(w);
        took = true;
    }
    pthread_mutex_unlock(&strand__sched.idle_lock);
    if (took)
        wake(w, STRAND__WAKE_PINNED);
}

/* The caller has set w->leave (seq_cst): if w sleeps, wake it to look. A w that is about
 * to sleep rechecks `leave` after its full barrier (sched_find.c), so it cannot miss both. */
void strand__sched_wake_recheck(struct strand__worker *w)
{
    wake(w, STRAND__WAKE_RECHECK);
}

/* strand__sched_stop: the caller has set `stopping`; w sees it once awake. */
void strand__sched_wake_stop(struct strand__worker *w)
{
    wake(w, STRAND__WAKE_STOP);
}

/* ------------------------------------------------------------------ sleeping */

/* Publish when we would wake by ourselves, then read the heap tops again (see the top). */
static int64_t publish_sleep(struct strand__worker *w)
{
    int64_t next = strand__timers_next();
    int64_t until = next < 0 ? INT64_MAX : next;
    if (until <= 0)
        until = 1; /* 0 means awake */
    atomic_store_explicit(&w->sleep_until, until, memory_order_seq_cst);
    next = strand__timers_next();
    return next >= 0 && next < until ? next : until;
}

/* Block until woken or the earliest timer is due. The first sleeper to get there blocks in
 * the network poller (so fd readiness wakes strands while all workers sleep), the others on
 * their futex. */
void strand__sched_sleep(struct strand__worker *w)
{
    bool no = false;
    bool poller = atomic_compare_exchange_strong_explicit(&poller_taken, &no, true,
                                                          memory_order_acq_rel,
                                                          memory_order_relaxed);
    if (poller)
        atomic_store_explicit(&w->in_poll, true, memory_order_seq_cst);
    int64_t until = publish_sleep(w);
    if (poller) {
        if (atomic_load_explicit(&w->wake, memory_order_seq_cst) == STRAND__WAKE_NONE) {
            int64_t timeout = -1;
            if (until != INT64_MAX) {
                timeout = until - strand_now();
                if (timeout < 0)
                    timeout = 0;
            }
            strand__netpoll(timeout);
        }
        atomic_store_explicit(&w->in_poll, false, memory_order_seq_cst);
        atomic_store_explicit(&poller_taken, false, memory_order_release);
    } else {
        strand__futex_wait(&w->wake, STRAND__WAKE_NONE, until == INT64_MAX ? -1 : until);
    }
    /* relaxed: a timer start that still reads the old value only makes a spurious wake */
    atomic_store_explicit(&w->sleep_until, 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------ timers */

/* A heap's earliest deadline moved earlier, to `when`: wake the poller if it would sleep
 * past it, and one futex sleeper that would: the poller may find work and stop sleeping,
 * and a sleeper that knows the deadline keeps the timer on time then. */
static void deadline_moved(int64_t when)
{
    if (strand__sched.host) {
        strand__netpoll_timer_hint(when); /* the host polls the alarm with strand_poll_fd */
        return;
    }
    if (atomic_load_explicit(&strand__sched.nidle, memory_order_seq_cst) == 0)
        return;
    struct strand__worker *poller = NULL, *sleeper = NULL;
    pthread_mutex_lock(&strand__sched.idle_lock);
    for (struct strand__worker *w = strand__sched.idle_head; w && !(poller && sleeper);
         w = w->idle_next) {
        if (atomic_load_explicit(&w->sleep_until, memory_order_seq_cst) <= when)
            continue; /* not asleep yet (0), or wakes in time anyway */
        if (atomic_load_explicit(&w->in_poll, memory_order_relaxed))
            poller = w;
        else if (!sleeper)
            sleeper = w;
    }
    if (poller)
        wake(poller, STRAND__WAKE_DEADLINE);
    if (sleeper)
        wake(sleeper, STRAND__WAKE_DEADLINE);
    pthread_mutex_unlock(&strand__sched.idle_lock);
}

void strand__sched_timer_start(strand__timer *t, int64_t when, void (*fn)(strand__timer *),
                               void *arg)
{
    if (strand__timer_start(t, when, fn, arg))
        deadline_moved(t->when);
}
