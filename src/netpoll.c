/*
 * netpoll.c - the portable network poller: the per-fd records strands park on, the
 * readiness dispatch that wakes them, strand_fd_close with its close race, and the
 * scheduler's strand__netpoll_* calls. Readiness itself comes from the backend behind
 * poller.h (netpoll_epoll.c), which knows nothing of strands.
 *
 * The fd table: two levels, CHUNKS pointers to lazily allocated chunks of CHUNK records;
 * records are never freed or moved (pointers to them stay valid).
 *
 * Arming: an fd is armed in the backend once, on its first would-block (the backend
 * watches both directions, edge-triggered); strand_fd_close disarms it. A readiness event
 * bumps the record's per-direction `seq` and wakes every strand parked in that direction
 * (spurious wake-ups are harmless: I/O calls retry the system call). A strand parks only
 * if `seq` is unchanged since before its failed attempt (checked under the record lock,
 * where events also take it), so an edge that arrives in between is never lost. Parking
 * is wait.h's sequence on the record's queue for that direction.
 *
 * Timeouts are the scheduler's: strand__netpoll blocks exactly as long as it is told (the
 * scheduler bounds it by the earliest timer and wakes the poller through
 * strand__netpoll_wake when that moves). strand__netpoll_timer_hint only arms the
 * host-driven alarm.
 */
#include "io_internal.h"
#include "poller.h"
#include "wait.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_SHIFT 10
#define CHUNK (1 << CHUNK_SHIFT)
#define CHUNKS 4096 /* 4M descriptors */
#define MAX_EVENTS 256

static _Atomic(strand__fdrec *) table[CHUNKS];

/* ------------------------------------------------------------------ the scheduler's calls */

int strand__netpoll_init(void)
{
    int rc = strand__poller_init();
    if (rc == 0 && strand__cfg.host_driven)
        rc = strand__poller_alarm_enable(); /* the runtime may be restarted in that mode */
    return rc;
}

int strand__netpoll_fd(void)
{
    return strand__netpoll_init() == 0 ? strand__poller_fd() : -1;
}

void strand__netpoll_shutdown(void)
{
    strand__poller_shutdown();
    /* The backend's registrations went with it: a descriptor still open must be armed
     * again in the next runtime's backend on its first would-block. */
    for (int c = 0; c < CHUNKS; c++) {
        strand__fdrec *chunk = atomic_load_explicit(&table[c], memory_order_acquire);
        for (int i = 0; chunk != NULL && i < CHUNK; i++) {
            strand__spin_lock(&chunk[i].lock);
            chunk[i].registered = false;
            strand__spin_unlock(&chunk[i].lock);
        }
    }
}

void strand__netpoll_wake(void)
{
    strand__poller_wake();
}

