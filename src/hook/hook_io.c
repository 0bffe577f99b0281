/*
 * hook_io.c - libstrand_hook's interposed data calls: read, write, readv, writev, recv,
 * recvfrom, recvmsg, send, sendto, sendmsg, connect, accept, accept4.
 *
 * In a strand, on a cooperative descriptor the user left blocking (hook_coop), each call
 * is libc's call in its per-call non-blocking form (MSG_DONTWAIT on sockets,
 * preadv2/pwritev2 with RWF_NOWAIT elsewhere, or poll(0) first where the kernel refuses
 * RWF_NOWAIT, as on terminals), and on EAGAIN the strand parks in strand_poll until the fd
 * is ready or the SO_RCVTIMEO / SO_SNDTIMEO deadline passes (then EAGAIN, as Linux
 * reports such a timeout). The descriptor's flags never change, except a listening socket
 * that accept makes non-blocking (reported by fcntl as the user set it, hook_misc.c).
 * Sends keep libc's SIGPIPE behaviour: no MSG_NOSIGNAL is added.
 * Everywhere else: exactly libc's call.
 */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum { RD = 0, WR = 1 };

typedef struct attempt {
    hook_fd            *h;
    int                 dir;
    void               *buf;
    size_t              len;
    const struct iovec *iov;
    int                 iovcnt;
    int                 flags;
    struct msghdr      *msg;
    struct sockaddr    *addr;
    socklen_t          *addrlen;
    const struct sockaddr *to;
    socklen_t           tolen;
    ssize_t (*op)(int fd, struct attempt *a);
} attempt;

/* Where RWF_NOWAIT is refused: ready now? If not, -1/EAGAIN. */
static bool ready_now(int fd, int dir)
{
    struct pollfd p = { .fd = fd, .events = dir == RD ? POLLIN : POLLOUT };
    return hook_real_fns()->poll(&p, 1, 0) > 0;
}

static ssize_t nowait_refused(hook_fd *h)
{
    atomic_fetch_or_explicit(&h->flags, HOOK_NOWAIT_NO, memory_order_relaxed);
    return -2; /* retry in the poll-first form */
}

/* One attempt on a non-socket with an iovec: RWF_NOWAIT, or poll first. -2: retry. */
static ssize_t iov_attempt(int fd, attempt *a, const struct iovec *iov, int cnt)
{
    hook_real *r = hook_real_fns();
    if (!(atomic_load_explicit(&a->h->flags, memory_order_relaxed) & HOOK_NOWAIT_NO)) {
        ssize_t n = a->dir == RD ? preadv2(fd, iov, cnt, -1, RWF_NOWAIT)
                                 : pwritev2(fd, iov, cnt, -1, RWF_NOWAIT);
        if (n >= 0 || hook_errno() != EOPNOTSUPP)
            return n;
        return nowait_refused(a->h);
    }
    if (!ready_now(fd, a->dir)) {
        hook_fail(EAGAIN);
        return -1;
    }
    return a->dir == RD ? r->readv(fd, iov, cnt) : r->writev(fd, iov, cnt);
}

static ssize_t op_read(int fd, attempt *a)
{
    if (atomic_load_explicit(&a->h->flags, memory_order_relaxed) & HOOK_SOCK)
        return hook_real_fns()->recv(fd, a->buf, a->len, MSG_DONTWAIT);
    struct iovec v = { a->buf, a->len };
    return iov_attempt(fd, a, &v, 1);
}

static ssize_t op_write(int fd, attempt *a)
{
    if (atomic_load_explicit(&a->h->flags, memory_order_relaxed) & HOOK_SOCK)
        return hook_real_fns()->send(fd, a->buf, a->len, MSG_DONTWAIT);
    struct iovec v = { a->buf, a->len };
    return iov_attempt(fd, a, &v, 1);
}

static ssize_t op_readv(int fd, attempt *a)
{
    if (atomic_load_explicit(&a->h->flags, memory_order_relaxed) & HOOK_SOCK) {
        struct msghdr m = { .msg_iov = (struct iovec *)a->iov, .msg_iovlen = (size_t)a->iovcnt };
        return hook_real_fns()->recvmsg(fd, &m, MSG_DONTWAIT);
    }
    return iov_attempt(fd, a, a->iov, a->iovcnt);
}

static ssize_t op_writev(int fd, attempt *a)
{
    if (atomic_load_explicit(&a->h->flags, memory_order_relaxed) & HOOK_SOCK) {
        struct msghdr m = { .msg_iov = (struct iovec *)a->iov, .msg_iovlen = (size_t)a->iovcnt };
        return hook_real_fns()->sendmsg(fd, &m, MSG_DONTWAIT);
    }
    return iov_attempt(fd, a, a->iov, a->iovcnt);
}

