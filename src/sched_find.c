/*
 * sched_find.c - how a worker with nothing to run finds work: due timers, the network
 * poller, the global queue, stealing from the other workers while "spinning", and finally
 * going idle (the sleep itself and the wake protocol are in sched_idle.c).
 *
 * A thief takes half of a victim's ring, else the oldest entry of its spawn deque (work-first:
 * the child nearest the root of a spawn tree, the biggest piece of work), else its run next.
 *
 * Invariants. Only the worker itself runs these on its own struct (its rings' producer side,
 * rng, tick, spinning); other workers' rings are only read or grabbed from (the consumer
 * side, by CAS) and their "run next" slot only emptied by exchange. A worker steals a strand
 * from another's "run next" only after spinning RUNNEXT_WAIT_NS, so a hand-off between two
 * strands stays on one core. Stealing and the last recheck look at every struct in use,
 * spares included (strand__sched_nthreads).
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

/* How long a spinning worker keeps looking before it sleeps, and how long a strand may
 * sit in another worker's "run next" before a spinner takes it. While a worker spins,
 * wakers skip the futex system call (wakep sees nspinning > 0), which is what keeps a
 * steady hand-off between two strands free of system calls; a strand just woken into "run
 * next" is usually run by its waker within a microsecond, so stealing it early would only
 * move a ping-pong across cores (Go waits ~3 us for the same reason). */
#define SPIN_NS         50000
#define RUNNEXT_WAIT_NS 3000

/* Run the due timers. Host-driven, the host's alarm is then re-armed for the next one (the
 * host sleeps in its own poll(), not in the scheduler). Running timers only moves the
 * earliest deadline later, so no sleeping worker needs a wake for it. */
void strand__sched_poll_timers(void)
{
    if (strand__timers_next() < 0)
        return;
    int64_t next = strand__timers_run(strand_now());
    if (strand__sched.host && next >= 0)
        strand__netpoll_timer_hint(next);
}

/* Steal from the other workers, visiting them from a random start. */
static struct strand *steal(struct strand__worker *w, bool take_runnext)
{
    int n = strand__sched_nthreads(); /* spares too: a stuck one's queue is fair game */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    int start = (int)(w->rng % (uint64_t)n);
    struct strand *batch[STRAND__RUNQ_SIZE / 2];
    for (int k = 0; k < n; k++) {
        struct strand__worker *v = strand__workers[(start + k) % n];
        if (v == w)
            continue;
        for (int i = 0; i < STRAND__PRIOS; i++) {
            int p = strand__prio_order[0][i];
            unsigned got = strand__runq_grab(&v->q[p], batch);
            if (!got)
                continue;
            strand__worker_stat(w, STRAND__STAT_STEALS, got);
            for (unsigned j = 0; j + 1 < got; j++)
                strand__sched_push(w, batch[j], false);
            return batch[got - 1];
        }
        struct strand *child = strand__deque_steal(&v->spawned); /* its oldest child */
        if (child) {
            strand__worker_stat(w, STRAND__STAT_STEALS, 1);
            return child;
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

/* Is anything runnable anywhere (or a timer due)? The recheck of a worker going idle. */
bool strand__sched_work_anywhere(struct strand__worker *w)
{
    if (strand__globalq_len(&strand__sched.gq) ||
        atomic_load_explicit(&w->inbox_n, memory_order_relaxed))
        return true;
    if (strand__sched_leaving(w))
        return true; /* not work, but a reason not to sleep: the role moves */
    struct strand__worker *c = atomic_load_explicit(&w->charge, memory_order_acquire);
    if (c && atomic_load_explicit(&c->inbox_n, memory_order_relaxed))
        return true;
    int n = strand__sched_nthreads();
    for (int i = 0; i < n; i++) {
        struct strand__worker *v = strand__workers[i];
        if (atomic_load_explicit(&v->runnext, memory_order_relaxed) ||
            !strand__deque_empty(&v->spawned))
            return true;
        for (int p = 0; p < STRAND__PRIOS; p++)
            if (!strand__runq_empty(&v->q[p]))
                return true;
    }
    int64_t next = strand__timers_next();
    return next >= 0 && next <= strand_now();
}

static struct strand *spin(struct strand__worker *w)
{
    int64_t start = strand_now(), now = start;
    struct strand *s;
    while (now - start < SPIN_NS) {
        if ((s = steal(w, now - start >= RUNNEXT_WAIT_NS)))
            return s;
        if ((s = strand__sched_find_quick(w)))
            return s;
        if (atomic_load_explicit(&strand__sched.stopping, memory_order_relaxed))
            return NULL;
        for (int i = 0; i < 16; i++)
            strand__cpu_relax();
        now = strand_now();
    }
    return NULL;
}

static void maybe_start_spinning(struct strand__worker *w)
{
    if (w->spinning)
        return;
    int busy = strand__sched_nrunning() - atomic_load_explicit(&strand__sched.nidle,
                                                               memory_order_relaxed);
    if (2 * atomic_load_explicit(&strand__sched.nspinning, memory_order_relaxed) < busy)
        strand__sched_start_spinning(w);
}

/* The role moves (sched_monitor.c): stop looking. A spinner hands the search on first, as
 * a spinner that found work does, or a wake skipped because it spun would be lost. */
static bool leave_now(struct strand__worker *w)
{
    if (!strand__sched_leaving(w))
        return false;
    if (w->spinning) {
        strand__sched_stop_spinning(w);
        strand__wakep();
    }
    return true;
}

/* The idle loop's search: local, global, timers, network, stealing; sleeps when there is
 * nothing. Returns NULL when the runtime stops, or when w->leave asks the thread to go back
 * to its own loop (hand-off). A spare standing in for a worker also takes the strands pinned
 * to that worker, when it has nothing else queued. */
struct strand *strand__sched_find_blocking(struct strand__worker *w)
{
    for (;;) {
        if (leave_now(w))
            return NULL;
        struct strand *s = strand__sched_find_quick(w);
        if (s)
            return s;
        if (w->spare && (s = strand__sched_standin_pop(w)))
            return s;
        strand__sched_poll_timers();
        if (strand__netpoll(0) > 0 && (s = strand__sched_local_pop(w)))
            return s;
        if ((s = strand__sched_local_pop(w)))
            return s;
        if (atomic_load_explicit(&strand__sched.stopping, memory_order_acquire))
            return NULL;
        maybe_start_spinning(w);
        if (w->spinning && (s = spin(w)))
            return s;
        /* Going idle: list ourselves, stop spinning, full barrier, then look once more. */
        strand__sched_idle_push(w);
        bool was_spinning = w->spinning;
        strand__sched_stop_spinning(w);
        atomic_thread_fence(memory_order_seq_cst);
        if (strand__sched_work_anywhere(w) ||
            atomic_load_explicit(&strand__sched.stopping, memory_order_acquire)) {
            if (strand__sched_idle_remove(w)) {
                if (was_spinning)
                    strand__sched_start_spinning(w);
            } else {
                strand__sched_accept_wake(w);
            }
            continue;
        }
        strand__sched_notify_quiet();
        strand__stack_trim_idle(&w->caches.stacks);
        strand__sched_sleep(w);
        if (!strand__sched_idle_remove(w))
            strand__sched_accept_wake(w);
    }
}
