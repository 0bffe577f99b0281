/*
 * hook_fd.c - libstrand_hook's bookkeeping: libc's own functions (dlsym(RTLD_NEXT)), the
 * per-fd table of what the user set on each descriptor, classification, and the warning
 * printed once when the library is loaded but not in the way of libc's calls.
 *
 * The table: two levels indexed by fd, chunks of 1024 entries allocated on demand and
 * never freed (pointers stay valid), as the core's fd table. Entries are atomics: any
 * thread classifies or resets any entry; a racing classification and reset end with the
 * entry unclassified or classified for the descriptor that holds the number then.
 */
#include "hook.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_SHIFT 10
#define CHUNK (1 << CHUNK_SHIFT)
#define CHUNKS 4096

hook_real hook_libc;
static _Atomic(hook_fd *) table[CHUNKS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
    hook_real *r = &hook_libc;
    *(void **)&r->read = next("read");
    *(void **)&r->write = next("write");
    *(void **)&r->readv = next("readv");
    *(void **)&r->writev = next("writev");
    *(void **)&r->recv = next("recv");
    *(void **)&r->recvfrom = next("recvfrom");
    *(void **)&r->recvmsg = next("recvmsg");
    *(void **)&r->send = next("send");
    *(void **)&r->sendto = next("sendto");
    *(void **)&r->sendmsg = next("sendmsg");
    *(void **)&r->connect = next("connect");
    *(void **)&r->accept = next("accept");
    *(void **)&r->accept4 = next("accept4");
    *(void **)&r->poll = next("poll");
    *(void **)&r->select = next("select");
    *(void **)&r->sleep = next("sleep");
    *(void **)&r->usleep = next("usleep");
    *(void **)&r->nanosleep = next("nanosleep");
    *(void **)&r->close = next("close");
    *(void **)&r->fcntl = next("fcntl");
    *(void **)&r->fcntl64 = next("fcntl64");
    if (r->fcntl64 == NULL)
        r->fcntl64 = r->fcntl;
    *(void **)&r->ioctl = next("ioctl");
    *(void **)&r->getaddrinfo = next("getaddrinfo");
    *(void **)&r->setsockopt = next("setsockopt");
    *(void **)&r->socket = next("socket");
    *(void **)&r->socketpair = next("socketpair");
    *(void **)&r->pipe = next("pipe");
    *(void **)&r->pipe2 = next("pipe2");
    *(void **)&r->dup = next("dup");
    *(void **)&r->dup2 = next("dup2");
    *(void **)&r->dup3 = next("dup3");
    *(void **)&r->fclose = next("fclose");
}

void hook_init(void)
{
    pthread_once(&once, resolve);
}

/* Loaded but bypassed: libc's read is what the program's calls find first (the library
 * was dlopen'ed without RTLD_GLOBAL, or preloaded after libc by some other means). Said
 * once, on stderr, unless STRAND_HOOK_QUIET is set. A sanitizer's interceptor in front of
 * us is not libc's, so it does not count. */
__attribute__((constructor)) static void hook_check(void)
{
    hook_init();
    void *first = dlsym(RTLD_DEFAULT, "read");
    if (first != NULL && first == (void *)hook_libc.read && getenv("STRAND_HOOK_QUIET") == NULL) {
        static const char msg[] =
            "libstrand_hook: loaded, but libc's read() comes first in symbol lookup: the "
            "hook is inactive (link it before libc, or LD_PRELOAD it; see docs/io.md)\n";
        ssize_t n = hook_libc.write(2, msg, sizeof msg - 1);
        (void)n;
    }
}

__attribute__((noinline)) int hook_fail(int e)
{
    errno = e;
    return -1;
}

__attribute__((noinline)) int hook_errno(void)
{
    return errno;
}

int64_t hook_deadline(int64_t timeout_ns)
{
    return timeout_ns > 0 ? strand_deadline_in(timeout_ns) : STRAND_FOREVER;
}

static hook_fd *lookup(int fd, bool create)
{
    if (fd < 0 || (fd >> CHUNK_SHIFT) >= CHUNKS)
        return NULL;
    _Atomic(hook_fd *) *slot = &table[fd >> CHUNK_SHIFT];
    hook_fd *chunk = atomic_load_explicit(slot, memory_order_acquire);
    if (chunk == NULL) {
        if (!create)
            return NULL;
        hook_fd *fresh = calloc(CHUNK, sizeof *fresh);
        if (fresh == NULL)
            return NULL;
        if (!atomic_compare_exchange_strong_explicit(slot, &chunk, fresh, memory_order_acq_rel,
                                                     memory_order_acquire))
            free(fresh);
        else
            chunk = fresh;
    }
    return &chunk[fd & (CHUNK - 1)];
}

hook_fd *hook_fd_peek(int fd)
{
    return lookup(fd, false);
}

hook_fd *hook_fd_slot(int fd)
{
    return lookup(fd, true);
}

void hook_fd_reset(int fd)
{
    strand_fd_forget(fd); /* the core's state of the old life goes too */
    hook_fd *h = lookup(fd, false);
    if (h == NULL)
        return;
    /* Keep only CLOSING: a close through the hook may still be finishing on this number. */
    atomic_fetch_and_explicit(&h->flags, HOOK_CLOSING, memory_order_acq_rel);
    atomic_store_explicit(&h->rcvtimeo, 0, memory_order_relaxed);
    atomic_store_explicit(&h->sndtimeo, 0, memory_order_relaxed);
}

static int64_t timeo(int fd, int opt)
{
    struct timeval tv = { 0, 0 };
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

static void classify(int fd, hook_fd *h)
{
    struct stat st;
    unsigned f = HOOK_KNOWN;
    if (fstat(fd, &st) != 0)
        return; /* not open: libc reports it */
    mode_t t = st.st_mode & S_IFMT;
    if (t == S_IFSOCK || t == S_IFIFO || t == S_IFCHR || t == 0)
        f |= HOOK_COOP;
    if (t == S_IFSOCK) {
        f |= HOOK_SOCK;
        atomic_store_explicit(&h->rcvtimeo, timeo(fd, SO_RCVTIMEO), memory_order_relaxed);
        atomic_store_explicit(&h->sndtimeo, timeo(fd, SO_SNDTIMEO), memory_order_relaxed);
    }
    int fl = hook_libc.fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        f |= HOOK_USER_NB;
    atomic_fetch_or_explicit(&h->flags, f, memory_order_acq_rel);
}

hook_fd *hook_fd_get(int fd)
{
    hook_fd *h = lookup(fd, true);
    if (h != NULL && !(atomic_load_explicit(&h->flags, memory_order_acquire) & HOOK_KNOWN)) {
        hook_init();
        classify(fd, h);
    }
    return h;
}

bool hook_coop(int fd, hook_fd **out)
{
    if (strand_self() == 0)
        return false;
    hook_fd *h = hook_fd_get(fd);
    if (h == NULL)
        return false;
    unsigned f = atomic_load_explicit(&h->flags, memory_order_acquire);
    *out = h;
    return (f & (HOOK_COOP | HOOK_USER_NB | HOOK_CLOSING)) == HOOK_COOP;
}
