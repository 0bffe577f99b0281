/*
 * strand.h - the one public header of strand, a green-thread runtime for C.
 *
 * Conventions, for every call below:
 *  - A call returns 0 (or a count, or an id) on success and a negative errno code on
 *    failure (-EINVAL, -ESRCH, -EPIPE, -ETIMEDOUT, -ECANCELED, -EAGAIN, -ENOMEM, ...).
 *    No call reads or sets errno for its result: a strand may resume on another thread.
 *  - Every blocking call takes an absolute deadline in nanoseconds on the monotonic clock
 *    (strand_now()). STRAND_FOREVER waits forever; 0 means "do not block" (-EAGAIN if
 *    the call would have to wait).
 *  - Blocking calls park the calling strand, never the worker thread. Called from a plain
 *    thread (not a strand) they block that thread instead, where documented.
 *  - strand_config and strand_attr are zero-initialisable: a zero field means "default".
 */
#ifndef STRAND_H
#define STRAND_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define STRAND_API __attribute__((visibility("default")))
#else
#define STRAND_API
#endif

#define STRAND_FOREVER ((int64_t)-1)

typedef void *(*strand_fn)(void *arg);

/* ---------------------------------------------------------------- runtime */

typedef struct strand_config {
    int    workers;        /* worker threads; 0 = STRAND_WORKERS, else online CPUs */
    size_t stack_size;     /* default stack size; 0 = STRAND_STACK_SIZE, else 128 KiB */
    size_t pool_capacity;  /* pooled stacks kept; 0 = STRAND_POOL_CAPACITY, else 10000 */
    int    yield_interval; /* strand_maybe_yield() yields every N calls; 0 = env, else off */
    int    registry_size;  /* live strands tracked for dumps; 0 = env, else 1024 */
    int    watchdog_secs;  /* report strands holding a worker longer; 0 = env, else off */
    int    host_driven;    /* 1 = no worker threads: the host calls strand_run_until_idle() */
    int    no_signals;     /* 1 = do not install SIGINT/SIGQUIT handlers */
    uint64_t seed;         /* deterministic scheduling with one worker; 0 = STRAND_SEED */
} strand_config;

STRAND_API int  strand_init(const strand_config *cfg);          /* cfg may be NULL */
STRAND_API int  strand_run(strand_fn fn, void *arg, void **result);
STRAND_API int  strand_wait_all(void);                          /* from a plain thread */
STRAND_API void strand_shutdown(void);

struct strand_stats {
    uint64_t spawned;         /* strands ever spawned */
    uint64_t completed;       /* strands that have finished */
    uint64_t active;          /* spawned - completed */
    uint64_t peak;            /* most strands alive at once (exact to a flush batch) */
    uint64_t switches;        /* context switches into strands */
    uint64_t steals;          /* strands moved by work stealing */
    uint64_t parks;           /* times a strand parked */
    uint64_t chan_ops;        /* channel sends and receives that completed */
    uint64_t mailbox_sent;    /* messages accepted by strand_send */
    uint64_t mailbox_dropped; /* messages freed unread when their strand ended */
    uint64_t stack_bytes;     /* bytes of stack address space held (live + pooled) */
    uint64_t stacks_guarded;  /* stacks with a guard page */
    uint64_t stacks_canary;   /* stacks past the mapping budget, checked by canary */
    uint64_t registry_overflow; /* strands not tracked because the registry was full */
    int      workers;
};

/* A lock-free snapshot of the counters. (A struct tag, not a typedef: the function
 * and the struct share the name strand_stats.) */
STRAND_API int strand_stats(struct strand_stats *out);

/* ---------------------------------------------------------------- strands */

enum strand_priority {
    STRAND_PRIO_NORMAL = 0, /* the default (zero) */
    STRAND_PRIO_MAX    = 1,
    STRAND_PRIO_HIGH   = 2,
    STRAND_PRIO_LOW    = 3,
};

