/*
 * hook_misc.c - libstrand_hook's other interposed calls: poll, select, sleep, usleep,
 * nanosleep (park the strand), getaddrinfo (the off-load pool), close (strand_fd_close,
 * so strand's records stay right), fcntl/fcntl64/ioctl(FIONBIO)/setsockopt (the user's
 * O_NONBLOCK and timeouts, recorded), and the calls that give a number a new life (socket,
 * socketpair, pipe, pipe2, dup, dup2, dup3, fclose), which reset its entry.
 *
 * Outside a strand, each is libc's call. close is the exception: it always goes through
 * strand_fd_close (which works from any thread); the close(2) strand_fd_close itself makes
 * comes back here with HOOK_CLOSING set on the number and goes to libc.
 */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL

/* ------------------------------------------------------------------ waiting */

HOOK_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    hook_real *r = hook_real_fns();
    if (timeout_ms == 0 || strand_self() == 0)
        return r->poll(fds, n, timeout_ms);
    int64_t deadline = timeout_ms < 0 ? STRAND_FOREVER : strand_deadline_in(timeout_ms * 1000000LL);
    int rc = strand_poll(fds, n, deadline);
    if (rc >= 0)
        return rc;
    if (rc == -ETIMEDOUT || rc == -EAGAIN)
        return 0;
    return hook_fail(rc == -EINVAL && fds == NULL ? EFAULT : -rc);
}

/* select as poll: the sets become pollfds, the answer goes back into the sets. */
HOOK_EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    hook_real *r = hook_real_fns();
    bool zero = tv != NULL && tv->tv_sec == 0 && tv->tv_usec == 0;
    if (zero || strand_self() == 0)
        return r->select(nfds, rd, wr, ex, tv);
    if (nfds < 0 || nfds > FD_SETSIZE || (tv != NULL && (tv->tv_sec < 0 || tv->tv_usec < 0)))
        return hook_fail(EINVAL);
    int64_t start = strand_now();
    int64_t deadline = tv == NULL ? STRAND_FOREVER
                                  : strand_deadline_in((int64_t)tv->tv_sec * NS + tv->tv_usec * 1000LL);
    struct pollfd pf[FD_SETSIZE];
    int n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = 0;
        if (rd != NULL && FD_ISSET(fd, rd))
            ev |= POLLIN;
        if (wr != NULL && FD_ISSET(fd, wr))
            ev |= POLLOUT;
        if (ex != NULL && FD_ISSET(fd, ex))
            ev |= POLLPRI;
        if (ev != 0)
            pf[n++] = (struct pollfd){ .fd = fd, .events = ev };
    }
    int rc = strand_poll(pf, (unsigned long)n, deadline);
    if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN)
        return hook_fail(-rc);
    for (int i = 0; i < n; i++) {
        if (pf[i].revents & POLLNVAL)
            return hook_fail(EBADF);
    }
    if (rd != NULL)
        FD_ZERO(rd);
    if (wr != NULL)
        FD_ZERO(wr);
    if (ex != NULL)
        FD_ZERO(ex);
    int bits = 0;
    for (int i = 0; i < n; i++) {
        short re = pf[i].revents, ev = pf[i].events;
        if ((ev & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
            FD_SET(pf[i].fd, rd);
            bits++;
        }
        if ((ev & POLLOUT) && (re & (POLLOUT | POLLERR))) {
            FD_SET(pf[i].fd, wr);
            bits++;
        }
        if ((ev & POLLPRI) && (re & POLLPRI)) {
            FD_SET(pf[i].fd, ex);
            bits++;
        }
    }
    if (tv != NULL) { /* Linux reports the time left */
        int64_t left = (int64_t)tv->tv_sec * NS + tv->tv_usec * 1000LL - (strand_now() - start);
        if (left < 0)
            left = 0;
        tv->tv_sec = left / NS;
        tv->tv_usec = (left % NS) / 1000;
    }
    return bits;
}

HOOK_EXPORT unsigned int sleep(unsigned int s)
{
    if (strand_self() == 0)
        return hook_real_fns()->sleep(s);
    strand_sleep((int64_t)s * NS);
    return 0;
}

HOOK_EXPORT int usleep(useconds_t us)
{
    if (strand_self() == 0)
        return hook_real_fns()->usleep(us);
    strand_sleep((int64_t)us * 1000);
    return 0;
}

HOOK_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (strand_self() == 0)
        return hook_real_fns()->nanosleep(req, rem);
    if (req == NULL)
        return hook_fail(EFAULT);
    if (req->tv_nsec < 0 || req->tv_nsec >= NS || req->tv_sec < 0)
        return hook_fail(EINVAL);
    strand_sleep((int64_t)req->tv_sec * NS + req->tv_nsec);
    return 0;
}

/* ------------------------------------------------------------------ getaddrinfo */

typedef struct gai_job {
    const char *node, *service;
    const struct addrinfo *hints;
    struct addrinfo **res;
    int rc, err;
} gai_job;

static void *gai_run(void *arg)
{
    gai_job *g = arg;
    g->rc = hook_real_fns()->getaddrinfo(g->node, g->service, g->hints, g->res);
    g->err = hook_errno();
    return NULL;
}

HOOK_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (strand_self() == 0)
        return hook_real_fns()->getaddrinfo(node, service, hints, res);
    gai_job g = { .node = node, .service = service, .hints = hints, .res = res };
    if (strand_blocking(gai_run, &g, NULL) != 0)
        return hook_real_fns()->getaddrinfo(node, service, hints, res); /* no pool thread */
    if (g.rc == EAI_SYSTEM)
        hook_fail(g.err);
    return g.rc;
}

