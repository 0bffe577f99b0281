/*
 * netpoll_epoll.c - the network poller: one epoll instance, edge-triggered, and the per-fd
 * records it wakes strands through.
 *
 * Pieces:
 *   epfd      one epoll instance for the process, created by strand__netpoll_init (or
 *             lazily by the first user).
 *   wakefd    an eventfd in the epoll set (level-triggered): strand__netpoll_wake writes it
 *             to interrupt a worker blocked in epoll_wait. `wake_pending` coalesces writes;
 *             only a blocking poll (or the host in host-driven mode) consumes a wake.
 *   timerfd   host-driven mode only: armed to the earliest timer, so strand_poll_fd()
 *             (= epfd) becomes readable when a timer is due.
 *   fd table  two levels: CHUNKS pointers to lazily allocated chunks of CHUNK records;
 *             records are never freed or moved (pointers to them stay valid).
 *
 * Registration: an fd enters the epoll set once, on its first would-block, for
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP with EPOLLET; strand_fd_close takes it out. Readiness
 * events bump the record's per-direction `seq` and wake every strand parked in that
 * direction (spurious wake-ups are harmless: I/O calls retry the system call). A strand
 * parks only if `seq` is unchanged since before its failed attempt (checked under the
 * record lock, where events also take it), so an edge that arrives in between is never
 * lost.
 *
 * Poll deadline: the worker blocked in epoll_wait publishes when it will wake up
 * (`poll_until`, seq_cst) and then rechecks the timers; a timer start publishes its heap
 * top (seq_cst) and then reads `poll_until`. One of the two sees the other, so a new
 * earlier timer either shortens the wait or wakes the poller.
 */
#include "io_internal.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define CHUNK_SHIFT 10
#define CHUNK (1 << CHUNK_SHIFT)
#define CHUNKS 4096 /* 4M descriptors */
#define MAX_EVENTS 256

#define DATA_WAKE  UINT64_MAX
#define DATA_TIMER (UINT64_MAX - 1)

static _Atomic(strand__fdrec *) table[CHUNKS];

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;
static int epfd = -1;
static int wakefd = -1;
static _Atomic int timerfd = -1;     /* host-driven mode; set under timerfd_lock */
static atomic_int wake_pending;
static _Atomic int64_t poll_until;      /* 0: nobody blocked; else when the poller wakes */
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