static ssize_t op_recvfrom(int fd, attempt *a)
{
    return hook_real_fns()->recvfrom(fd, a->buf, a->len, a->flags | MSG_DONTWAIT, a->addr,
                                     a->addrlen);
}

static ssize_t op_recvmsg(int fd, attempt *a)
{
    return hook_real_fns()->recvmsg(fd, a->msg, a->flags | MSG_DONTWAIT);
}

static ssize_t op_sendto(int fd, attempt *a)
{
    return hook_real_fns()->sendto(fd, a->buf, a->len, a->flags | MSG_DONTWAIT, a->to, a->tolen);
}

static ssize_t op_sendmsg(int fd, attempt *a)
{
    return hook_real_fns()->sendmsg(fd, a->msg, a->flags | MSG_DONTWAIT);
}

static ssize_t op_accept(int fd, attempt *a)
{
    return hook_real_fns()->accept4(fd, a->addr, a->addrlen, a->flags);
}

/* Park until fd is ready in a->dir or the deadline passes: 0 (try again) or -1/errno. */
static int park(int fd, int dir, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = dir == RD ? POLLIN : POLLOUT };
    int rc = strand_poll(&p, 1, deadline);
    if (rc == -ETIMEDOUT || rc == -EAGAIN)
        return hook_fail(EAGAIN); /* what an SO_RCVTIMEO/SO_SNDTIMEO timeout reports */
    if (rc < 0)
        return hook_fail(-rc);
    if (p.revents & POLLNVAL)
        return hook_fail(EBADF);
    return 0;
}

/* libc's own call for an attempt of read/write/readv/writev. */
static ssize_t plain_call(int fd, attempt *a)
{
    hook_real *r = hook_real_fns();
    if (a->op == op_read)
        return r->read(fd, a->buf, a->len);
    if (a->op == op_write)
        return r->write(fd, a->buf, a->len);
    if (a->op == op_readv)
        return r->readv(fd, a->iov, a->iovcnt);
    return r->writev(fd, a->iov, a->iovcnt);
}

/* The entry said socket, the kernel said ENOTSOCK: the number started a new life the
 * hook did not see (closed by a path that bypasses the PLT). Classify it again. Returns
 * 0: not that case (the error stands), 1: now libc's business, 2: retry (another
 * cooperative kind). */
static int stale_socket(int fd, attempt *a)
{
    bool generic = a->op == op_read || a->op == op_write || a->op == op_readv ||
                   a->op == op_writev;
    if (!generic || !(atomic_load(&a->h->flags) & HOOK_SOCK))
        return 0;
    hook_fd_reset(fd);
    hook_fd *h;
    if (!hook_coop(fd, &h))
        return 1;
    return (atomic_load(&h->flags) & HOOK_SOCK) ? 0 : 2;
}

static ssize_t coop(int fd, attempt *a)
{
    int64_t t = atomic_load_explicit(a->dir == RD ? &a->h->rcvtimeo : &a->h->sndtimeo,
                                     memory_order_relaxed);
    int64_t deadline = hook_deadline(t);
    for (;;) {
        ssize_t n = a->op(fd, a);
        if (n >= 0)
            return n;
        if (n == -2)
            continue;
        int e = hook_errno();
        if (e == EINTR)
            continue;
        if (e == ENOTSOCK) {
            int st = stale_socket(fd, a);
            if (st == 1)
                return plain_call(fd, a);
            if (st == 2)
                continue;
            return hook_fail(e); /* e.g. recv on a pipe: what libc says */
        }
        if (e != EAGAIN && e != EWOULDBLOCK)
            return hook_fail(e);
        if (park(fd, a->dir, deadline) < 0)
            return -1;
    }
}

