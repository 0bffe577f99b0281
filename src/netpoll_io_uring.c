/*
 * netpoll_io_uring.c - the io_uring readiness backend of poller.h (strand__poller_io_uring,
 * STRAND_POLLER=io_uring; built only when liburing was found at configure time).
 *
 * Readiness, not completion: each armed fd has one multishot IORING_OP_POLL_ADD (edge
 * triggered, POLLIN|POLLOUT|POLLRDHUP; the kernel adds ERR and HUP) in one ring for the
 * process; its CQEs replace epoll_wait's events, the SQEs replace epoll_ctl. The I/O itself
 * stays read(2)/write(2) in io.c, so a deadline or strand_fd_close never leaves a kernel
 * operation holding a strand's buffer: nothing here ever owns user memory. SQPOLL is off.
 *
 * Pieces:
 *   ring       one io_uring (SQ 256, CQ 16384 entries, CQ overflow kept by the kernel:
 *              IORING_FEAT_NODROP is required, as are EXT_ARG and multishot poll, checked at
 *              init by a poll on the wake eventfd). Its fd is strand__poller_fd(): readable
 *              while a CQE is pending.
 *   wakefd     an eventfd polled in the ring (UD_WAKE); `wake_pending` coalesces writes as
 *              in the epoll backend. A wait that does not consume wakes but reaps the wake's
 *              CQE sets `wake_reaped`; the next consuming wait treats that as its wake.
 *   timerfd    host-driven mode only: the alarm, polled in the ring (UD_TIMER).
 *   probe_ep   an epoll fd used once per arm of a descriptor that is neither a socket nor a
 *              pipe, so that "cannot be watched" (-EPERM, e.g. /dev/null) means exactly what
 *              it means for epoll; a poll on such a file would complete at once, forever.
 *   states     per fd number, a word (generation << 1 | armed). A poll's user_data is
 *              (word << 32 | fd), so a CQE of a poll that was removed, or that belonged to an
 *              earlier file with that number, is recognised as stale and dropped.
 *
 * Threads, locks and ownership (the ring is not thread-safe; liburing is not either):
 *  - sq_lock guards the SQ ring (get_sqe, prep, submit) and every write of a state word.
 *    Arms and disarms come from any worker (netpoll.c holds the fd record's lock around
 *    them, so they are serialised per fd); the poller's re-arms take it too.
 *  - cq_lock guards the CQ ring (peek, advance) and `wake_reaped`. The worker that blocks
 *    holds it across io_uring_enter(GETEVENTS): other workers' non-blocking polls then
 *    find it taken and return 0 (the blocked waiter is woken by the same CQEs and reports
 *    them), which is what makes a wake unlosable: only a consuming wait can be blocked, and
 *    every reaped wake CQE is either consumed or left in `wake_reaped` for it.
 *  - Lock order: cq_lock before sq_lock (a re-arm while reaping). Neither is held while
 *    calling back into netpoll.c, and netpoll.c's record locks come before sq_lock.
 *  - Reads of a state word outside sq_lock (the stale filter) are relaxed: a wrong guess
 *    only turns into a spurious or a dropped report of a file that is being replaced, and
 *    every arm's own first poll reports the current readiness.
 *
 * Kernel behaviour this relies on, and how it is handled:
 *  - A poll holds a reference on its file: close(2) alone does not end it. strand_fd_close
 *    disarms first (ASYNC_CANCEL of the poll); an arm of a number whose word is still armed (a plain
 *    close(2) and reuse) removes the old poll before adding the new one.
 *  - Poll wake-ups run as task work of the thread that armed the poll; when that thread
 *    has exited (a finished runtime's workers) the next event cancels the poll
 *    (-ECANCELED). A multishot poll also ends on CQ overflow. Any end of a poll whose word
 *    is still current, with a result >= 0, -ECANCELED, -ENOMEM or -EAGAIN, is re-armed by
 *    the reaping thread; another error disarms the word and reports both directions, so
 *    the strand retries its call and sees the error itself.
 */
#include "poller.h"

#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define SQ_ENTRIES  256
#define CQ_ENTRIES  16384
#define REAP_BATCH  64
#define POLL_EVENTS (POLLIN | POLLOUT | POLLRDHUP)

/* Internal user_data: the low 32 bits are never a valid fd (fd < CHUNKS << CHUNK_SHIFT). */
#define UD_WAKE   UINT64_MAX
#define UD_TIMER  (UINT64_MAX - 1)
#define UD_IGNORE (UINT64_MAX - 2) /* the CQE of an ASYNC_CANCEL */
#define UD_SELFTEST (UINT64_MAX - 3)

