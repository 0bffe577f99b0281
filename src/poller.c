/*
 * poller.c - picks the readiness backend (poller.h) once per process and forwards the
 * strand__poller_* calls to it.
 *
 * Choice: STRAND_POLLER (config.c: "epoll" or "io_uring"; unset: STRAND__POLLER_DEFAULT).
 * io_uring is tried only when it was asked for; if liburing was not found at configure time,
 * or the ring cannot be set up here (an old kernel, io_uring_disabled, a container's seccomp
 * policy denying io_uring_setup), one line on stderr says so and epoll is used instead.
 *
 * Invariants:
 *  - `cur` is written once, inside the pthread_once of strand__poller_init, before that
 *    init returns 0; it never changes afterwards, also across runtime restarts (the
 *    backends keep their descriptors for the life of the process, see poller.h). A restart
 *    with another STRAND_POLLER keeps the first backend.
 *  - Before a successful init the calls that cannot fail do nothing (wake, disarm, alarm,
 *    shutdown), wait reports nothing and fd is -1: a wake from a signal handler that
 *    comes before the runtime started is harmless.
 */
#include "poller.h"

#include <stdio.h>
#include <sys/timerfd.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;
/* Release by the init, acquire by the readers: they then see the backend's own state,
 * which its init wrote before. */
static _Atomic(const strand__poller_ops *) cur;

static const strand__poller_ops *ops(void)
{
    return atomic_load_explicit(&cur, memory_order_acquire);
}

static const strand__poller_ops *try_io_uring(void)
{
#ifdef STRAND_HAVE_LIBURING
    int rc = strand__poller_io_uring.init();
    if (rc == 0)
        return &strand__poller_io_uring;
    fprintf(stderr, "strand: STRAND_POLLER=io_uring: io_uring is not usable here (%s%s); "
            "using epoll\n", strerror(-rc),
            rc == -EPERM ? ": denied, e.g. by a container's seccomp policy" : "");
#else
    fprintf(stderr, "strand: STRAND_POLLER=io_uring: this build has no io_uring backend "
            "(liburing was not found when it was configured); using epoll\n");
#endif
    return NULL;
}

static void do_init(void)
{
    int kind = strand__cfg.poller != 0 ? strand__cfg.poller : STRAND__POLLER_DEFAULT;
    const strand__poller_ops *o = kind == STRAND__POLLER_IO_URING ? try_io_uring() : NULL;
    if (o == NULL) {
        o = &strand__poller_epoll;
        init_err = o->init();
        if (init_err != 0)
            return;
    }
    atomic_store_explicit(&cur, o, memory_order_release);
}

int strand__poller_init(void)
{
    pthread_once(&init_once, do_init);
    return init_err;
}

const char *strand__poller_name(void)
{
    const strand__poller_ops *o = ops();
    return o != NULL ? o->name : NULL;
}

int strand__poller_arm(int fd)
{
    int rc = strand__poller_init();
    return rc != 0 ? rc : ops()->arm(fd);
}

void strand__poller_disarm(int fd)
{
    const strand__poller_ops *o = ops();
    if (o != NULL)
        o->disarm(fd);
}

int strand__poller_wait(strand__poller_event *evs, int max, int64_t timeout_ns,
                        bool consume_wake)
{
    const strand__poller_ops *o = ops();
    return o != NULL ? o->wait(evs, max, timeout_ns, consume_wake) : 0;
}

void strand__poller_wake(void)
{
    const strand__poller_ops *o = ops();
    if (o != NULL)
        o->wake();
}

int strand__poller_fd(void)
{
    const strand__poller_ops *o = ops();
    return o != NULL ? o->fd() : -1;
}

int strand__poller_alarm_enable(void)
{
    int rc = strand__poller_init();
    return rc != 0 ? rc : ops()->alarm_enable();
}

void strand__poller_alarm(int64_t when)
{
    const strand__poller_ops *o = ops();
    if (o != NULL)
        o->alarm(when);
}

void strand__poller_shutdown(void)
{
    const strand__poller_ops *o = ops();
    if (o != NULL)
        o->shutdown();
}

int64_t strand__poller_alarm_set(int fd, int64_t armed, int64_t when)
{
    int64_t now = strand_now();
    if (when >= armed && armed > now)
        return armed; /* an earlier alarm is still to come */
    int64_t at = when > now ? when : now + 1;
    struct itimerspec its = {
        .it_value = { .tv_sec = at / 1000000000, .tv_nsec = at % 1000000000 },
    };
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) == 0 ? at : armed;
}
