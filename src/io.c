/*
 * io.c - the blocking-style I/O calls: strand_read/write/readv/writev/write_all,
 * strand_accept, strand_connect.
 *
 * Every call has the same shape (io_run): take a reference on the fd's record (netpoll.c:
 * a strand_fd_close waits for it), try the system call in its non-blocking form; on EAGAIN
 * park on the record until the netpoller sees readiness (or the deadline passes, or
 * strand_fd_close cancels), then try again. Regular files (epoll cannot wait for them) make
 * the system call directly while hand-off is on (a slow disk then costs a hand-off, not the
 * other strands' progress), else on the off-load pool. From a plain thread the wait is
 * poll(2).
 *
 * Non-blocking per call, so the descriptor's own flags (a shared description: stdio, a
 * terminal, an inherited pipe) are never changed and a stale record cannot block a worker:
 *   SOCK       recv/recvmsg/send/sendmsg with MSG_DONTWAIT (sends also MSG_NOSIGNAL: a peer
 *              that went away is -EPIPE, not a SIGPIPE; pipes cannot do that, docs/io.md)
 *   NOWAIT     preadv2/pwritev2(..., -1, RWF_NOWAIT)
 *   POLLFIRST  poll(2) with timeout 0, then the plain call only if the fd is ready
 * A kind whose per-call form the kernel refuses (ENOTSOCK: the number is now something
 * else; EOPNOTSUPP: no RWF_NOWAIT) is re-classified and the call retried.
 * strand_accept sets O_NONBLOCK on a listening socket (there is no per-call form of
 * accept); strand_connect sets it only around its connect(2).
 */
#include "io_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <poll.h>
#include <unistd.h>

typedef struct io_req {
    int           kind;
    strand__fdrec *rec;
    void         *buf;
    size_t        len;
    const struct iovec *iov;
    int           iovcnt;
    struct sockaddr *addr;
    socklen_t    *addrlen;
} io_req;

typedef ssize_t (*io_op)(int fd, io_req *r);

static ssize_t neg_errno(ssize_t n)
{
    return n >= 0 ? n : -errno;
}

/* POLLFIRST: is fd ready for `events` right now? (An error or hang-up counts: the call
 * then reports it.) */
static bool ready_now(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    return poll(&p, 1, 0) > 0;
}

static ssize_t op_read(int fd, io_req *r)
{
    struct iovec v = { r->buf, r->len };
    switch (r->kind) {
    case STRAND__FD_SOCK:   return neg_errno(recv(fd, r->buf, r->len, MSG_DONTWAIT));
    case STRAND__FD_NOWAIT: return neg_errno(preadv2(fd, &v, 1, -1, RWF_NOWAIT));
    case STRAND__FD_POLLFIRST:
        if (!ready_now(fd, POLLIN))
            return -EAGAIN;
        /* fall through */
    default:                return neg_errno(read(fd, r->buf, r->len));
    }
}

static ssize_t op_write(int fd, io_req *r)
{
    struct iovec v = { r->buf, r->len };
    switch (r->kind) {
    case STRAND__FD_SOCK:
        return neg_errno(send(fd, r->buf, r->len, MSG_DONTWAIT | MSG_NOSIGNAL));
    case STRAND__FD_NOWAIT: return neg_errno(pwritev2(fd, &v, 1, -1, RWF_NOWAIT));
    case STRAND__FD_POLLFIRST:
        if (!ready_now(fd, POLLOUT))
            return -EAGAIN;
        /* fall through */
    default:                return neg_errno(write(fd, r->buf, r->len));
    }
}

static ssize_t op_readv(int fd, io_req *r)
{
    struct msghdr m = { .msg_iov = (struct iovec *)r->iov, .msg_iovlen = (size_t)r->iovcnt };
    switch (r->kind) {
    case STRAND__FD_SOCK:   return neg_errno(recvmsg(fd, &m, MSG_DONTWAIT));
    case STRAND__FD_NOWAIT: return neg_errno(preadv2(fd, r->iov, r->iovcnt, -1, RWF_NOWAIT));
    case STRAND__FD_POLLFIRST:
        if (!ready_now(fd, POLLIN))
            return -EAGAIN;
        /* fall through */
    default:                return neg_errno(readv(fd, r->iov, r->iovcnt));
    }
}

static ssize_t op_writev(int fd, io_req *r)
{
    struct msghdr m = { .msg_iov = (struct iovec *)r->iov, .msg_iovlen = (size_t)r->iovcnt };
    switch (r->kind) {
    case STRAND__FD_SOCK:
        return neg_errno(sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL));
    case STRAND__FD_NOWAIT: return neg_errno(pwritev2(fd, r->iov, r->iovcnt, -1, RWF_NOWAIT));
    case STRAND__FD_POLLFIRST:
        if (!ready_now(fd, POLLOUT))
            return -EAGAIN;
        /* fall through */
    default:                return neg_errno(writev(fd, r->iov, r->iovcnt));
    }
}

