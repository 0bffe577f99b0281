/*
 * wlock.c - the contended path of strand__wlock (wlock.h): spin a little on a plain load,
 * then yield the thread between attempts. Nothing here is ordered beyond what the
 * acquiring exchange in strand__wlock_try gives.
 */
#include "wlock.h"

#include <sys/syscall.h>
#include <unistd.h>

void strand__wlock_slow(strand__wlock *l)
{
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(&l->held, memory_order_relaxed) == 0 && strand__wlock_try(l))
            return;
        if (spins < 64)
            strand__cpu_relax();
        else
            syscall(SYS_sched_yield); /* <sched.h> would find src/sched.h */
    }
}