HOOK_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
    hook_fd *h;
    if (!hook_coop(fd, &h))
        return hook_real_fns()->read(fd, buf, len);
    attempt a = { .h = h, .dir = RD, .buf = buf, .len = len, .op = op_read };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    hook_fd *h;
    if (!hook_coop(fd, &h))
        return hook_real_fns()->write(fd, buf, len);
    attempt a = { .h = h, .dir = WR, .buf = (void *)buf, .len = len, .op = op_write };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    hook_fd *h;
    if (!hook_coop(fd, &h))
        return hook_real_fns()->readv(fd, iov, iovcnt);
    attempt a = { .h = h, .dir = RD, .iov = iov, .iovcnt = iovcnt, .op = op_readv };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    hook_fd *h;
    if (!hook_coop(fd, &h))
        return hook_real_fns()->writev(fd, iov, iovcnt);
    attempt a = { .h = h, .dir = WR, .iov = iov, .iovcnt = iovcnt, .op = op_writev };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                 socklen_t *addrlen)
{
    hook_fd *h;
    if ((flags & MSG_DONTWAIT) || !hook_coop(fd, &h))
        return hook_real_fns()->recvfrom(fd, buf, len, flags, addr, addrlen);
    attempt a = { .h = h, .dir = RD, .buf = buf, .len = len, .flags = flags, .addr = addr,
                  .addrlen = addrlen, .op = op_recvfrom };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    hook_fd *h;
    if ((flags & MSG_DONTWAIT) || !hook_coop(fd, &h))
        return hook_real_fns()->recv(fd, buf, len, flags);
    attempt a = { .h = h, .dir = RD, .buf = buf, .len = len, .flags = flags,
                  .op = op_recvfrom };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    hook_fd *h;
    if ((flags & MSG_DONTWAIT) || !hook_coop(fd, &h))
        return hook_real_fns()->recvmsg(fd, msg, flags);
    attempt a = { .h = h, .dir = RD, .msg = msg, .flags = flags, .op = op_recvmsg };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
    hook_fd *h;
    if ((flags & MSG_DONTWAIT) || !hook_coop(fd, &h))
        return hook_real_fns()->sendto(fd, buf, len, flags, to, tolen);
    attempt a = { .h = h, .dir = WR, .buf = (void *)buf, .len = len, .flags = flags,
                  .to = to, .tolen = tolen, .op = op_sendto };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    hook_fd *h;
    if ((flags & MSG_DONTWAIT) || !hook_coop(fd, &h))
        return hook_real_fns()->send(fd, buf, len, flags);
    attempt a = { .h = h, .dir = WR, .buf = (void *)buf, .len = len, .flags = flags,
                  .op = op_sendto };
    return coop(fd, &a);
}

HOOK_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    hook_fd *h;
    if ((flags & MSG_DONTWAIT) || !hook_coop(fd, &h))
        return hook_real_fns()->sendmsg(fd, msg, flags);
    attempt a = { .h = h, .dir = WR, .msg = (struct msghdr *)msg, .flags = flags,
                  .op = op_sendmsg };
    return coop(fd, &a);
}

/* A blocking connect as a strand sees it: started non-blocking (O_NONBLOCK only for the
 * call), then parked until writable; SO_SNDTIMEO bounds it (then EINPROGRESS, as Linux). */
HOOK_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    hook_fd *h;
    hook_real *r = hook_real_fns();
    if (!hook_coop(fd, &h) || !(atomic_load(&h->flags) & HOOK_SOCK))
        return r->connect(fd, addr, len);
    int fl = r->fcntl(fd, F_GETFL);
    if (fl < 0 || r->fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return r->connect(fd, addr, len);
    int rc = r->connect(fd, addr, len);
    int e = rc == 0 ? 0 : hook_errno();
    r->fcntl(fd, F_SETFL, fl);
    if (rc == 0)
        return 0;
    if (e != EINPROGRESS)
        return hook_fail(e);
    int64_t deadline = hook_deadline(atomic_load(&h->sndtimeo));
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    for (;;) {
        int w = strand_poll(&p, 1, deadline);
        if (w == -ETIMEDOUT)
            return hook_fail(EINPROGRESS);
        if (w < 0)
            return hook_fail(-w);
        if (p.revents & POLLNVAL)
            return hook_fail(EBADF);
        if (p.revents & (POLLOUT | POLLERR | POLLHUP))
            break;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return hook_fail(hook_errno());
    return err == 0 ? 0 : hook_fail(err);
}

HOOK_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    hook_fd *h;
    hook_real *r = hook_real_fns();
    if (!hook_coop(fd, &h)) {
        int c = r->accept4(fd, addr, addrlen, flags);
        if (c >= 0)
            hook_fd_reset(c);
        return c;
    }
    /* accept has no per-call non-blocking form: the listener becomes non-blocking, and
     * fcntl(F_GETFL) keeps reporting what the user set. */
    if (!(atomic_load(&h->flags) & HOOK_NB_OURS)) {
        int fl = r->fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK) && r->fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
            atomic_fetch_or(&h->flags, HOOK_NB_OURS);
    }
    attempt a = { .h = h, .dir = RD, .addr = addr, .addrlen = addrlen, .flags = flags,
                  .op = op_accept };
    ssize_t c = coop(fd, &a);
    if (c >= 0)
        hook_fd_reset((int)c);
    return (int)c;
}

HOOK_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return accept4(fd, addr, addrlen, 0);
}