/* accept has no per-call non-blocking form: the listening socket itself is made
 * non-blocking (checked on every call, so a reused number is caught too; strand_fd_close
 * restores the flag). */
static ssize_t op_accept(int fd, io_req *r)
{
    int fl = fcntl(fd, F_GETFL); /* whatever the record's kind says: it may be stale */
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK)) {
        if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
            return -errno;
        strand__spin_lock(&r->rec->lock);
        r->rec->nb_ours = true;
        strand__spin_unlock(&r->rec->lock);
    }
    return neg_errno(accept4(fd, r->addr, r->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

/* ------------------------------------------------------------------ off-load for files */

typedef struct offload_job {
    io_op   op;
    int     fd;
    io_req *req;
    ssize_t result;
} offload_job;

static void *offload_run(void *arg)
{
    offload_job *j = arg;
    do {
        j->result = j->op(j->fd, j->req);
    } while (j->result == -EINTR);
    return NULL;
}

static ssize_t offload(int fd, io_op op, io_req *req)
{
    offload_job j = { .op = op, .fd = fd, .req = req };
    int rc = strand_blocking(offload_run, &j, NULL); /* runs inline on a plain thread */
    return rc < 0 ? rc : j.result;
}

/* A regular file's call. With hand-off on it is made right here, as Go makes it: a slow
 * disk holds this worker until the monitor moves its queue to a spare thread, which costs
 * far less than a pool round trip on every call (1,000,000 lines written to a file took
 * 33 s through the pool). Without hand-off the pool keeps the worker's other strands
 * running. */
static ssize_t file_call(int fd, io_op op, io_req *req)
{
    if (!strand__handoff_enabled())
        return offload(fd, op, req);
    offload_job j = { .op = op, .fd = fd, .req = req };
    offload_run(&j);
    return j.result;
}

/* ------------------------------------------------------------------ the loop */

/* The per-call form failed because the record's kind is wrong for this descriptor. */
static bool wrong_kind(int kind, ssize_t n)
{
    return (kind == STRAND__FD_SOCK && n == -ENOTSOCK) ||
           (kind == STRAND__FD_NOWAIT && n == -EOPNOTSUPP);
}

static ssize_t io_loop(strand__fdrec *rec, int fd, int dir, io_op op, io_req *req,
                       int64_t deadline)
{
    req->rec = rec;
    for (int fixes = 0;;) {
        req->kind = atomic_load_explicit(&rec->kind, memory_order_acquire);
        if (req->kind == STRAND__FD_FILE) {
            /* A call costs more than an fstat: make sure the number was not reused by a
             * socket or pipe, which would block a pool thread (or this worker) for good. */
            if (!strand__fd_same(rec, fd))
                continue;
            return file_call(fd, op, req);
        }
        if (req->kind == STRAND__FD_UNKNOWN) { /* a new life seen mid-call: classify */
            int err = strand__fd_ensure(rec, fd);
            if (err < 0)
                return err;
            continue;
        }
        unsigned seq = strand__fd_seq(rec, dir);
        ssize_t n = op(fd, req);
        if (n >= 0)
            return n;
        if (n == -EINTR)
            continue;
        if (wrong_kind(req->kind, n) && fixes++ < 4) {
            strand__fd_reclassify(rec, fd, req->kind);
            continue;
        }
        if (n != -EAGAIN && n != -EWOULDBLOCK)
            return n;
        int rc = strand__fd_wait(rec, fd, dir, seq, deadline);
        if (rc == -EPERM)
            continue; /* epoll refused it: the record now says FILE */
        if (rc < 0)
            return rc;
    }
}

static ssize_t io_run(int fd, int dir, io_op op, io_req *req, int64_t deadline)
{
    int err = 0;
    strand__fdrec *rec = strand__fd_get(fd, &err);
    if (rec == NULL)
        return err;
    ssize_t n = io_loop(rec, fd, dir, op, req, deadline);
    strand__fd_put(rec);
    return n;
}

ssize_t strand_read(int fd, void *buf, size_t len, int64_t deadline)
{
    if (buf == NULL && len > 0)
        return -EINVAL;
    io_req r = { .buf = buf, .len = len };
    return io_run(fd, STRAND__DIR_READ, op_read, &r, deadline);
}

ssize_t strand_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    if (buf == NULL && len > 0)
        return -EINVAL;
    io_req r = { .buf = (void *)buf, .len = len };
    return io_run(fd, STRAND__DIR_WRITE, op_write, &r, deadline);
}

static bool iov_ok(const struct iovec *iov, int iovcnt)
{
    return iovcnt >= 0 && iovcnt <= IOV_MAX && (iov != NULL || iovcnt == 0);
}

ssize_t strand_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    if (!iov_ok(iov, iovcnt))
        return -EINVAL;
    io_req r = { .iov = iov, .iovcnt = iovcnt };
    return io_run(fd, STRAND__DIR_READ, op_readv, &r, deadline);
}

