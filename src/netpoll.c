/*
 * netpoll.c - the portable network poller: the per-fd records strands park on (their
 * classification, their lives, the count of calls inside), the readiness dispatch that
 * wakes them, strand_fd_close, and the scheduler's strand__netpoll_* calls. Readiness
 * itself comes from the backend behind poller.h (netpoll_epoll.c), which knows nothing of
 * strands.
 *
 * The fd table: two levels, CHUNKS pointers to lazily allocated chunks of CHUNK records;
 * records are never freed or moved (pointers to them stay valid).
 *
 * Lives (io_internal.h): a record describes one life of its number, identified by
 * (st_dev, st_ino) and numbered by `gen`. new_life() forgets the old one (not armed, kind
 * unknown, gen + 1); strand_fd_close, strand__fd_fresh_socket (accept) and
 * strand__fd_same (an fstat that finds another descriptor behind the number) call it.
 *
 * References: strand__fd_get takes one (acquire), strand__fd_put drops it; the last drop
 * while STRAND__FD_CLOSING is set wakes the closer (drainq). strand_fd_close: set CLOSING
 * (under the lock) -> wake parked callers with -ECANCELED -> wait until the count is 0 ->
 * disarm, restore flags, free the reader -> close(2) -> new life, clear CLOSING, wake the
 * calls that arrived meanwhile (reopenq). A call never parks on a closing record.
 *
 * Arming: an fd is armed in the backend once per life, on its first would-block (the
 * backend watches both directions, edge-triggered); strand_fd_close disarms it. A
 * readiness event bumps the record's per-direction `seq` and wakes every strand parked in
 * that direction (spurious wake-ups are harmless: I/O calls retry the system call). A
 * strand parks only if `seq` is unchanged since before its failed attempt (checked under
 * the record lock, where events also take it), so an edge that arrives in between is never
 * lost. Parking is wait.h's sequence on the record's queue for that direction.
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

strand__fdrec *strand__fd_lookup(int fd)
{
    return rec_lookup(fd, false);
}

/* What classify found out about one life of an fd. */
typedef struct fd_info {
    int    kind;
    bool   nb_ours;
    dev_t  dev;
    ino_t  ino;
    mode_t mode;
} fd_info;

/* Anonymous-inode fds (eventfd, timerfd, signalfd, ...) have no type bits; they are
 * private to the process that made them, so setting O_NONBLOCK on one shares nothing. */
static bool is_anon(mode_t m)
{
    return (m & S_IFMT) == 0;
}

/* The kind for a descriptor whose RWF_NOWAIT was refused (or a terminal): poll first. An
 * anonymous inode also gets O_NONBLOCK (two strands reading one eventfd must not both
 * block in read(2) after one poll); a shared description (tty, pipe) never does. */
static int pollfirst_kind(int fd, mode_t mode, bool *nb_ours)
{
    if (!is_anon(mode))
        return STRAND__FD_POLLFIRST;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
        *nb_ours = true;
    return STRAND__FD_POLLFIRST;
}

static int classify(int fd, fd_info *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *out = (fd_info){ .dev = st.st_dev, .ino = st.st_ino, .mode = st.st_mode & S_IFMT };
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        out->kind = STRAND__FD_FILE; /* always "ready" to a poller: blocking calls go off-load */
    else if (S_ISSOCK(st.st_mode))
        out->kind = STRAND__FD_SOCK;
    else if (S_ISCHR(st.st_mode) && isatty(fd))
        out->kind = STRAND__FD_POLLFIRST; /* the kernel refuses RWF_NOWAIT on ttys */
    else
        out->kind = STRAND__FD_NOWAIT;    /* pipes, FIFOs, eventfds, char devices */
    if (out->ino == 0)
        out->ino = 1; /* 0 means "not known" in a record */
    return out->kind;
}

/* Under rec->lock: the record now describes the life `in`. */
static void install(strand__fdrec *rec, const fd_info *in)
{
    rec->dev = in->dev;
    rec->ino = in->ino;
    rec->mode = in->mode;
    rec->nb_ours = in->nb_ours;
    atomic_store_explicit(&rec->kind, in->kind, memory_order_release);
}