typedef struct strand_attr {
    size_t      stack_size; /* 0 = the runtime default */
    int         priority;   /* enum strand_priority */
    const char *name;       /* copied (first 31 bytes); NULL = unnamed */
    int         worker;     /* 0 = any; n > 0 pins the strand to worker n-1 */
    int         detached;   /* 1 = start detached (no join) */
} strand_attr;

STRAND_API int64_t strand_spawn(strand_fn fn, void *arg);
STRAND_API int64_t strand_spawn_attr(strand_fn fn, void *arg, const strand_attr *attr);
STRAND_API int     strand_join(int64_t id, void **result);      /* result may be NULL */
STRAND_API int     strand_join_until(int64_t id, void **result, int64_t deadline);
STRAND_API int     strand_detach(int64_t id);
STRAND_API int64_t strand_self(void);                           /* 0 outside a strand */
STRAND_API void    strand_yield(void);
STRAND_API void    strand_maybe_yield(void);
STRAND_API void    strand_exit(void *result) __attribute__((noreturn));
STRAND_API const char *strand_name(void);                      /* "" when unnamed */

/* Embedding (host_driven = 1): run at most `budget` strand slices on the calling
 * thread; returns how many ran, and sets *more (may be NULL) to 1 if runnable work
 * remains. -EINVAL when the runtime has worker threads. */
STRAND_API int strand_run_until_idle(int budget, int *more);
/* A descriptor that becomes readable when the runtime has work (host-driven mode). */
STRAND_API int strand_poll_fd(void);
/* Nanoseconds until the next timer is due (host-driven mode); -1 = none. */
STRAND_API int64_t strand_next_timeout(void);

/* ---------------------------------------------------------------- time */

STRAND_API int64_t strand_now(void);
STRAND_API int     strand_sleep(int64_t ns);
STRAND_API int     strand_sleep_until(int64_t deadline);
/* Convenience: a deadline `ns` from now (STRAND_FOREVER stays forever). */
STRAND_API int64_t strand_deadline_in(int64_t ns);

/* ---------------------------------------------------------------- channels */

typedef struct strand_chan strand_chan;

STRAND_API int    strand_chan_create(strand_chan **out, size_t elem_size, size_t capacity);
STRAND_API int    strand_chan_send(strand_chan *ch, const void *elem, int64_t deadline);
STRAND_API int    strand_chan_recv(strand_chan *ch, void *elem, int64_t deadline);
STRAND_API int    strand_chan_close(strand_chan *ch);
STRAND_API int    strand_chan_retain(strand_chan *ch);
STRAND_API void   strand_chan_release(strand_chan *ch);
STRAND_API size_t strand_chan_len(strand_chan *ch);
STRAND_API size_t strand_chan_cap(strand_chan *ch);

enum strand_select_op { STRAND_SELECT_SEND = 1, STRAND_SELECT_RECV = 2 };

typedef struct strand_select_case {
    strand_chan *chan;
    int          op;     /* enum strand_select_op */
    void        *elem;   /* value to send, or buffer to receive into */
    int          status; /* out: 0, or -EPIPE for a closed channel that fired */
} strand_select_case;

/* Returns the index of the case that fired, -ETIMEDOUT, or -EAGAIN (deadline 0). */
STRAND_API int strand_select(strand_select_case *cases, int n, int64_t deadline);

/* ---------------------------------------------------------------- mailboxes */

STRAND_API int     strand_send(int64_t to, const void *msg, size_t len);
STRAND_API ssize_t strand_recv(void *buf, size_t cap, int64_t *from, int64_t deadline);
typedef int (*strand_match_fn)(const void *msg, size_t len, int64_t from, void *ctx);
STRAND_API ssize_t strand_recv_match(strand_match_fn pred, void *ctx, void *buf, size_t cap,
                                     int64_t *from, int64_t deadline);

/* ---------------------------------------------------------------- sync */