void strand__netpoll_timer_hint(int64_t when)
{
    strand__poller_alarm(when);
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
        return STRAND__FD_FILE; /* always "ready" to a poller: blocking calls go off-load */
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

/* ------------------------------------------------------------------ waiting (wait.h) */

/* A waiter's direction is its `index` (set before registering). */
static int fd_publish(void *obj, strand__waiter *w)
{
    strand__fdrec *rec = obj;
    strand__waitq_push(&rec->q[w->index], w, rec);
    return 0;
}

static void *fd_unlink(void *obj, strand__waiter *w)
{
    strand__fdrec *rec = obj;
    if (w->obj != NULL) /* else an event or strand_fd_close took it off already */
        strand__waitq_remove(&rec->q[w->index], w);
    return NULL;
}

STRAND__LOCK_FIRST(strand__fdrec);
static const strand__wait_ops fd_ops = {
    strand__wait_spin_lock, strand__wait_spin_unlock, fd_publish, fd_unlink,
};

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

/* Under rec->lock: arm fd in the backend on its first would-block. */
static int arm(strand__fdrec *rec, int fd)
{
    if (rec->registered)
        return 0;
    int rc = strand__poller_arm(fd);
    if (rc == -EPERM) /* the backend cannot watch it: its calls go off-load from now on */
        atomic_store_explicit(&rec->kind, STRAND__FD_FILE, memory_order_release);
    if (rc < 0)
        return rc;
    rec->registered = true;
    return 0;
}

int strand__fd_wait(strand__fdrec *rec, int fd, int dir, unsigned seq, int64_t deadline)
{
    if (deadline == 0)
        return -EAGAIN;
    if (strand__current() == NULL)
        return thread_wait(fd, dir, deadline);

    strand__spin_lock(&rec->lock);
    int rc = arm(rec, fd);
    if (rc < 0) {
        strand__spin_unlock(&rec->lock);
        return rc;
    }
    if (rec->closing) {
        /* strand_fd_close has woken the waiters and is about to close(2): a waiter parked
         * now would never be woken (closing an fd drops it from the poller without an
         * event). Retry instead: on the old descriptor the call then fails with EBADF; a
         * new one that got the same number meanwhile (accept in another strand) waits
         * normally once the close is through. */
        strand__spin_unlock(&rec->lock);
        strand_yield();
        return 0;
    }
    if (atomic_load_explicit(&rec->seq[dir], memory_order_acquire) != seq) {
        strand__spin_unlock(&rec->lock); /* an event came since the attempt: retry */
        return 0;
    }
    strand__wait_reg r;
    r.w.index = dir;
    return strand__wait(&r, &fd_ops, rec, deadline,
                        dir == STRAND__DIR_READ ? STRAND__WAIT_FD_READ : STRAND__WAIT_FD_WRITE,
                        fd);
}

/* ------------------------------------------------------------------ waking */

/* Under rec->lock: a readiness edge (or a close, status -ECANCELED) in direction dir:
 * bump its seq and claim every waiter onto *wake. */
static void edge(strand__fdrec *rec, int dir, int status, strand__waiter **wake)
{
    atomic_fetch_add_explicit(&rec->seq[dir], 1, memory_order_acq_rel);
    if (wake != NULL)
        strand__waitq_claim_all(&rec->q[dir], status, wake);
}

static int fire(strand__fdrec *rec, bool rd, bool wr)
{
    strand__waiter *wake = NULL;
    strand__spin_lock(&rec->lock);
    if (rd)
        edge(rec, STRAND__DIR_READ, 0, &wake);
    if (wr)
        edge(rec, STRAND__DIR_WRITE, 0, &wake);
    strand__spin_unlock(&rec->lock);
    return strand__wakelist_run(wake);
}

int strand__netpoll(int64_t timeout_ns)
{
    if (strand__netpoll_init() != 0)
        return 0;
    /* A wake is meant for the blocking poller (in host-driven mode the host's thread is
     * the only poller): a non-blocking poll must leave it for that one. */
    bool consume_wake = timeout_ns != 0 || strand__cfg.host_driven;
    strand__poller_event evs[MAX_EVENTS];
    int n = strand__poller_wait(evs, MAX_EVENTS, timeout_ns, consume_wake);
    int readied = 0;
    for (int i = 0; i < n; i++) {
        strand__fdrec *rec = rec_lookup(evs[i].fd, false);
        if (rec != NULL)
            readied += fire(rec, evs[i].readable, evs[i].writable);
    }
    return readied;
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
        edge(rec, STRAND__DIR_READ, -ECANCELED, &wake);
        edge(rec, STRAND__DIR_WRITE, -ECANCELED, &wake);
        if (rec->registered)
            strand__poller_disarm(fd);
        rec->registered = false;
        atomic_store_explicit(&rec->kind, STRAND__FD_UNKNOWN, memory_order_release);
        reader = atomic_exchange_explicit(&rec->reader, NULL, memory_order_acq_rel);
        rec->closing = true;
        strand__spin_unlock(&rec->lock);
        strand__wakelist_run(wake);
    }
    if (reader != NULL)
        strand__line_free(reader);
    int rc = close(fd) != 0 && errno == EBADF ? -EBADF : 0; /* EINTR/EIO: released anyway */
    if (rec != NULL) {
        /* From here a call on this number fails with EBADF in the kernel (or finds a new
         * descriptor, which starts fresh: kind is unknown again). */
        strand__spin_lock(&rec->lock);
        rec->closing = false;
        edge(rec, STRAND__DIR_READ, 0, NULL);
        edge(rec, STRAND__DIR_WRITE, 0, NULL);
        atomic_store_explicit(&rec->kind, STRAND__FD_UNKNOWN, memory_order_release);
        strand__spin_unlock(&rec->lock);
    }
    return rc;
}
