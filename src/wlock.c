/*
 * wlock.c - the contended path of strand__wlock (wlock.h): spin on a plain load while the
 * holder is likely still running, then nap on the lock word (futex) with a timeout that
 * doubles from 20 us to 1 ms, trying again after each. Nothing is ordered here beyond what
 * the acquiring exchange in strand__wlock_try gives.
 *
 * Why timed naps and no wake: a wake would need the release to find out whether anyone
 * sleeps (an exchange instead of a store on every release, the hot path); a nap costs only
 * the waiter, and only when the holder has been descheduled, which is when a few dozen
 * microseconds of extra latency are lost in the noise of the preemption itself. A nap on a
 * word that is already 0 returns at once (the futex compares first), so a release just
 * before the nap is not slept through.
 */
#include "wlock.h"

#include <time.h>

/* About a microsecond of spinning: longer than any section under a wlock when its holder
 * runs, shorter than what a trip to the kernel and back costs. */
#define WLOCK_SPINS     200
#define WLOCK_NAP_FIRST 20000    /* ns */
#define WLOCK_NAP_MAX   1000000  /* ns */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void strand__wlock_slow(strand__wlock *l)
{
    for (unsigned spins = 0; spins < WLOCK_SPINS; spins++) {
        if (atomic_load_explicit(&l->held, memory_order_relaxed) == 0 && strand__wlock_try(l))
            return;
        strand__cpu_relax();
    }
    for (int64_t nap = WLOCK_NAP_FIRST;; nap = nap * 2 < WLOCK_NAP_MAX ? nap * 2 : WLOCK_NAP_MAX) {
        if (atomic_load_explicit(&l->held, memory_order_relaxed) == 0 && strand__wlock_try(l))
            return;
        strand__futex_wait(&l->held, 1, mono_ns() + nap);
    }
}
