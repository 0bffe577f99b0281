/*
 * sched_host.c - host-driven mode (strand_config.host_driven): no worker threads; the
 * host's own thread runs strands as worker 0 inside strand_run_until_idle, and sleeps in
 * its own poll() on strand_poll_fd() (the poller's fd, readable on I/O, on a wake from
 * another thread and when the alarm for the earliest timer goes off).
 *
 * Invariants: only one thread at a time may call strand_run_until_idle (the host's loop);
 * worker 0's thread-local binding is set on entry and cleared on return, so between calls
 * the host's thread is a plain thread. Nothing here blocks.
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

#include <errno.h>

int strand_run_until_idle(int budget, int *more)
{
    if (more)
        *more = 0;
    if (!strand__sched.host || !strand__workers)
        return -EINVAL;
    if (budget <= 0 || sched_current())
        return -EINVAL;
    struct strand__worker *w = strand__workers[0];
    strand__sched_set_worker(w);
    strand__sched_g0_bounds(w); /* the host's stack serves as the idle context */
    static _Thread_local bool thread_started;
    if (!thread_started && strand__sched.thread_start) {
        strand__sched.thread_start(); /* e.g. the overflow report's alternate signal stack */
        thread_started = true;
    }
    int ran = 0;
    while (ran < budget) {
        struct strand *s = strand__sched_find_quick(w);
        if (!s) {
            strand__sched_poll_timers();
            strand__netpoll(0);
            s = strand__sched_local_pop(w);
        }
        if (!s)
            break;
        strand__sched_run_from_idle(w, s);
        ran++;
    }
    if (more)
        *more = strand__sched_work_anywhere(w);
    strand__sched_notify_quiet();
    strand__sched_set_worker(NULL);
    return ran;
}

bool strand__sched_host(void)
{
    return strand__sched.host;
}
