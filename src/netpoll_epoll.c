/*
 * netpoll_epoll.c - the epoll readiness backend of poller.h (strand__poller_epoll, the
 * default and the fallback): one epoll instance for the process, fds in it edge-triggered.
 *
 * Pieces:
 *   epfd      the epoll instance, created once (strand__poller_init); it is also the
 *             descriptor a host polls in host-driven mode (an epoll fd is readable while
 *             any of its events is pending).
 *   wakefd    an eventfd in the set, level-triggered: strand__poller_wake writes it.
 *             `wake_pending` coalesces writes; only a wait that consumes wakes drains it
 *             and re-opens it, so a wake is never lost between a waker skipping its write
 *             and the drain.
 *   timerfd   host-driven mode only, created on demand: the alarm, armed to the earliest
 *             deadline asked for (`timerfd_armed`, under timerfd_lock).
 *
 * Every fd is added for EPOLLIN|EPOLLOUT|EPOLLRDHUP with EPOLLET once, by
 * strand__poller_arm; the kernel drops it from the set by itself when the last descriptor
 * of its file is closed, so a disarm before close(2) only makes that explicit.
 */
#include "poller.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define DATA_WAKE  UINT64_MAX
#define DATA_TIMER (UINT64_MAX - 1)
#define MAX_EVENTS 256

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;
static int epfd = -1;
static int wakefd = -1;
static _Atomic int timerfd = -1;          /* set under timerfd_lock */
static atomic_int wake_pending;
static pthread_mutex_t timerfd_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t timerfd_armed = INT64_MAX; /* under timerfd_lock */

/* ------------------------------------------------------------------ setup */

static int add_internal(int fd, uint64_t data)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void do_init(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        init_err = -errno;
        return;
    }
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakefd < 0 || add_internal(wakefd, DATA_WAKE) < 0) {
        init_err = -errno;
        return;
    }
}

static int ep_init(void)
{
    pthread_once(&init_once, do_init);
    return init_err;
}

static int ep_fd(void)
{
    return epfd;
}

static void ep_shutdown(void)
{
    /* Records in netpoll.c may still name registrations, and a runtime may be started
     * again: the descriptors stay. */
}

static int ep_arm(int fd)
{
    int rc = ep_init();
    if (rc != 0)
        return rc;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)(unsigned)fd,
    };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST)
        return -errno; /* EPERM: a regular file or a directory */
    return 0;
}

static void ep_disarm(int fd)
{
    if (epfd >= 0)
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ------------------------------------------------------------------ wake and alarm */

static void ep_wake(void)
{
    if (wakefd < 0)
        return;
    if (atomic_exchange_explicit(&wake_pending, 1, memory_order_acq_rel) != 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(wakefd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, which is all we need */
}

static int ep_alarm_enable(void)
{
    int rc = ep_init();
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&timerfd_lock);
    if (timerfd < 0) {
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0 || add_internal(fd, DATA_TIMER) < 0) {
            rc = -errno;
            if (fd >= 0)
                close(fd);
        } else {
            timerfd = fd;
        }
    }
    pthread_mutex_unlock(&timerfd_lock);
    return rc;
}

static void ep_alarm(int64_t when)
{
    if (timerfd < 0)
        return;
    pthread_mutex_lock(&timerfd_lock);
    timerfd_armed = strand__poller_alarm_set(timerfd, timerfd_armed, when);
    pthread_mutex_unlock(&timerfd_lock);
}

/* ------------------------------------------------------------------ waiting */

static void drain(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

static int epoll_wait_ns(struct epoll_event *evs, int max, int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return epoll_wait(epfd, evs, max, -1);
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    int n = epoll_pwait2(epfd, evs, max, &ts, NULL);
    if (n < 0 && errno == ENOSYS) {
        int64_t ms = (timeout_ns + 999999) / 1000000;
        n = epoll_wait(epfd, evs, max, ms > INT32_MAX ? INT32_MAX : (int)ms);
    }
    return n;
}

static int ep_wait(strand__poller_event *out, int max, int64_t timeout_ns,
                        bool consume_wake)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait_ns(evs, max < MAX_EVENTS ? max : MAX_EVENTS, timeout_ns);
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint64_t d = evs[i].data.u64;
        uint32_t e = evs[i].events;
        if (d == DATA_WAKE) {
            /* The wake stays readable (level-triggered) for a wait that does not consume
             * it. A consuming wait drains first, then re-opens: a wake in between skips
             * its write, but this wait returns anyway. */
            if (!consume_wake)
                continue;
            drain(wakefd);
            atomic_store_explicit(&wake_pending, 0, memory_order_seq_cst);
        } else if (d == DATA_TIMER) {
            pthread_mutex_lock(&timerfd_lock);
            timerfd_armed = INT64_MAX;
            drain(timerfd);
            pthread_mutex_unlock(&timerfd_lock);
        } else {
            out[k].fd = (int)d;
            out[k].readable = e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI);
            out[k].writable = e & (EPOLLOUT | EPOLLHUP | EPOLLERR);
            k++;
        }
    }
    return k;
}

const strand__poller_ops strand__poller_epoll = {
    .name = "epoll",
    .init = ep_init,
    .arm = ep_arm,
    .disarm = ep_disarm,
    .wait = ep_wait,
    .wake = ep_wake,
    .fd = ep_fd,
    .alarm_enable = ep_alarm_enable,
    .alarm = ep_alarm,
    .shutdown = ep_shutdown,
};