/* Under rec->lock: forget the previous life (the epoll registration, if any, went with its
 * file; bytes buffered for it are unreachable once gen moves). */
static void new_life(strand__fdrec *rec)
{
    rec->registered = false;
    rec->nb_ours = false;
    rec->ino = 0;
    rec->dev = 0;
    atomic_fetch_add_explicit(&rec->gen, 1, memory_order_acq_rel);
    atomic_store_explicit(&rec->kind, STRAND__FD_UNKNOWN, memory_order_release);
}

/* How a call waits for a close under way to finish, and strand_fd_close for the calls
 * inside to leave (wait.h): the record's lock, the queue in w->index (0 drainq, 1
 * reopenq). */
static strand__waitq *close_queue(strand__fdrec *rec, int which)
{
    return which == 0 ? &rec->drainq : &rec->reopenq;
}

static int close_publish(void *obj, strand__waiter *w)
{
    strand__fdrec *rec = obj;
    strand__waitq_push(close_queue(rec, w->index), w, rec);
    return 0;
}

static void *close_unlink(void *obj, strand__waiter *w)
{
    strand__fdrec *rec = obj;
    if (w->obj != NULL)
        strand__waitq_remove(close_queue(rec, w->index), w);
    return NULL;
}

STRAND__LOCK_FIRST(strand__fdrec);
static const strand__wait_ops close_ops = {
    strand__wait_spin_lock, strand__wait_spin_unlock, close_publish, close_unlink,
};

static void wait_reopen(strand__fdrec *rec, int fd)
{
    strand__spin_lock(&rec->lock);
    if (!(atomic_load_explicit(&rec->refs, memory_order_acquire) & STRAND__FD_CLOSING)) {
        strand__spin_unlock(&rec->lock);
        return;
    }
    strand__wait_reg r;
    r.w.index = 1;
    (void)strand__wait(&r, &close_ops, rec, STRAND_FOREVER, STRAND__WAIT_FD_READ, fd);
}

/* Take a reference; a close under way is waited out first (then the call starts over on
 * whatever the number is now: EBADF, or a new descriptor). */
static void acquire(strand__fdrec *rec, int fd)
{
    for (;;) {
        /* acquire: a call that starts after a close must see the record it reset. */
        unsigned old = atomic_fetch_add_explicit(&rec->refs, 1, memory_order_acquire);
        if (STRAND__LIKELY(!(old & STRAND__FD_CLOSING)))
            return;
        strand__fd_put(rec);
        wait_reopen(rec, fd);
    }
}

void strand__fd_put(strand__fdrec *rec)
{
    /* release: this call's system calls happen before the closer's close(2). */
    unsigned old = atomic_fetch_sub_explicit(&rec->refs, 1, memory_order_acq_rel);
    if (STRAND__LIKELY(!(old & STRAND__FD_CLOSING)) || (old & ~STRAND__FD_CLOSING) != 1)
        return;
    strand__waiter *wake = NULL;
    strand__spin_lock(&rec->lock);
    strand__waitq_claim_all(&rec->drainq, 0, &wake); /* the last one out lets the close go */
    strand__spin_unlock(&rec->lock);
    strand__wakelist_run(wake);
}

int strand__fd_ensure(strand__fdrec *rec, int fd)
{
    if (STRAND__LIKELY(atomic_load_explicit(&rec->kind, memory_order_acquire) != 0))
        return 0;
    /* Classified under the caller's reference: strand_fd_close cannot close the fd before
     * the caller is done with it, so the fstat is of this descriptor. */
    fd_info in = { 0 };
    int kind = classify(fd, &in);
    if (kind < 0)
        return kind;
    strand__spin_lock(&rec->lock);
    if (atomic_load_explicit(&rec->kind, memory_order_relaxed) == STRAND__FD_UNKNOWN)
        install(rec, &in);
    strand__spin_unlock(&rec->lock);
    return 0;
}

