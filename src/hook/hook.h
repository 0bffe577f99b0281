/*
 * hook.h - what the files of libstrand_hook share (hook_fd.c: the per-fd table and libc's
 * own functions; hook_io.c and hook_misc.c: the interposed calls). The hook library sits
 * above the whole core: it uses only the public API of libstrand.so (strand.h) and libc.
 *
 * Invariants:
 *  - Every interposed function calls libc's own (found with dlsym(RTLD_NEXT)) unless it is
 *    called in a strand on a descriptor that is cooperative: a socket, pipe, FIFO, terminal,
 *    character device or anonymous inode that its user did not make non-blocking.
 *  - The per-fd entry (hook_fd) records what the USER set: O_NONBLOCK (through fcntl,
 *    ioctl(FIONBIO), SOCK_NONBLOCK, or found set at first use) and SO_RCVTIMEO /
 *    SO_SNDTIMEO. An entry is reset whenever its number starts a new life through a call
 *    the hook sees (close, dup2/dup3, socket, accept, pipe, fclose, ...).
 *  - Results are POSIX: -1 and errno, errno written by hook_fail on the thread the strand
 *    runs on when it returns (the strand may have moved to another worker while parked).
 */
#ifndef STRAND_HOOK_H
#define STRAND_HOOK_H

#include "strand.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The interposed libc names are the only symbols the library exports (it is built with
 * -fvisibility=hidden). */
#define HOOK_EXPORT __attribute__((visibility("default")))

enum {
    HOOK_KNOWN   = 1,  /* classified */
    HOOK_COOP    = 2,  /* socket, pipe, tty, ...: calls in a strand park it */
    HOOK_SOCK    = 4,
    HOOK_USER_NB = 8,  /* the user's O_NONBLOCK: libc's behaviour, EAGAIN and all */
    HOOK_NB_OURS = 16, /* the hook set O_NONBLOCK (a listening socket for accept) */
    HOOK_CLOSING = 32, /* the hook's close is in strand_fd_close: its close(2) is libc's */
    HOOK_NOWAIT_NO = 64, /* RWF_NOWAIT refused: poll first, then the plain call */
};

typedef struct hook_fd {
    atomic_uint flags;
    _Atomic int64_t rcvtimeo; /* ns, 0 = none */
    _Atomic int64_t sndtimeo;
} hook_fd;

/* libc's own functions (resolved once, lazily). */
typedef struct hook_real {
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*poll)(void *, unsigned long, int);
    int (*select)(int, void *, void *, void *, void *);
    unsigned (*sleep)(unsigned);
    int (*usleep)(unsigned);
    int (*nanosleep)(const void *, void *);
    int (*close)(int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*getaddrinfo)(const char *, const char *, const void *, void *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int *);
    int (*pipe)(int *);
    int (*pipe2)(int *, int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fclose)(void *);
} hook_real;

extern hook_real hook_libc;

/* Resolve libc's functions (idempotent; the first interposed call does it). */
void hook_init(void);
/* The entry of fd, classified; NULL for a number out of range or when memory ran out. */
hook_fd *hook_fd_get(int fd);
/* The entry of fd if it exists, unclassified or not. */
hook_fd *hook_fd_peek(int fd);
/* The entry of fd, created if need be, not classified. */
hook_fd *hook_fd_slot(int fd);
/* fd starts a new life: forget what was known of the old one. */
void hook_fd_reset(int fd);
/* Should a call on fd in the calling context park the strand? (In a strand, cooperative
 * kind, not made non-blocking by the user.) *out: the entry, for the caller. */
bool hook_coop(int fd, hook_fd **out);
/* -1 with errno = e (noinline: errno's address is taken on the thread we run on now). */
int hook_fail(int e);
/* errno now (noinline, same reason). */
int hook_errno(void);
/* libc's functions, resolved. */
static inline hook_real *hook_real_fns(void)
{
    if (__builtin_expect(hook_libc.close == NULL, 0))
        hook_init();
    return &hook_libc;
}
/* The absolute deadline for a timeout in ns (0 = none). */
int64_t hook_deadline(int64_t timeout_ns);

#endif