#define CHUNK_SHIFT 10
#define CHUNK (1 << CHUNK_SHIFT)
#define CHUNKS 4096 /* 4M descriptors, as netpoll.c */
#define MAX_FD (CHUNKS << CHUNK_SHIFT)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;
static struct io_uring ring;
static int wakefd = -1;
static int probe_ep = -1;
static _Atomic int timerfd = -1;          /* set under timerfd_lock */
static atomic_int wake_pending;
static atomic_bool wake_reaped;           /* under cq_lock; atomic for the sanitizers' sake */
static pthread_mutex_t sq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t timerfd_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t timerfd_armed = INT64_MAX; /* under timerfd_lock */

static _Atomic(_Atomic uint32_t *) states[CHUNKS];

/* ------------------------------------------------------------------ per-fd words */

static _Atomic uint32_t *state_of(int fd, bool create)
{
    if (fd < 0 || fd >= MAX_FD)
        return NULL;
    _Atomic(_Atomic uint32_t *) *slot = &states[fd >> CHUNK_SHIFT];
    _Atomic uint32_t *chunk = atomic_load_explicit(slot, memory_order_acquire);
    if (chunk == NULL) {
        if (!create)
            return NULL;
        _Atomic uint32_t *fresh = calloc(CHUNK, sizeof *fresh);
        if (fresh == NULL)
            return NULL;
        if (atomic_compare_exchange_strong_explicit(slot, &chunk, fresh, memory_order_acq_rel,
                                                    memory_order_acquire))
            chunk = fresh;
        else
            free(fresh); /* another thread installed one: `chunk` holds it */
    }
    return &chunk[fd & (CHUNK - 1)];
}

static uint32_t next_word(uint32_t w, bool armed)
{
    return ((((w >> 1) + 1) & 0x7fffffffu) << 1) | (armed ? 1u : 0u);
}

static uint64_t ud_of(int fd, uint32_t w)
{
    return ((uint64_t)w << 32) | (uint32_t)fd;
}

/* ------------------------------------------------------------------ submission (sq_lock) */

static int submit_locked(void)
{
    for (int tries = 0;; tries++) {
        int rc = io_uring_submit(&ring);
        if (rc >= 0)
            return 0;
        if (rc == -EINTR)
            continue;
        if ((rc == -EAGAIN || rc == -EBUSY) && tries < 1000) {
            sched_yield(); /* the kernel is short of memory or flushing an overflow */
            continue;
        }
        return rc;
    }
}

static struct io_uring_sqe *sqe_locked(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL && submit_locked() == 0)
        sqe = io_uring_get_sqe(&ring);
    return sqe;
}

static int prep_poll_locked(int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe = sqe_locked();
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_poll_multishot(sqe, fd, POLL_EVENTS);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int prep_remove_locked(uint64_t ud)
{
    struct io_uring_sqe *sqe = sqe_locked();
    if (sqe == NULL)
        return -EBUSY;
    /* ASYNC_CANCEL, not POLL_REMOVE: a remove fails (-EALREADY) and leaves the poll, and
     * with it the file, alive when it meets the poll while an event is being processed;
     * a cancel marks the poll cancelled either way. */
    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    return 0;
}

static int poll_internal(int fd, uint64_t ud)
{
    pthread_mutex_lock(&sq_lock);
    int rc = prep_poll_locked(fd, ud);
    if (rc == 0)
        rc = submit_locked();
    pthread_mutex_unlock(&sq_lock);
    return rc;
}

/* ------------------------------------------------------------------ setup */

static void drain(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

/* Blocks for one CQE (at most timeout_ns if >= 0); the caller holds cq_lock (or is init). */
static int enter_wait(int64_t timeout_ns)
{
    struct __kernel_timespec ts = {
        .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000,
    };
    struct io_uring_getevents_arg arg = {
        .sigmask_sz = _NSIG / 8,
        .ts = timeout_ns >= 0 ? (uint64_t)(uintptr_t)&ts : 0,
    };
    return io_uring_enter2((unsigned)ring.ring_fd, 0, 1,
                           IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, (sigset_t *)&arg,
                           sizeof arg);
}

/* Proves multishot poll works: one wake must come back as a CQE that says "more". */
static int selftest(void)
{
    uint64_t one = 1;
    if (write(wakefd, &one, sizeof one) != (ssize_t)sizeof one)
        return -errno;
    int rc = enter_wait(1000000000);
    struct io_uring_cqe *cqe;
    if (io_uring_peek_cqe(&ring, &cqe) != 0)
        return rc < 0 && rc != -ETIME ? rc : -EOPNOTSUPP;
    bool ok = cqe->user_data == UD_WAKE && cqe->res > 0 && (cqe->flags & IORING_CQE_F_MORE);
    io_uring_cqe_seen(&ring, cqe);
    drain(wakefd);
    return ok ? 0 : -EOPNOTSUPP;
}

static void do_init(void)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
        .cq_entries = CQ_ENTRIES,
    };
    int rc = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
    if (rc < 0) {
        init_err = rc; /* -ENOSYS: no io_uring; -EPERM: denied (seccomp, io_uring_disabled) */
        return;
    }
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
        rc = -EOPNOTSUPP;
        goto fail;
    }
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    probe_ep = epoll_create1(EPOLL_CLOEXEC);
    if (wakefd < 0 || probe_ep < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = poll_internal(wakefd, UD_WAKE)) != 0 || (rc = selftest()) != 0)
        goto fail;
    return;
