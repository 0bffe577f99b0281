/*
 * time.c - the clock and sleeping: strand_now, strand_sleep, strand_sleep_until,
 * strand_deadline_in, strand_next_timeout.
 *
 * A sleeping strand is a wait (wait.h) on no object: strand__waiter_block arms a timer
 * (timer.c, through the scheduler, which wakes a worker sleeping past it) for the
 * deadline, and the only claims that can come are the timer's and a cancel's, so a sleep
 * costs one heap entry and no CPU until it is due. On a plain thread sleeping is
 * clock_nanosleep on the same clock.
 */
#include "wait.h"

#include <errno.h>

#include <time.h>

int64_t strand_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t strand_deadline_in(int64_t ns)
{
    if (ns < 0)
        return STRAND_FOREVER;
    int64_t now = strand_now();
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

static int thread_sleep_until(int64_t deadline)
{
    struct timespec ts = {
        .tv_sec = deadline / 1000000000,
        .tv_nsec = deadline % 1000000000,
    };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    return 0;
}

/* A sleep is a wait on nothing (wait.h): no object, no waker, so no lock and nothing to
 * publish or take back; its only endings are the deadline and a cancel. */
static void sleep_nop(void *obj) { (void)obj; }
static int sleep_publish(void *obj, strand__waiter *w) { (void)obj; (void)w; return 0; }
static void *sleep_unlink(void *obj, strand__waiter *w) { (void)obj; (void)w; return NULL; }
static const strand__wait_ops sleep_ops = { sleep_nop, sleep_nop, sleep_publish, sleep_unlink };

int strand_sleep_until(int64_t deadline)
{
    if (deadline < 0)
        return -EINVAL; /* STRAND_FOREVER included: a sleep nobody can end is a bug */
    struct strand *cur = strand__current();
    if (cur == NULL)
        return thread_sleep_until(deadline);
    if (deadline <= strand_now()) {
        strand_yield(); /* sleep(0) still lets others run */
        return 0;
    }
    strand__wait_reg r;
    int rc = strand__wait(&r, &sleep_ops, NULL, deadline, STRAND__WAIT_SLEEP, deadline);
    return rc == -ETIMEDOUT ? 0 : rc;
}

int strand_sleep(int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    return strand_sleep_until(strand_deadline_in(ns));
}

int64_t strand_next_timeout(void)
{
    int64_t next = strand__timers_next();
    if (next < 0)
        return -1;
    int64_t left = next - strand_now();
    return left > 0 ? left : 0;
}
