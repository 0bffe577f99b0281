/*
 * wlock.c - the contended path of strand__wlock (wlock.h): spin on a plain load while the
 * holder is likely still running, then sleep on the lock word (futex) until a release
 * wakes us. Nothing is ordered here beyond what the acquiring exchanges give.
 *
 * Why no wake-up is lost: a sleeper first exchanges 2 into the word (taking the lock if
 * it was 0) and sleeps only while the word still reads 2; the holder's release exchanges 0
 * in and sees the 2, so it wakes one. A woken thread takes the lock with 2 again (it
 * cannot know whether others sleep), so a release after it wakes the next: at worst one
 * needless wake call, never a sleeper left behind.
 */
#include "wlock.h"

/* About a microsecond of spinning: longer than any section under a wlock when its holder
 * runs, shorter than what a trip to the kernel and back costs. */
#define WLOCK_SPINS 200

void strand__wlock_slow(strand__wlock *l)
{
    for (unsigned spins = 0; spins < WLOCK_SPINS; spins++) {
        unsigned v = atomic_load_explicit(&l->held, memory_order_relaxed);
        if (v == 0 && strand__wlock_try(l))
            return;
        if (v == 2)
            break; /* others sleep already: join them rather than compete */
        strand__cpu_relax();
    }
    /* acquire: as strand__wlock_try */
    while (atomic_exchange_explicit(&l->held, 2, memory_order_acquire) != 0)
        strand__futex_wait(&l->held, 2, -1);
}

void strand__wlock_wake(strand__wlock *l)
{
    strand__futex_wake(&l->held, 1);
}