/* Host-driven mode only (the runtime may be restarted in that mode later). */
static int ensure_timerfd(void)
{
    int rc = 0;
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

int strand__netpoll_init(void)
{
    pthread_once(&init_once, do_init);
    if (init_err == 0 && strand__cfg.host_driven && timerfd < 0)
        return ensure_timerfd();
    return init_err;
}

int strand__netpoll_fd(void)
{
    return strand__netpoll_init() == 0 ? epfd : -1;
}

void strand__netpoll_shutdown(void)
{
    /* The descriptors live as long as the process: a runtime may be started again, and
     * records may still point at registrations. Nothing to do. */
}

void strand__netpoll_wake(void)
{
    if (wakefd < 0)
        return;
    if (atomic_exchange_explicit(&wake_pending, 1, memory_order_acq_rel) != 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(wakefd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero, which is all we need */
}

/* ------------------------------------------------------------------ fd records */

static strand__fdrec *rec_lookup(int fd, bool create)
{
    if (fd < 0 || (fd >> CHUNK_SHIFT) >= CHUNKS)
        return NULL;
    _Atomic(strand__fdrec *) *slot = &table[fd >> CHUNK_SHIFT];
    strand__fdrec *chunk = atomic_load_explicit(slot, memory_order_acquire);
    if (chunk == NULL) {
        if (!create)
            return NULL;
        strand__fdrec *fresh = calloc(CHUNK, sizeof *fresh);
        if (fresh == NULL)
            return NULL;
        if (!atomic_compare_exchange_strong_explicit(slot, &chunk, fresh, memory_order_acq_rel,
                                                     memory_order_acquire))
            free(fresh); /* someone else installed one: `chunk` now holds it */
        else
            chunk = fresh;
    }
    return &chunk[fd & (CHUNK - 1)];
}

static int classify(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        return STRAND__FD_FILE; /* always "ready" to epoll's mind: blocking calls go off-load */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    return S_ISSOCK(st.st_mode) ? STRAND__FD_SOCK : STRAND__FD_POLL;
}

strand__fdrec *strand__fd_get(int fd, int *err)
{
    strand__fdrec *rec = rec_lookup(fd, true);
    if (rec == NULL) {
        *err = fd < 0 || (fd >> CHUNK_SHIFT) >= CHUNKS ? -EBADF : -ENOMEM;
        return NULL;
    }
    if (STRAND__LIKELY(atomic_load_explicit(&rec->kind, memory_order_acquire) != 0))
        return rec;
    /* A strand_fd_close racing with us bumps seq under the lock: then our classification
     * is of a descriptor that is gone, and installing it would make the next fd with this
     * number (never made non-blocking) look classified; a read on it would block the
     * worker. So the kind is installed only if no close (or event) came in between; if
     * one did, the next call classifies again. */
    unsigned gen = atomic_load_explicit(&rec->seq[STRAND__DIR_READ], memory_order_acquire);
    int kind = classify(fd);
    if (kind < 0) {
        *err = kind;
        return NULL;
    }
    strand__spin_lock(&rec->lock);
    if (!rec->closing &&
        atomic_load_explicit(&rec->seq[STRAND__DIR_READ], memory_order_relaxed) == gen) {
        int expected = 0;
        atomic_compare_exchange_strong_explicit(&rec->kind, &expected, kind,
                                                memory_order_acq_rel, memory_order_acquire);
    }
    strand__spin_unlock(&rec->lock);
    return rec;
}

void strand__fd_fresh_socket(int fd)
{
    strand__fdrec *rec = rec_lookup(fd, true);
    if (rec == NULL)
        return;
    strand__spin_lock(&rec->lock);
    rec->registered = false;
    atomic_store_explicit(&rec->kind, STRAND__FD_SOCK, memory_order_release);
    strand__spin_unlock(&rec->lock);
}

/* ------------------------------------------------------------------ waiting and waking */

static void list_push(strand__fdrec *rec, int dir, strand__waiter *w)
{
    w->prev = NULL;
    w->next = rec->head[dir];
    if (w->next)
        w->next->prev = w;
    rec->head[dir] = w;
    w->obj = rec;
}

static void list_unlink(strand__fdrec *rec, int dir, strand__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        rec->head[dir] = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->obj = NULL;
}

/* Under rec->lock: take every waiter of `dir`, claim each with `status`; the claimed ones
 * are chained on *wake (through ->next) for waking after the lock is dropped. */
static void take_waiters(strand__fdrec *rec, int dir, int status, strand__waiter **wake)
{
    strand__waiter *w = rec->head[dir];
    rec->head[dir] = NULL;
    while (w != NULL) {
        strand__waiter *next = w->next;
        w->obj = NULL;
        w->prev = NULL;
        if (strand__waiter_claim(w)) {
            w->status = status;
            w->next = *wake;
            *wake = w;
        } else {
            w->next = NULL; /* its timeout owns it; it will find obj == NULL */
        }
        w = next;
    }
}

static int wake_list(strand__waiter *w)
{
    int n = 0;
    while (w != NULL) {
        strand__waiter *next = w->next;
        strand__waiter_wake(w); /* w may be gone from here on */
        w = next;
        n++;
    }
    return n;
}

static int register_fd(strand__fdrec *rec, int fd)
{
    if (strand__netpoll_init() != 0)
        return init_err;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)(unsigned)fd,
    };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST)
        return -errno;
    rec->registered = true;
    return 0;
}

