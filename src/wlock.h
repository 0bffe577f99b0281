/*
 * wlock.h - the lock of every wait queue (channels, select, the sync objects): a
 * test-and-test-and-set lock for sections of a few dozen instructions.
 *
 * Zero is unlocked, so zeroed mutexes and wait groups are valid. The uncontended acquire
 * is one exchange and the release one plain store, both inline. A contended acquire spins
 * on a plain load for a while (the holder is usually running and about to leave), then
 * sleeps on the lock word in the kernel (futex) in short, growing naps until it is free
 * (wlock.c): a plain thread or a worker holding it may be preempted on a busy machine, and
 * sleeping beats spinning through a time slice or polling with sched_yield. The naps are
 * timed rather than woken, so a release never has to look for sleepers: the kernel is
 * entered only by a waiter whose holder is not running.
 */
#ifndef STRAND_WLOCK_H
#define STRAND_WLOCK_H

#include "internal.h"

typedef struct { atomic_uint held; } strand__wlock;

void strand__wlock_slow(strand__wlock *l);

static inline bool strand__wlock_try(strand__wlock *l)
{
    /* acquire: the section's reads must not move above taking the lock */
    return !atomic_exchange_explicit(&l->held, 1, memory_order_acquire);
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
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif
