/*
 * io_internal.h - what the time and I/O files of src/ share among themselves
 * (timer.c, time.c, netpoll.c, io.c, read_line.c, blocking.c). Nothing here is used by
 * the scheduler: its hooks are in internal.h. The readiness backend (netpoll_epoll.c)
 * does not see this file: its contract is poller.h.
 *
 * The per-fd record (strand__fdrec) lives in a two-level table indexed by fd
 * (netpoll.c); a record is never freed or moved, so a pointer to it stays valid for
 * the life of the process. What it describes is the fd *number*: strand_fd_close resets it
 * before close(2), so a later fd with the same number starts fresh. An fd closed with plain
 * close(2) leaves a stale record (see docs/io.md).
 *
 * Locking: `lock` guards registered, closing, the waiter queues (waitq.h) and the reader
 * pointer's replacement;
 * `kind` and `seq` are atomics read without it on the fast path.
 */
#ifndef STRAND_IO_INTERNAL_H
#define STRAND_IO_INTERNAL_H

#include "waitq.h"

enum strand__fdkind {
    STRAND__FD_UNKNOWN = 0, /* not seen yet (or reset by strand_fd_close) */
    STRAND__FD_SOCK,        /* socket: epoll, send/recv with MSG_NOSIGNAL */
    STRAND__FD_POLL,        /* pipe, tty, eventfd, ...: epoll */
    STRAND__FD_FILE,        /* regular file, block device, or epoll said EPERM: off-load */
};

enum { STRAND__DIR_READ = 0, STRAND__DIR_WRITE = 1 };

typedef struct strand__fdrec {
    strand__spinlock lock;
    atomic_int       kind;       /* enum strand__fdkind */
    bool             registered; /* armed in the poller backend (under lock) */
    bool             closing;    /* strand_fd_close is between its wake-up and close(2) */
    atomic_uint      seq[2];     /* bumped by every readiness event, per direction */
    strand__waitq    q[2];       /* parked strands, per direction (under lock) */
    _Atomic(void *)  reader;     /* read_line.c's buffered reader, or NULL */
} strand__fdrec;

/* The record of fd, classified (O_NONBLOCK set, kind known) on first use; NULL with *err
 * set (-EBADF for a closed or invalid fd). */
strand__fdrec *strand__fd_get(int fd, int *err);
/* strand_accept made fd (non-blocking): reset whatever a plainly closed fd with the same
 * number left in its record. */
void strand__fd_fresh_socket(int fd);
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

/* read_line.c: free a reader detached from its record by strand_fd_close. */
void strand__line_free(void *reader);

#endif