static int thread_wait(int fd, int dir, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = dir == STRAND__DIR_READ ? POLLIN : POLLOUT };
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - strand_now();
            if (left <= 0)
                return -ETIMEDOUT;
            ms = (int)((left + 999999) / 1000000);
            if (left > (int64_t)INT32_MAX * 1000000)
                ms = INT32_MAX;
        }
        int n = poll(&p, 1, ms);
        if (n > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int strand__fd_wait(strand__fdrec *rec, int fd, int dir, unsigned seq, int64_t deadline)
{
    if (deadline == 0)
        return -EAGAIN;
    if (deadline > 0 && strand_now() >= deadline)
        return -ETIMEDOUT;
    struct strand *cur = strand__current();
    if (cur == NULL)
        return thread_wait(fd, dir, deadline);

    strand__spin_lock(&rec->lock);
    if (!rec->registered) {
        int rc = register_fd(rec, fd);
        if (rc == -EPERM) {
            atomic_store_explicit(&rec->kind, STRAND__FD_FILE, memory_order_release);
            strand__spin_unlock(&rec->lock);
            return -EPERM;
        }
        if (rc < 0) {
            strand__spin_unlock(&rec->lock);
            return rc;
        }
    }
    if (rec->closing) {
        /* strand_fd_close has woken the waiters and is about to close(2): a waiter parked
         * now would never be woken (closing an fd drops it from epoll without an event).
         * Retry instead: on the old descriptor the call then fails with EBADF; a new one
         * that got the same number meanwhile (accept in another strand) waits normally
         * once the close is through. */
        strand__spin_unlock(&rec->lock);
        strand_yield();
        return 0;
    }
    if (atomic_load_explicit(&rec->seq[dir], memory_order_acquire) != seq) {
        strand__spin_unlock(&rec->lock); /* an event came since the attempt: retry */
        return 0;
    }
    strand__waiter w;
    strand__waiter_prepare(&w, NULL);
    list_push(rec, dir, &w);
    strand__set_wait(cur, dir == STRAND__DIR_READ ? STRAND__WAIT_FD_READ : STRAND__WAIT_FD_WRITE,
                     rec, fd);
    strand__spin_unlock(&rec->lock);

    int rc = strand__waiter_block(&w, deadline);
    strand__set_wait(cur, STRAND__WAIT_NONE, NULL, 0);
    if (rc == -ETIMEDOUT) {
        strand__spin_lock(&rec->lock);
        if (w.obj != NULL)
            list_unlink(rec, dir, &w);
        strand__spin_unlock(&rec->lock);
    }
    return rc;
}

static int fire(strand__fdrec *rec, uint32_t events)
{
    bool rd = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI);
    bool wr = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    strand__waiter *wake = NULL;
    strand__spin_lock(&rec->lock);
    if (rd) {
        atomic_fetch_add_explicit(&rec->seq[STRAND__DIR_READ], 1, memory_order_acq_rel);
        take_waiters(rec, STRAND__DIR_READ, 0, &wake);
    }
    if (wr) {
        atomic_fetch_add_explicit(&rec->seq[STRAND__DIR_WRITE], 1, memory_order_acq_rel);
        take_waiters(rec, STRAND__DIR_WRITE, 0, &wake);
    }
    strand__spin_unlock(&rec->lock);
    return wake_list(wake);
}

int strand_fd_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    strand__fdrec *rec = rec_lookup(fd, false);
    void *reader = NULL;
    if (rec != NULL) {
        strand__waiter *wake = NULL;
        strand__spin_lock(&rec->lock);
        atomic_fetch_add_explicit(&rec->seq[0], 1, memory_order_acq_rel);
        atomic_fetch_add_explicit(&rec->seq[1], 1, memory_order_acq_rel);
        take_waiters(rec, STRAND__DIR_READ, -ECANCELED, &wake);
        take_waiters(rec, STRAND__DIR_WRITE, -ECANCELED, &wake);
        if (rec->registered && epfd >= 0)
            epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        rec->registered = false;
        atomic_store_explicit(&rec->kind, STRAND__FD_UNKNOWN, memory_order_release);
        reader = atomic_exchange_explicit(&rec->reader, NULL, memory_order_acq_rel);
        rec->closing = true;
        strand__spin_unlock(&rec->lock);
        wake_list(wake);
    }
    if (reader != NULL)
        strand__line_free(reader);
    int rc = close(fd) != 0 && errno == EBADF ? -EBADF : 0; /* EINTR/EIO: released anyway */
    if (rec != NULL) {
        /* From here a call on this number fails with EBADF in the kernel (or finds a new
         * descriptor, which starts fresh: kind is unknown again). */
        strand__spin_lock(&rec->lock);
        rec->closing = false;
        atomic_fetch_add_explicit(&rec->seq[0], 1, memory_order_acq_rel);
        atomic_fetch_add_explicit(&rec->seq[1], 1, memory_order_acq_rel);
        atomic_store_explicit(&rec->kind, STRAND__FD_UNKNOWN, memory_order_release);
        strand__spin_unlock(&rec->lock);
    }
    return rc;
}

