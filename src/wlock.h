/*
 * wlock.h - the lock of every wait queue (channels, select, the sync objects): a
 * test-and-test-and-set lock for sections of a few dozen instructions.
 *
 * Zero is unlocked, so zeroed mutexes and wait groups are valid. Unlike the plain
 * strand__spinlock (internal.h) it falls back to sched_yield after a short spin
 * (wlock.c): a plain thread or a worker holding it may be descheduled by the kernel on a
 * busy machine, and spinning through a whole time slice would be worse than yielding.
 * The uncontended acquire is one exchange, inline.
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
