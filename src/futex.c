/*
 * futex.c - the two futex calls everything that sleeps in strand is built on (the waiter of
 * a plain thread, an idle worker, strand_wait_all). Process-private futexes, absolute
 * CLOCK_MONOTONIC deadlines (the clock of every deadline in strand). No state.
 */
#include "internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