/* ------------------------------------------------------------------ polling */

static void drain(int fd)
{
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
}

void strand__netpoll_timer_hint(int64_t when)
{
    int64_t until = atomic_load_explicit(&poll_until, memory_order_seq_cst);
    if (until != 0 && when < until)
        strand__netpoll_wake();
    if (timerfd < 0)
        return;
    pthread_mutex_lock(&timerfd_lock);
    int64_t now = strand_now();
    if (when < timerfd_armed || timerfd_armed <= now) {
        int64_t at = when > now ? when : now + 1;
        struct itimerspec its = {
            .it_value = { .tv_sec = at / 1000000000, .tv_nsec = at % 1000000000 },
        };
        if (timerfd_settime(timerfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
            timerfd_armed = at;
    }
    pthread_mutex_unlock(&timerfd_lock);
}

static int epoll_wait_ns(struct epoll_event *evs, int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return epoll_wait(epfd, evs, MAX_EVENTS, -1);
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    int n = epoll_pwait2(epfd, evs, MAX_EVENTS, &ts, NULL);
    if (n < 0 && errno == ENOSYS) {
        int64_t ms = (timeout_ns + 999999) / 1000000;
        n = epoll_wait(epfd, evs, MAX_EVENTS, ms > INT32_MAX ? INT32_MAX : (int)ms);
    }
    return n;
}

int strand__netpoll(int64_t timeout_ns)
{
    if (strand__netpoll_init() != 0)
        return 0;
    bool blocking = (timeout_ns != 0);
    if (blocking) {
        int64_t now = strand_now();
        int64_t until = timeout_ns < 0 || timeout_ns > INT64_MAX - now ? INT64_MAX
                                                                       : now + timeout_ns;
        atomic_store_explicit(&poll_until, until, memory_order_seq_cst);
        int64_t t = strand__timers_next();
        if (t >= 0 && t < until)
            timeout_ns = t > now ? t - now : 0;
    }
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait_ns(evs, timeout_ns);
    if (blocking)
        atomic_store_explicit(&poll_until, 0, memory_order_seq_cst);
    int readied = 0;
    for (int i = 0; i < n; i++) {
        uint64_t d = evs[i].data.u64;
        if (d == DATA_WAKE) {
            /* A wake is meant for the blocking poller: a non-blocking poll leaves it in
             * place (it stays readable, level-triggered), or a waker that skipped its
             * write because one was pending would be lost. The blocking poller drains
             * first, then re-opens: a wake in between is skipped, but it returns anyway.
             * In host-driven mode the host's thread is the only poller. */
            if (!blocking && !strand__cfg.host_driven)
                continue;
            drain(wakefd);
            atomic_store_explicit(&wake_pending, 0, memory_order_seq_cst);
        } else if (d == DATA_TIMER) {
            pthread_mutex_lock(&timerfd_lock);
            timerfd_armed = INT64_MAX;
            drain(timerfd);
            pthread_mutex_unlock(&timerfd_lock);
        } else {
            strand__fdrec *rec = rec_lookup((int)d, false);
            if (rec != NULL)
                readied += fire(rec, evs[i].events);
        }
    }
    return readied;
}
