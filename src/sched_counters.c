/*
 * sched_counters.c - the runtime's counters (enum strand__stat), the active and peak
 * strand counts derived from them, worker introspection for the watchdog and the dump, and
 * waiting until no strand is alive (strand_wait_all).
 *
 * Each worker counts in its own w->stat[] (written by its thread only, relaxed atomics so
 * any thread may sum them); counts made off any worker, and those of stopped workers, go to
 * `retired` (relaxed RMWs; release for COMPLETED). The sums are not a snapshot of every
 * counter at one instant: each counter only grows, which is all the readers need. The one
 * relation readers rely on is made to hold: `completed` is summed first, with acquire loads
 * of counters stored with release, so every completion it sees comes after a spawn that the
 * later sum of `spawned` sees too (the spawner counts before it queues the strand, and the
 * strand's worker took it from that queue with acquire). Hence spawned >= completed in any
 * one collection, and active = spawned - completed from the same collection: strand_stats
 * always shows spawned == completed + active.
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

static atomic_ullong retired[STRAND__STAT_COUNT]; /* off any worker, or of stopped workers */
static atomic_ullong peak;
static atomic_uint   quiet;    /* futex for strand__sched_wait_quiet: bumped when quiet */
static atomic_int    nwaiting; /* threads in strand__sched_wait_quiet */

void strand__stat_add(int which, uint64_t n)
{
    struct strand__worker *w = sched_worker();
    if (w)
        strand__worker_stat(w, which, n);
    else
        atomic_fetch_add_explicit(&retired[which], n, memory_order_release);
}

static uint64_t stat_sum(int which)
{
    /* acquire: see the header comment (what a completion seen implies) */
    uint64_t v = atomic_load_explicit(&retired[which], memory_order_acquire);
    int n = strand__sched_nthreads(); /* spares count in their own structs */
    for (int i = 0; i < n; i++)
        v += atomic_load_explicit(&strand__workers[i]->stat[which], memory_order_acquire);
    return v;
}

/* Completed first, then spawned, then the rest (see the header comment). */
void strand__stats_collect(uint64_t out[STRAND__STAT_COUNT])
{
    out[STRAND__STAT_COMPLETED] = stat_sum(STRAND__STAT_COMPLETED);
    out[STRAND__STAT_SPAWNED] = stat_sum(STRAND__STAT_SPAWNED);
    for (int k = 0; k < STRAND__STAT_COUNT; k++)
        if (k != STRAND__STAT_COMPLETED && k != STRAND__STAT_SPAWNED)
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

uint64_t strand__active(void)
{
    return active_now();
}

static void peak_update(uint64_t active)
{
    unsigned long long p = atomic_load_explicit(&peak, memory_order_relaxed);
    while (active > p && !atomic_compare_exchange_weak_explicit(&peak, &p, active,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed))
        ;
}

/* The peak, raised to `active` first (a figure from the caller's collection). */
uint64_t strand__peak_with(uint64_t active)
{
    peak_update(active);
    return atomic_load_explicit(&peak, memory_order_relaxed);
}

/* Spawn bookkeeping; the peak is sampled every 64 spawns of a worker (and at every
 * strand_stats call), which keeps a shared cache line off the spawn path. */
void strand__count_spawn(void)
{
    struct strand__worker *w = sched_worker();
    if (!w) {
        atomic_fetch_add_explicit(&retired[STRAND__STAT_SPAWNED], 1, memory_order_relaxed);
        peak_update(active_now());
        return;
    }
    strand__worker_stat(w, STRAND__STAT_SPAWNED, 1);
    if ((atomic_load_explicit(&w->stat[STRAND__STAT_SPAWNED], memory_order_relaxed) & 63) == 0)
        peak_update(active_now());
}

/* A stopping worker's counts move to `retired`, so the totals survive it. */
void strand__sched_retire_counters(struct strand__worker *w)
{
    for (int k = 0; k < STRAND__STAT_COUNT; k++) {
        uint64_t v = atomic_exchange_explicit(&w->stat[k], 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&retired[k], v, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------ introspection */

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

/* ------------------------------------------------------------------ waiting for quiet */

/* An idle worker (or the host) saw nothing to run: wake strand_wait_all if nothing lives. */
void strand__sched_notify_quiet(void)
{
    if (atomic_load_explicit(&nwaiting, memory_order_seq_cst) == 0 || active_now() != 0)
        return;
    atomic_fetch_add_explicit(&quiet, 1, memory_order_seq_cst);
    strand__futex_wake(&quiet, INT32_MAX);
}

int strand__sched_wait_quiet(void)
{
    atomic_fetch_add_explicit(&nwaiting, 1, memory_order_seq_cst);
    for (;;) {
        unsigned seq = atomic_load_explicit(&quiet, memory_order_seq_cst);
        if (active_now() == 0)
            break;
        strand__futex_wait(&quiet, seq, strand_now() + 100000000); /* re-check every 100 ms */
    }
    atomic_fetch_sub_explicit(&nwaiting, 1, memory_order_seq_cst);
    return 0;
}