/* C11 spells it _Alignas, C++11 alignas; both give the same layout. */
#ifdef __cplusplus
#define STRAND_ALIGNAS(n) alignas(n)
#else
#define STRAND_ALIGNAS(n) _Alignas(n)
#endif

typedef struct strand_mutex { STRAND_ALIGNAS(8) unsigned char opaque[64]; } strand_mutex;
typedef struct strand_cond  { STRAND_ALIGNAS(8) unsigned char opaque[48]; } strand_cond;
typedef struct strand_wg    { STRAND_ALIGNAS(8) unsigned char opaque[48]; } strand_wg;
typedef struct strand_sem   { STRAND_ALIGNAS(8) unsigned char opaque[48]; } strand_sem;

STRAND_API int strand_mutex_init(strand_mutex *m);
STRAND_API int strand_mutex_lock(strand_mutex *m, int64_t deadline);
STRAND_API int strand_mutex_trylock(strand_mutex *m);
STRAND_API int strand_mutex_unlock(strand_mutex *m);
STRAND_API int strand_mutex_destroy(strand_mutex *m);

STRAND_API int strand_cond_init(strand_cond *c);
STRAND_API int strand_cond_wait(strand_cond *c, strand_mutex *m, int64_t deadline);
STRAND_API int strand_cond_signal(strand_cond *c);
STRAND_API int strand_cond_broadcast(strand_cond *c);
STRAND_API int strand_cond_destroy(strand_cond *c);

STRAND_API int strand_wg_init(strand_wg *wg);
STRAND_API int strand_wg_add(strand_wg *wg, int64_t delta);
STRAND_API int strand_wg_done(strand_wg *wg);
STRAND_API int strand_wg_wait(strand_wg *wg, int64_t deadline);
STRAND_API int strand_wg_destroy(strand_wg *wg);

STRAND_API int strand_sem_init(strand_sem *s, int64_t value);
STRAND_API int strand_sem_wait(strand_sem *s, int64_t deadline);
STRAND_API int strand_sem_post(strand_sem *s);
STRAND_API int strand_sem_destroy(strand_sem *s);

/* ---------------------------------------------------------------- I/O */

STRAND_API ssize_t strand_read(int fd, void *buf, size_t len, int64_t deadline);
STRAND_API ssize_t strand_write(int fd, const void *buf, size_t len, int64_t deadline);
STRAND_API ssize_t strand_write_all(int fd, const void *buf, size_t len, int64_t deadline);
STRAND_API ssize_t strand_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
STRAND_API ssize_t strand_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
struct sockaddr;
STRAND_API int     strand_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline);
STRAND_API int     strand_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                                  int64_t deadline);
/* Buffered line reading over any fd (the reader's buffer is kept per fd until
 * strand_fd_close). Reads one line into buf without its '\n' (a "\r\n" loses the '\r'
 * too), NUL terminated, and returns its length. A last line without '\n' is returned as
 * a line; after it, STRAND_EOF. A line longer than cap-1 bytes: -EMSGSIZE, and that
 * line is skipped, so the next call reads the line after it. */
#define STRAND_EOF (-ENODATA)
STRAND_API ssize_t strand_read_line(int fd, char *buf, size_t cap, int64_t deadline);
STRAND_API ssize_t strand_write_line(int fd, const char *line, size_t len, int64_t deadline);
STRAND_API int     strand_fd_close(int fd);

typedef void *(*strand_blocking_fn)(void *arg);
/* Runs fn(arg) on the off-load pool, parks until it returns; *result may be NULL. */
STRAND_API int strand_blocking(strand_blocking_fn fn, void *arg, void **result);
struct addrinfo;
STRAND_API int strand_getaddrinfo(const char *node, const char *service,
                                  const struct addrinfo *hints, struct addrinfo **res);

/* ---------------------------------------------------------------- diagnostics & memory */

STRAND_API int   strand_dump(int fd);
STRAND_API void *strand_arena_alloc(size_t size); /* NULL outside a strand or for size 0 */

#ifdef __cplusplus
}
#endif

#endif /* STRAND_H */