fail:
    io_uring_queue_exit(&ring);
    if (wakefd >= 0)
        close(wakefd);
    if (probe_ep >= 0)
        close(probe_ep);
    wakefd = probe_ep = -1;
    init_err = rc;
}

static int ur_init(void)
{
    pthread_once(&init_once, do_init);
    return init_err;
}

static int ur_fd(void)
{
    return ring.ring_fd;
}

static void ur_shutdown(void)
{
    /* As with epoll: records in netpoll.c may still name polls, and a runtime may be
     * started again; the ring stays. */
}

/* ------------------------------------------------------------------ arming */

/* -EPERM if epoll would refuse fd (a file without a poll method). */
static int pollable(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
        return 0;
    struct epoll_event ev = { .events = EPOLLIN };
    if (epoll_ctl(probe_ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        return errno == EEXIST ? 0 : -errno;
    epoll_ctl(probe_ep, EPOLL_CTL_DEL, fd, NULL);
    return 0;
}

static int ur_arm(int fd)
{
    int rc = pollable(fd);
    if (rc != 0)
        return rc;
    _Atomic uint32_t *st = state_of(fd, true);
    if (st == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&sq_lock);
    uint32_t w = atomic_load_explicit(st, memory_order_relaxed);
    if ((w & 1) && (rc = prep_remove_locked(ud_of(fd, w))) != 0)
        goto out; /* an earlier file with this number, closed without a disarm */
    uint32_t nw = next_word(w, true);
    if ((rc = prep_poll_locked(fd, ud_of(fd, nw))) != 0)
        goto out;
    atomic_store_explicit(st, nw, memory_order_relaxed);
    rc = submit_locked();
out:
    pthread_mutex_unlock(&sq_lock);
    return rc;
}

static void ur_disarm(int fd)
{
    _Atomic uint32_t *st = state_of(fd, false);
    if (st == NULL)
        return;
    pthread_mutex_lock(&sq_lock);
    uint32_t w = atomic_load_explicit(st, memory_order_relaxed);
    if ((w & 1) && prep_remove_locked(ud_of(fd, w)) == 0) {
        atomic_store_explicit(st, next_word(w, false), memory_order_relaxed);
        submit_locked();
    }
    pthread_mutex_unlock(&sq_lock);
}

/* A poll of fd with word w ended (res: its last result). Re-arm it if it is still current
 * and the end was not an error of the fd itself; true if the fd must be reported. */
static bool poll_ended(int fd, uint32_t w, int res)
{
    _Atomic uint32_t *st = state_of(fd, false);
    bool report = false;
    pthread_mutex_lock(&sq_lock);
    if (st != NULL && atomic_load_explicit(st, memory_order_relaxed) == w) {
        if (res >= 0 || res == -ECANCELED || res == -ENOMEM || res == -EAGAIN) {
            if (prep_poll_locked(fd, ud_of(fd, w)) == 0 && submit_locked() == 0) {
                pthread_mutex_unlock(&sq_lock);
                return false;
            }
        }
        atomic_store_explicit(st, next_word(w, false), memory_order_relaxed);
        report = true;
    }
    pthread_mutex_unlock(&sq_lock);
    return report;
}

/* ------------------------------------------------------------------ wake and alarm */

static void ur_wake(void)
{
    if (wakefd < 0)
        return;
    if (atomic_exchange_explicit(&wake_pending, 1, memory_order_acq_rel) != 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(wakefd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, which is all we need */
}

static int ur_alarm_enable(void)
{
    int rc = ur_init();
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&timerfd_lock);
    if (timerfd < 0) {
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
            rc = -errno;
        else if ((rc = poll_internal(fd, UD_TIMER)) != 0)
            close(fd);
        else
            timerfd = fd;
    }
    pthread_mutex_unlock(&timerfd_lock);
    return rc;
}

static void ur_alarm(int64_t when)
{
    if (timerfd < 0)
        return;
    pthread_mutex_lock(&timerfd_lock);
    timerfd_armed = strand__poller_alarm_set(timerfd, timerfd_armed, when);
    pthread_mutex_unlock(&timerfd_lock);
}

/* ------------------------------------------------------------------ waiting (cq_lock) */

static void consume_wake_locked(void)
{
    /* Drain, then re-open: a wake in between skips its write, but this wait returns. */
    drain(wakefd);
    atomic_store_explicit(&wake_reaped, false, memory_order_relaxed);
    atomic_store_explicit(&wake_pending, 0, memory_order_seq_cst);
}

/* One internal CQE; sets *stop when the wait should return even without fd events. */
static void internal_cqe(const struct io_uring_cqe *cqe, bool consume_wake, bool *stop)
{
    bool ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (cqe->user_data == UD_WAKE) {
        if (consume_wake)
            consume_wake_locked();
        else
            atomic_store_explicit(&wake_reaped, true, memory_order_relaxed);
        *stop = true;
        if (ended)
            poll_internal(wakefd, UD_WAKE);
    } else if (cqe->user_data == UD_TIMER) {
        pthread_mutex_lock(&timerfd_lock);
        timerfd_armed = INT64_MAX;
        drain(timerfd);
        pthread_mutex_unlock(&timerfd_lock);
        *stop = true;
        if (ended)
            poll_internal(timerfd, UD_TIMER);
    }
    /* UD_IGNORE, UD_SELFTEST: nothing to do */
}

/* Reaps up to max fd events into out; internal CQEs are handled on the way. */
static int reap_locked(strand__poller_event *out, int max, bool consume_wake, bool *stop)
{
    int k = 0;
    struct io_uring_cqe *cqes[REAP_BATCH];
    while (k < max) {
        unsigned want = (unsigned)(max - k) < REAP_BATCH ? (unsigned)(max - k) : REAP_BATCH;
        unsigned got = io_uring_peek_batch_cqe(&ring, cqes, want);
        if (got == 0)
            break;
        for (unsigned i = 0; i < got; i++) {
            const struct io_uring_cqe *cqe = cqes[i];
            uint32_t low = (uint32_t)cqe->user_data;
            if (low >= (uint32_t)MAX_FD) {
                internal_cqe(cqe, consume_wake, stop);
                continue;
            }
            int fd = (int)low;
            uint32_t w = (uint32_t)(cqe->user_data >> 32);
            _Atomic uint32_t *st = state_of(fd, false);
            if (st == NULL || atomic_load_explicit(st, memory_order_relaxed) != w)
                continue; /* removed, or an earlier file's poll */
            int res = cqe->res;
            bool report = res > 0;
            if (!(cqe->flags & IORING_CQE_F_MORE) && poll_ended(fd, w, res))
                report = true;
            if (!report)
                continue;
            bool all = res <= 0; /* an error: let both directions retry and see it */
            out[k].fd = fd;
            out[k].readable = all || (res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLPRI));
            out[k].writable = all || (res & (POLLOUT | POLLHUP | POLLERR));
            k++;
        }
        io_uring_cq_advance(&ring, got);
    }
    return k;
}

static int ur_wait(strand__poller_event *out, int max, int64_t timeout_ns, bool consume_wake)
{
    if (max <= 0)
        return 0;
    if (timeout_ns == 0) {
        if (pthread_mutex_trylock(&cq_lock) != 0)
            return 0; /* a blocked (or reaping) waiter reports what is there */
    } else {
        pthread_mutex_lock(&cq_lock);
    }
    bool stop = false;
    if (consume_wake && atomic_load_explicit(&wake_reaped, memory_order_relaxed)) {
        consume_wake_locked(); /* a non-consuming wait reaped it for us */
        stop = true;
    }
    int k = reap_locked(out, max, consume_wake, &stop);
    if (k == 0 && !stop && timeout_ns != 0) {
        enter_wait(timeout_ns); /* -ETIME, -EINTR: then nothing is there, which is fine */
        k = reap_locked(out, max, consume_wake, &stop);
    }
    pthread_mutex_unlock(&cq_lock);
    return k;
}

const strand__poller_ops strand__poller_io_uring = {
    .name = "io_uring",
    .init = ur_init,
    .arm = ur_arm,
    .disarm = ur_disarm,
    .wait = ur_wait,
    .wake = ur_wake,
    .fd = ur_fd,
    .alarm_enable = ur_alarm_enable,
    .alarm = ur_alarm,
    .shutdown = ur_shutdown,
};