ssize_t strand_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    if (!iov_ok(iov, iovcnt))
        return -EINVAL;
    io_req r = { .iov = iov, .iovcnt = iovcnt };
    return io_run(fd, STRAND__DIR_WRITE, op_writev, &r, deadline);
}

ssize_t strand_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    if (buf == NULL && len > 0)
        return -EINVAL;
    if (len > SSIZE_MAX)
        return -EINVAL;
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = strand_write(fd, p + done, len - done, deadline);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)len;
}

/* ------------------------------------------------------------------ accept and connect */

#define ACCEPT_BACKOFF_MIN 5000000LL     /* 5 ms */
#define ACCEPT_BACKOFF_MAX 1000000000LL  /* 1 s */

static bool out_of_descriptors(ssize_t rc)
{
    return rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM;
}

int strand_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline)
{
    if ((addr == NULL) != (addrlen == NULL))
        return -EINVAL;
    int64_t backoff = ACCEPT_BACKOFF_MIN;
    for (;;) {
        io_req r = { .addr = addr, .addrlen = addrlen };
        ssize_t n = io_run(fd, STRAND__DIR_READ, op_accept, &r, deadline);
        if (n >= 0) {
            strand__fd_fresh_socket((int)n);
            return (int)n;
        }
        if (n == -ECONNABORTED || n == -EPROTO)
            continue; /* that connection died in the backlog; take the next */
        if (!out_of_descriptors(n))
            return (int)n;
        /* Out of descriptors: the pending connection stays in the backlog. Back off
         * (5 ms doubling to 1 s) and retry; the other connections keep being served. */
        if (deadline == 0)
            return (int)n;
        int64_t now = strand_now();
        if (deadline > 0 && now >= deadline)
            return -ETIMEDOUT;
        int64_t until = now + backoff;
        if (deadline > 0 && deadline < until)
            until = deadline;
        int src = strand_sleep_until(until);
        if (src < 0)
            return src; /* -ECANCELED: the back-off is a blocking call like any other */
        backoff = backoff * 2 > ACCEPT_BACKOFF_MAX ? ACCEPT_BACKOFF_MAX : backoff * 2;
    }
}

/* Has the non-blocking connect finished? 1 yes, 0 not yet, or the negative error. */
static int connect_done(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (poll(&p, 1, 0) < 0)
        return errno == EINTR ? 0 : -errno;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    if (err != 0)
        return -err;
    return (p.revents & (POLLOUT | POLLHUP | POLLERR)) ? 1 : 0;
}

/* connect(2) in its non-blocking form: O_NONBLOCK only for the call (the connection goes
 * on in the kernel either way), so a blocking socket stays blocking for its owner. */
static int connect_nb(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    int rc = connect(fd, addr, addrlen) == 0 ? 0 : -errno;
    if (!(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
    return rc;
}

static int connect_loop(strand__fdrec *rec, int fd, const struct sockaddr *addr,
                        socklen_t addrlen, int64_t deadline)
{
    if (atomic_load_explicit(&rec->kind, memory_order_acquire) != STRAND__FD_SOCK)
        return -ENOTSOCK;
    unsigned seq = strand__fd_seq(rec, STRAND__DIR_WRITE);
    int e = connect_nb(fd, addr, addrlen);
    if (e == 0)
        return 0;
    if (e == -EISCONN)
        return -EISCONN;
    if (e != -EINPROGRESS && e != -EALREADY && e != -EINTR)
        return e;
    for (;;) {
        int rc = strand__fd_wait(rec, fd, STRAND__DIR_WRITE, seq, deadline);
        if (rc == -EAGAIN)
            return -EINPROGRESS; /* deadline 0: the connect goes on; call again to finish */
        if (rc < 0)
            return rc;
        seq = strand__fd_seq(rec, STRAND__DIR_WRITE);
        int done = connect_done(fd);
        if (done != 0)
            return done < 0 ? done : 0;
    }
}

int strand_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
    if (addr == NULL)
        return -EINVAL;
    int err = 0;
    strand__fdrec *rec = strand__fd_get(fd, &err);
    if (rec == NULL)
        return err;
    strand__fd_new_stream(rec);
    int rc = connect_loop(rec, fd, addr, addrlen, deadline);
    strand__fd_put(rec);
    return rc;
}