/* ------------------------------------------------------------------ close and flags */

HOOK_EXPORT int close(int fd)
{
    hook_real *r = hook_real_fns();
    hook_fd *h = hook_fd_peek(fd);
    if (h != NULL && (atomic_load(&h->flags) & HOOK_CLOSING))
        return r->close(fd); /* strand_fd_close's own close(2) */
    if (h == NULL)
        h = hook_fd_slot(fd);
    if (h == NULL)
        return r->close(fd);
    atomic_fetch_or(&h->flags, HOOK_CLOSING);
    int rc = strand_fd_close(fd);
    atomic_store(&h->flags, 0); /* the number's next life starts unknown */
    return rc == 0 ? 0 : hook_fail(-rc);
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
    hook_fd *h = hook_fd_peek(fd);
    switch (cmd) {
    case F_GETFL: {
        int fl = real(fd, cmd);
        if (fl >= 0 && h != NULL) {
            unsigned f = atomic_load(&h->flags);
            if ((f & HOOK_NB_OURS) && !(f & HOOK_USER_NB))
                fl &= ~O_NONBLOCK; /* set by the hook for accept, not by the user */
        }
        return fl;
    }
    case F_SETFL: {
        long fl = (long)(intptr_t)arg;
        h = hook_fd_get(fd);
        if (h != NULL && (atomic_load(&h->flags) & HOOK_NB_OURS))
            fl |= O_NONBLOCK;
        int rc = real(fd, cmd, fl);
        if (rc == 0 && h != NULL) {
            if ((long)(intptr_t)arg & O_NONBLOCK)
                atomic_fetch_or(&h->flags, HOOK_USER_NB);
            else
                atomic_fetch_and(&h->flags, ~(unsigned)HOOK_USER_NB);
        }
        return rc;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int nfd = real(fd, cmd, arg);
        if (nfd >= 0)
            hook_fd_reset(nfd);
        return nfd;
    }
    default:
        return real(fd, cmd, arg);
    }
}

/* The third argument, whatever it is, is passed on as one machine word (an int or a
 * pointer: both travel in the same register on every ABI glibc supports for this). */
HOOK_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(hook_real_fns()->fcntl, fd, cmd, arg);
}

HOOK_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(hook_real_fns()->fcntl64, fd, cmd, arg);
}

HOOK_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int rc = hook_real_fns()->ioctl(fd, req, arg);
    if (rc == 0 && req == FIONBIO && arg != NULL) {
        hook_fd *h = hook_fd_get(fd);
        if (h != NULL && *(int *)arg)
            atomic_fetch_or(&h->flags, HOOK_USER_NB);
        else if (h != NULL)
            atomic_fetch_and(&h->flags, ~(unsigned)HOOK_USER_NB);
    }
    return rc;
}

HOOK_EXPORT int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    int rc = hook_real_fns()->setsockopt(fd, level, opt, val, len);
    if (rc != 0 || level != SOL_SOCKET || (opt != SO_RCVTIMEO && opt != SO_SNDTIMEO) ||
        len < sizeof(struct timeval))
        return rc;
    hook_fd *h = hook_fd_get(fd);
    if (h != NULL) {
        const struct timeval *tv = val;
        int64_t ns = (int64_t)tv->tv_sec * NS + (int64_t)tv->tv_usec * 1000;
        atomic_store(opt == SO_RCVTIMEO ? &h->rcvtimeo : &h->sndtimeo, ns);
    }
    return rc;
}

/* ------------------------------------------------------------------ new lives */

HOOK_EXPORT int socket(int domain, int type, int proto)
{
    int fd = hook_real_fns()->socket(domain, type, proto);
    if (fd >= 0)
        hook_fd_reset(fd);
    return fd;
}

HOOK_EXPORT int socketpair(int domain, int type, int proto, int sv[2])
{
    int rc = hook_real_fns()->socketpair(domain, type, proto, sv);
    if (rc == 0) {
        hook_fd_reset(sv[0]);
        hook_fd_reset(sv[1]);
    }
    return rc;
}

HOOK_EXPORT int pipe(int p[2])
{
    int rc = hook_real_fns()->pipe(p);
    if (rc == 0) {
        hook_fd_reset(p[0]);
        hook_fd_reset(p[1]);
    }
    return rc;
}

HOOK_EXPORT int pipe2(int p[2], int flags)
{
    int rc = hook_real_fns()->pipe2(p, flags);
    if (rc == 0) {
        hook_fd_reset(p[0]);
        hook_fd_reset(p[1]);
    }
    return rc;
}

HOOK_EXPORT int dup(int fd)
{
    int nfd = hook_real_fns()->dup(fd);
    if (nfd >= 0)
        hook_fd_reset(nfd);
    return nfd;
}

HOOK_EXPORT int dup2(int fd, int nfd)
{
    int rc = hook_real_fns()->dup2(fd, nfd);
    if (rc >= 0 && rc != fd)
        hook_fd_reset(rc);
    return rc;
}

HOOK_EXPORT int dup3(int fd, int nfd, int flags)
{
    int rc = hook_real_fns()->dup3(fd, nfd, flags);
    if (rc >= 0)
        hook_fd_reset(rc);
    return rc;
}

HOOK_EXPORT int fclose(FILE *f)
{
    if (f != NULL) {
        int fd = fileno(f);
        if (fd >= 0)
            hook_fd_reset(fd);
    }
    return hook_real_fns()->fclose(f);
}
