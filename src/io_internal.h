/*
 * io_internal.h - what the time and I/O files of src/ share among themselves
 * (timer.c, time.c, netpoll.c, io.c, read_line.c, poll.c, blocking.c). Nothing here is used
 * by the scheduler: its hooks are in internal.h. The readiness backend (netpoll_epoll.c)
 * does not see this file: its contract is poller.h.
 *
 * The per-fd record (strand__fdrec) lives in a two-level table indexed by fd
 * (netpoll.c); a record is never freed or moved, so a pointer to it stays valid for
 * the life of the process. What it describes is one *life* of the fd number: the
 * descriptor's identity (st_dev, st_ino) and a generation `gen` that strand_fd_close,
 * strand_accept and every detected reuse bump. State that outlives one call (the line
 * reader) is keyed by `gen`, so a number that starts a new life (also after a plain
 * close(2) and reuse, detected by the identity check) can never reach the old life's bytes.
 *
 * Calls in flight: every call on an fd holds a reference (`refs`, taken by strand__fd_get,
 * dropped by strand__fd_put) from its classification to its return. strand_fd_close sets
 * FD_CLOSING, wakes parked callers with -ECANCELED and waits until the count is zero
 * before close(2), so no system call of ours can reach a reused number (Go's fdMutex).
 * A call arriving while FD_CLOSING is set waits for the close to finish, then starts over.
 *
 * Non-blocking per call, never per descriptor: sockets use MSG_DONTWAIT, pipes and
 * whatever else supports it preadv2/pwritev2(RWF_NOWAIT); terminals (and anything the
 * kernel refuses RWF_NOWAIT for) are polled first, then read or written plainly. So a
 * shared file description (stdio, a terminal, an inherited pipe) keeps its flags, and a
 * stale record cannot make a call block a worker. O_NONBLOCK is set by strand only on a
 * listening socket for strand_accept and on anonymous-inode fds without RWF_NOWAIT
 * (`nb_ours`; strand_fd_close restores it).
 *
 * Locking: `lock` guards registered, nb_ours, the identity fields, the waiter queues
 * (waitq.h) and the reader pointer's replacement; `kind`, `gen`, `refs` and `seq` are
 * atomics read without it on the fast path.
 */
#ifndef STRAND_IO_INTERNAL_H
#define STRAND_IO_INTERNAL_H

#include "waitq.h"

#include <sys/types.h>

enum strand__fdkind {
    STRAND__FD_UNKNOWN = 0, /* not seen yet (or reset: a new life of the number) */
    STRAND__FD_SOCK,        /* socket: recv/send family with MSG_DONTWAIT, epoll */
    STRAND__FD_NOWAIT,      /* pipe, FIFO, eventfd, ...: preadv2/pwritev2(RWF_NOWAIT), epoll */
    STRAND__FD_POLLFIRST,   /* terminal, or RWF_NOWAIT refused: poll(0), then the call */
    STRAND__FD_FILE,        /* regular file, block device, or epoll said EPERM: off-load */
};

enum { STRAND__DIR_READ = 0, STRAND__DIR_WRITE = 1 };

#define STRAND__FD_CLOSING 0x80000000u /* in refs: strand_fd_close is under way */

typedef struct strand__fdrec {
    strand__spinlock lock;
    bool             registered; /* armed in the poller backend (under lock) */
    bool             nb_ours;    /* strand set O_NONBLOCK on it (under lock) */
    atomic_int       kind;       /* enum strand__fdkind */
    atomic_uint      refs;       /* calls inside, | STRAND__FD_CLOSING */
    atomic_uint      gen;        /* bumped when the number starts a new life */
    atomic_uint      seq[2];     /* bumped by every readiness event, per direction */
    dev_t            dev;        /* identity of the life (under lock); ino 0: not known */
    ino_t            ino;
    mode_t           mode;       /* st_mode's type bits */
    strand__waitq    q[2];       /* parked strands, per direction (under lock) */
    strand__waitq    drainq;     /* strand_fd_close waiting for refs to reach 0 */
    strand__waitq    reopenq;    /* calls waiting for a close under way to finish */
    _Atomic(void *)  reader;     /* read_line.c's buffered reader, or NULL */
} strand__fdrec;

/* The record of fd, classified on first use, with a reference held: every successful call
 * is paired with strand__fd_put. NULL with *err set (-EBADF for a closed or invalid fd). */
strand__fdrec *strand__fd_get(int fd, int *err);
void strand__fd_put(strand__fdrec *rec);
/* Classify rec (the caller holds a reference) if its kind is unknown: 0 or -errno. */
int strand__fd_ensure(strand__fdrec *rec, int fd);
/* Is fd still the descriptor the record describes (fstat: st_dev and st_ino)? If not, the
 * number started a new life behind strand's back (plain close(2) and reuse): the record is
 * reset to it (new generation, kind re-classified, not armed) and the answer is false. */
bool strand__fd_same(strand__fdrec *rec, int fd);
/* The record's kind refused a per-call non-blocking form (EOPNOTSUPP from RWF_NOWAIT,
 * ENOTSOCK from MSG_DONTWAIT): re-classify it; `tried` is the kind that failed. */
void strand__fd_reclassify(strand__fdrec *rec, int fd, int tried);
/* strand_accept made fd: it starts a new life whatever a plainly closed fd with the same
 * number left in its record. */
void strand__fd_fresh_socket(int fd);
/* strand_connect: the socket starts a stream; state kept for an earlier one (the line
 * reader) must not reach it. */
void strand__fd_new_stream(strand__fdrec *rec);
/* Park the calling strand (or, on a plain thread, poll(2)) until fd may be ready in `dir`.
 * `seq` is rec->seq[dir] read before the call that would have blocked. Returns 0 (retry the
 * call), -ETIMEDOUT, -ECANCELED (strand_fd_close), or -EPERM (the poller refused the fd:
 * it is now STRAND__FD_FILE; retry through the off-load pool). */
int strand__fd_wait(strand__fdrec *rec, int fd, int dir, unsigned seq, int64_t deadline);
/* Read rec->seq[dir] before an attempt. */
static inline unsigned strand__fd_seq(strand__fdrec *rec, int dir)
{
    return atomic_load_explicit(&rec->seq[dir], memory_order_acquire);
}
/* For strand_poll (poll.c): the record lookup without classification or reference, and
 * arming; under rec->lock. */
strand__fdrec *strand__fd_lookup(int fd);
extern const struct strand__wait_ops strand__fd_wait_ops; /* waiters: w->index = direction */
int strand__fd_arm(strand__fdrec *rec, int fd);

/* read_line.c: free a reader detached from its record by strand_fd_close. */
void strand__line_free(void *reader);

#endif