strand__fdrec *strand__fd_get(int fd, int *err)
{
    strand__fdrec *rec = rec_lookup(fd, true);
    if (rec == NULL) {
        *err = fd < 0 || (fd >> CHUNK_SHIFT) >= CHUNKS ? -EBADF : -ENOMEM;
        return NULL;
    }
    acquire(rec, fd);
    int rc = strand__fd_ensure(rec, fd);
    if (rc < 0) {
        strand__fd_put(rec);
        *err = rc;
        return NULL;
    }
    return rec;
}

bool strand__fd_same(strand__fdrec *rec, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return true; /* gone: the call itself reports EBADF */
    strand__spin_lock(&rec->lock);
    bool same = rec->ino == 0 || (rec->dev == st.st_dev && rec->ino == st.st_ino);
    if (rec->ino == 0) { /* a record strand_accept made: adopt the identity */
        rec->dev = st.st_dev;
        rec->ino = st.st_ino ? st.st_ino : 1;
        rec->mode = st.st_mode & S_IFMT;
    }
    if (!same)
        new_life(rec);
    strand__spin_unlock(&rec->lock);
    if (same)
        return true;
    (void)strand__fd_ensure(rec, fd); /* a failure shows in the caller's next call */
    return false;
}

void strand__fd_reclassify(strand__fdrec *rec, int fd, int tried)
{
    if (!strand__fd_same(rec, fd))
        return; /* a new life, classified afresh */
    if (tried != STRAND__FD_NOWAIT)
        return;
    strand__spin_lock(&rec->lock);
    mode_t mode = rec->mode;
    strand__spin_unlock(&rec->lock);
    bool nb = false;
    int kind = pollfirst_kind(fd, mode, &nb);
    strand__spin_lock(&rec->lock);
    rec->nb_ours = rec->nb_ours || nb;
    atomic_store_explicit(&rec->kind, kind, memory_order_release);
    strand__spin_unlock(&rec->lock);
}

void strand__fd_fresh_socket(int fd)
{
    strand__fdrec *rec = rec_lookup(fd, true);
    if (rec == NULL)
        return;
    strand__spin_lock(&rec->lock);
    new_life(rec);
    atomic_store_explicit(&rec->kind, STRAND__FD_SOCK, memory_order_release);
    strand__spin_unlock(&rec->lock);
}

