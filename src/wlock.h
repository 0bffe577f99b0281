/*
 * wlock.h - the lock of every wait queue (channels, select, the sync objects): a small
 * futex lock for sections of a few dozen instructions.
 *
 * States of `held`: 0 unlocked, 1 locked, 2 locked and a thread may sleep on it. The
 * uncontended acquire is one CAS and the release one exchange, both inline. A contended
 * acquire spins on a plain load for a while (the holder is usually running and about to
 * leave), then marks the lock 2 and sleeps in the kernel (wlock.c); a release that finds
 * 2 wakes one sleeper. So the kernel is entered only when a holder was descheduled (or
 * the section is long), never to yield blindly: a plain thread or a worker holding it may
 * be preempted on a busy machine, and sleeping until its release beats spinning through
 * a time slice or polling with sched_yield. Zero is unlocked, so zeroed mutexes and wait
 * groups are valid.
 */
#ifndef STRAND_WLOCK_H
#define STRAND_WLOCK_H

#include "internal.h"

typedef struct { atomic_uint held; } strand__wlock;

void strand__wlock_slow(strand__wlock *l);
void strand__wlock_wake(strand__wlock *l);

static inline bool strand__wlock_try(strand__wlock *l)
{
    unsigned open = 0;
    /* acquire: the section's reads must not move above taking the lock */
    return atomic_compare_exchange_strong_explicit(&l->held, &open, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void strand__wlock_acquire(strand__wlock *l)
{
    if (STRAND__LIKELY(strand__wlock_try(l)))
        return;
    strand__wlock_slow(l);
}

static inline void strand__wlock_release(strand__wlock *l)
{
    /* release: the section's writes are visible to the next holder */
    if (STRAND__UNLIKELY(atomic_exchange_explicit(&l->held, 0, memory_order_release) == 2))
        strand__wlock_wake(l);
}

#endif
