/*
 * runtime.c - starting and stopping the runtime: strand_init, strand_run,
 * strand_wait_all, strand_shutdown, strand_poll_fd (which starts it lazily).
 *
 * The runtime starts once, explicitly (strand_init) or lazily on the first call that needs
 * it (a spawn from a plain thread, strand_run). `state` moves DOWN -> STARTING -> UP under
 * init_lock; readers on the hot path only load it (acquire: seeing UP means seeing
 * everything init wrote). strand_shutdown moves it back to DOWN, after which strand_init
 * may start it again (tests start runtimes of different shapes in one process).
 */
#include "internal.h"
#include "cancel.h"
#include "diag.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

enum { DOWN = 0, UP = 2 };

/* strand__cfg is defined in config.c */
static atomic_int state;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static int start_locked(const strand_config *cfg)
{
    int rc = strand__config_check(cfg);
    if (rc)
        return rc;
    strand__settings_load(&strand__cfg, cfg);
    if ((rc = strand__netpoll_init()) != 0)
        return rc;
    if ((rc = strand__sched_start(strand__diag_thread_start)) != 0)
        return rc;
    strand__diag_start();
    strand__report_start();
    atomic_store_explicit(&state, UP, memory_order_release);
    return 0;
}

int strand_init(const strand_config *cfg)
{
    pthread_mutex_lock(&init_lock);
    int rc = atomic_load_explicit(&state, memory_order_relaxed) == UP ? -EALREADY
                                                                      : start_locked(cfg);
    pthread_mutex_unlock(&init_lock);
    return rc;
}

int strand__runtime_ensure(void)
{
    if (STRAND__LIKELY(atomic_load_explicit(&state, memory_order_acquire) == UP))
        return 0;
    pthread_mutex_lock(&init_lock);
    int rc = atomic_load_explicit(&state, memory_order_relaxed) == UP ? 0 : start_locked(NULL);
    pthread_mutex_unlock(&init_lock);
    return rc;
}

/* Host-driven: drive the runtime from this thread until nothing is alive. */
static void drive(void)
{
    while (strand__active() != 0) {
        int more = 0;
        strand_run_until_idle(1024, &more);
        if (more || strand__active() == 0)
            continue;
        struct pollfd p = {.fd = strand_poll_fd(), .events = POLLIN};
        int64_t next = strand_next_timeout();
        int ms = next < 0 ? 100 : (int)((next + 999999) / 1000000);
        poll(&p, p.fd >= 0 ? 1 : 0, ms);
    }
}

/* The poller's fd is the host's to poll: readable when the runtime has work for it. */
int strand_poll_fd(void)
{
    if (strand__runtime_ensure() != 0)
        return -EINVAL;
    return strand__netpoll_fd();
}

int strand_run(strand_fn fn, void *arg, void **result)
{
    if (!fn)
        return -EINVAL;
    if (strand__current())
        return -EDEADLK; /* strand_run from inside a strand would wait for itself */
    int rc = strand__runtime_ensure();
    if (rc)
        return rc;
    int64_t id = strand_spawn(fn, arg);
    if (id < 0)
        return (int)id;
    if (strand__sched_host()) {
        drive();
        return strand_join_until(id, result, 0);
    }
    if ((rc = strand_join(id, result)) != 0)
        return rc;
    return strand_wait_all();
}

int strand_wait_all(void)
{
    if (strand__current())
        return -EDEADLK;
    if (atomic_load_explicit(&state, memory_order_acquire) != UP)
        return 0;
    if (strand__sched_host()) {
        drive();
        return 0;
    }
    return strand__sched_wait_quiet();
}

/* ------------------------------------------------------------------ shutdown
 * strand_shutdown ends the strands before it stops the workers: it refuses new spawns
 * (`draining`), cancels every live strand (cancel.c: each parked one wakes with
 * -ECANCELED) and waits for them to unwind, sweeping again every millisecond so that a
 * strand spawned just before the refusal, or one that lifted its shield, is cancelled
 * too. Whatever is still alive at the deadline is listed on stderr and abandoned, as
 * before cancellation existed (its memory and the workers it points at are kept). */

static atomic_int draining;

bool strand__runtime_draining(void)
{
    /* relaxed: a spawn that misses the flag is caught by the next sweep */
    return atomic_load_explicit(&draining, memory_order_relaxed) != 0;
}

static void cancel_each(struct strand *s, void *ctx)
{
    (void)ctx;
    strand__waiter *w = strand__cancel_locked(s);
    if (w != NULL)
        strand__waiter_wake(w); /* under its slot lock: it cannot end before this */
}

static void report_laggard(struct strand *s, void *ctx)
{
    struct strand c;
    char line[256];
    if (!strand__snapshot(s, &c))
        return;
    strand__dump_line(&c, s, *(int64_t *)ctx, line, sizeof line);
    fprintf(stderr, "  %s\n", line);
}

static int drain(void)
{
    atomic_store_explicit(&draining, 1, memory_order_relaxed);
    int64_t deadline = strand_now() + (int64_t)strand__cfg.shutdown_ms * 1000000;
    for (;;) {
        strand__each_live(cancel_each, NULL);
        if (strand__sched_host()) {
            int more = 0;
            strand_run_until_idle(4096, &more);
        }
        if (strand__active() == 0)
            return 0;
        if (strand_now() >= deadline)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    int64_t now = strand__mono_ns();
    fprintf(stderr, "strand: strand_shutdown: %llu strands still running %d ms after their "
                    "cancel, abandoned:\n", (unsigned long long)strand__active(),
            strand__cfg.shutdown_ms);
    strand__each_live(report_laggard, &now);
    return -ETIMEDOUT;
}

int strand_shutdown(void)
{
    if (strand__current())
        return -EDEADLK; /* documented: a worker cannot wait for itself */
    pthread_mutex_lock(&init_lock);
    int rc = 0;
    if (atomic_load_explicit(&state, memory_order_relaxed) == UP) {
        rc = drain();
        strand__diag_stop();
        strand__sched_stop();
        strand__netpoll_shutdown();
        atomic_store_explicit(&draining, 0, memory_order_relaxed);
        atomic_store_explicit(&state, DOWN, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
    return rc;
}
