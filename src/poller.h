/*
 * poller.h - the contract between the portable network poller (netpoll.c: fd records,
 * parking and waking strands on them, strand_fd_close) and the readiness backends
 * (netpoll_epoll.c; netpoll_io_uring.c when liburing was found at configure time). Each
 * backend fills one strand__poller_ops table with the calls below; poller.c picks one
 * table at the first strand__poller_init (STRAND_POLLER, falling back to epoll) and
 * forwards the strand__poller_* calls to it. netpoll.c sees only those calls.
 *
 * What every backend guarantees:
 *  - Edge-triggered readiness. An fd armed with strand__poller_arm is watched for both
 *    directions until strand__poller_disarm. A wait reports it each time it *becomes*
 *    readable or writable (a hang-up or an error counts as both), at least once per such
 *    transition that happens after the arm; extra reports are allowed (netpoll.c retries
 *    the system call, so a spurious report costs one EAGAIN, a lost one a stuck strand).
 *  - Thread safety. Every call may be made from any thread, concurrently with the others
 *    and with waits: several threads may wait at once (one worker blocks while others
 *    poll with timeout 0), and each event is reported to one of them.
 *  - strand__poller_wait(evs, max, timeout_ns, consume_wake) blocks at most timeout_ns
 *    (0: do not block, < 0: no limit; it may return earlier) and returns how many fd
 *    events it wrote to evs (0 .. max): 0 after a timeout, a wake, the alarm or a signal.
 *    It never reports the backend's own descriptors and never fails.
 *  - strand__poller_wake is async-signal-safe. It makes a blocked wait that consumes wakes
 *    return promptly, or, if none is blocked, the next such wait. Wakes coalesce. A wait
 *    with consume_wake false leaves a pending wake in place (a waker that found one
 *    pending skipped its own write).
 *  - Host-driven mode: after strand__poller_alarm_enable, strand__poller_alarm(when) makes
 *    strand__poller_fd() readable by `when` (earlier is allowed: the host then finds
 *    nothing due and polls again); a later alarm never delays an earlier one.
 *    strand__poller_fd() is one descriptor the host polls for readability: readable while
 *    an fd event, a wake or a due alarm is pending; a wait consumes the alarm.
 *  - Descriptors live as long as the process: strand__poller_shutdown releases what it
 *    safely can, and a later strand__poller_init (a restarted runtime) works again.
 */
#ifndef STRAND_POLLER_H
#define STRAND_POLLER_H

#include "internal.h"

typedef struct strand__poller_event {
    int  fd;
    bool readable;
    bool writable;
} strand__poller_event;

/* Idempotent and thread-safe; 0, or the error that made the backend unusable (the same
 * one on every call). */
int  strand__poller_init(void);
/* Watch fd for both directions (see above); 0, also when it is already armed; -EPERM: this
 * kind of fd cannot be watched (netpoll.c then sends its calls to the off-load pool); or
 * another negative errno code. */
int  strand__poller_arm(int fd);
/* Stop watching fd; called before close(2). */
void strand__poller_disarm(int fd);
int  strand__poller_wait(strand__poller_event *evs, int max, int64_t timeout_ns,
                         bool consume_wake);
void strand__poller_wake(void);
int  strand__poller_fd(void);
int  strand__poller_alarm_enable(void);
void strand__poller_alarm(int64_t when);
void strand__poller_shutdown(void);

/* ------------------------------------------------------------------ backends (additive)
 * A backend is one table of the calls above, with the same meanings. poller.c calls
 * `init` at most once per table (under its own once-lock) before any other entry of it;
 * the other entries are only ever called after that init returned 0. */
typedef struct strand__poller_ops {
    const char *name; /* "epoll", "io_uring": what STRAND_POLLER names */
    int  (*init)(void);
    int  (*arm)(int fd);
    void (*disarm)(int fd);
    int  (*wait)(strand__poller_event *evs, int max, int64_t timeout_ns, bool consume_wake);
    void (*wake)(void);
    int  (*fd)(void);
    int  (*alarm_enable)(void);
    void (*alarm)(int64_t when);
    void (*shutdown)(void);
} strand__poller_ops;

extern const strand__poller_ops strand__poller_epoll;
#ifdef STRAND_HAVE_LIBURING
extern const strand__poller_ops strand__poller_io_uring;
#endif

/* The name of the backend in use ("epoll" or "io_uring"), or NULL before the first
 * successful strand__poller_init. */
const char *strand__poller_name(void);

/* For the backends' host-mode alarm (a timerfd): arm `fd` for `when` (absolute, strand_now's
 * clock) unless it is already armed for an earlier deadline still to come. `armed` is the
 * deadline it is armed for (INT64_MAX: none); returns the new one. The caller holds the lock
 * that guards both. */
int64_t strand__poller_alarm_set(int fd, int64_t armed, int64_t when);

#endif