void strand__fd_new_stream(strand__fdrec *rec)
{
    atomic_fetch_add_explicit(&rec->gen, 1, memory_order_acq_rel);
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

const strand__wait_ops strand__fd_wait_ops = {
    strand__wait_spin_lock, strand__wait_spin_unlock, fd_publish, fd_unlink,
};

static bool closing(strand__fdrec *rec)
{
    return atomic_load_explicit(&rec->refs, memory_order_acquire) & STRAND__FD_CLOSING;
}

/* A plain thread's wait: poll(2) in slices of at most THREAD_SLICE_MS, so a
 * strand_fd_close (which Linux's poll does not notice) ends it within one slice. */
#define THREAD_SLICE_MS 50

static int thread_wait(strand__fdrec *rec, int fd, int dir, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = dir == STRAND__DIR_READ ? POLLIN : POLLOUT };
    for (;;) {
        if (closing(rec))
            return -ECANCELED;
        int ms = THREAD_SLICE_MS;
        if (deadline >= 0) {
            int64_t left = deadline - strand_now();
            if (left <= 0)
                return -ETIMEDOUT;
            if (left < (int64_t)ms * 1000000)
                ms = (int)((left + 999999) / 1000000);
        }
        int n = poll(&p, 1, ms);
        if (n > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* Under rec->lock: arm fd in the backend on its first would-block. */
int strand__fd_arm(strand__fdrec *rec, int fd)
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
        return thread_wait(rec, fd, dir, deadline);
    /* Parking is the slow path: one fstat here finds a number that started a new life
     * behind strand's back (plain close(2), reuse) before the strand waits on the old
     * life's registration, which is gone with its file. */
    if (!strand__fd_same(rec, fd))
        return 0; /* retry as the new descriptor */

    strand__spin_lock(&rec->lock);
    if (closing(rec)) {
        /* strand_fd_close has woken the waiters and waits for us to leave. */
        strand__spin_unlock(&rec->lock);
        return -ECANCELED;
    }
    int rc = strand__fd_arm(rec, fd);
    if (rc < 0) {
        strand__spin_unlock(&rec->lock);
        return rc;
    }
    if (atomic_load_explicit(&rec->seq[dir], memory_order_acquire) != seq) {
        strand__spin_unlock(&rec->lock); /* an event came since the attempt: retry */
        return 0;
    }
    strand__wait_reg r;
    r.w.index = dir;
    return strand__wait(&r, &strand__fd_wait_ops, rec, deadline,
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

/* Under rec->lock: undo an O_NONBLOCK strand set, before the description is closed (it
 * may be shared with another process). */
static void restore_flags(strand__fdrec *rec, int fd)
{
    if (!rec->nb_ours)
        return;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    rec->nb_ours = false;
}

int strand_fd_forget(int fd)
{
    if (fd < 0)
        return -EBADF;
    strand__fdrec *rec = rec_lookup(fd, false);
    if (rec == NULL)
        return 0;
    strand__waiter *wake = NULL;
    strand__spin_lock(&rec->lock);
    if (!closing(rec)) { /* else the close under way resets the record itself */
        edge(rec, STRAND__DIR_READ, -ECANCELED, &wake);
        edge(rec, STRAND__DIR_WRITE, -ECANCELED, &wake);
        new_life(rec);
    }
    strand__spin_unlock(&rec->lock);
    strand__wakelist_run(wake);
    return 0;
}

int strand_fd_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    strand__fdrec *rec = rec_lookup(fd, false);
    if (rec == NULL)
        return close(fd) != 0 && errno == EBADF ? -EBADF : 0;
    strand__waiter *wake = NULL;
    strand__spin_lock(&rec->lock);
    unsigned old = atomic_fetch_or_explicit(&rec->refs, STRAND__FD_CLOSING, memory_order_acq_rel);
    if (old & STRAND__FD_CLOSING) {
        strand__spin_unlock(&rec->lock);
        return -EBADF; /* another close of this number is under way */
    }
    edge(rec, STRAND__DIR_READ, -ECANCELED, &wake);
    edge(rec, STRAND__DIR_WRITE, -ECANCELED, &wake);
    strand__spin_unlock(&rec->lock);
    strand__wakelist_run(wake);

    wake = NULL;
    /* Wait until every call inside has left (the woken ones, and any between two system
     * calls): only then is close(2) sure not to race a call of ours on this number. */
    strand__spin_lock(&rec->lock);
    while (atomic_load_explicit(&rec->refs, memory_order_acquire) & ~STRAND__FD_CLOSING) {
        strand__wait_reg r;
        r.w.index = 0;
        (void)strand__wait(&r, &close_ops, rec, STRAND_FOREVER, STRAND__WAIT_FD_WRITE, fd);
        strand__spin_lock(&rec->lock);
    }
    if (rec->registered)
        strand__poller_disarm(fd);
    restore_flags(rec, fd);
    void *reader = atomic_exchange_explicit(&rec->reader, NULL, memory_order_acq_rel);
    strand__spin_unlock(&rec->lock);
    if (reader != NULL)
        strand__line_free(reader);

    int rc = close(fd) != 0 && errno == EBADF ? -EBADF : 0; /* EINTR/EIO: released anyway */

    /* The number may now be reused: its next call starts a new life. */
    wake = NULL;
    strand__spin_lock(&rec->lock);
    new_life(rec);
    edge(rec, STRAND__DIR_READ, 0, NULL);
    edge(rec, STRAND__DIR_WRITE, 0, NULL);
    atomic_fetch_and_explicit(&rec->refs, ~STRAND__FD_CLOSING, memory_order_acq_rel);
    strand__waitq_claim_all(&rec->reopenq, 0, &wake);
    strand__spin_unlock(&rec->lock);
    strand__wakelist_run(wake);
    return rc;
}
