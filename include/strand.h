/**
 * @file strand.h
 * @brief The one public header of strand, a green-thread runtime for C.
 *
 * Conventions, for every call below (a call that departs from one says so in its own
 * comment, under "Exception"):
 *  - A call returns 0 (or a count, or an id) on success and a negative errno code on
 *    failure (-EINVAL, -ESRCH, -EPIPE, -ETIMEDOUT, -ECANCELED, -EAGAIN, -ENOMEM, ...).
 *    No call reads or sets errno for its result: a strand may resume on another thread.
 *  - Every blocking call takes an absolute deadline in nanoseconds on the monotonic clock
 *    (strand_now()). STRAND_FOREVER waits forever; 0 means "do not block" (-EAGAIN if
 *    the call would have to wait); a deadline already past gives -ETIMEDOUT.
 *  - Blocking calls park the calling strand, never the worker thread. Called from a plain
 *    thread (not a strand) they block that thread instead, where documented.
 *  - strand_config and strand_attr are zero-initialisable: a zero field means "default".
 *  - The header is C11 and C++11 (and later); its structs have the same layout in both.
 *
 * "Plain thread" below means any thread that is not running a strand: the program's main
 * thread, a pthread it created, a thread of another library.
 */
/**
 * @mainpage strand reference
 * Every call of include/strand.h, by area: @ref runtime, @ref strands, @ref embedding,
 * @ref time, @ref channels, @ref mailboxes, @ref sync, @ref io, @ref diag. The conventions
 * all of them follow are on the page of strand.h; each call's comment says what it returns
 * and when, and whether a plain thread may call it. The guides are in docs/ (io.md,
 * channels.md, configuration.md, debugging.md, DESIGN.md).
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

/** Marks a declaration as exported from the shared library (all others are hidden). */
#if defined(__GNUC__)
#define STRAND_API __attribute__((visibility("default")))
#else
#define STRAND_API
#endif

/** The deadline that never passes: wait until the event, however long that takes. */
#define STRAND_FOREVER ((int64_t)-1)

/**
 * The body of a strand.
 * @param arg the argument given to strand_spawn() or strand_run().
 * @return the strand's result, handed to strand_join().
 */
typedef void *(*strand_fn)(void *arg);

/* ---------------------------------------------------------------- runtime */

/**
 * @defgroup runtime Runtime
 * Starting, waiting for and stopping the runtime.
 * @{
 */

/**
 * Settings of the runtime, read once when it starts. Every field left zero takes the
 * matching `STRAND_*` environment variable, else the built-in default (see
 * docs/configuration.md for ranges and parsing).
 */
typedef struct strand_config {
    int    workers;        /**< worker threads; 0 = STRAND_WORKERS, else online CPUs; at most 1024 */
    size_t stack_size;     /**< default stack size; 0 = STRAND_STACK_SIZE, else 128 KiB; at most 1 GiB */
    size_t pool_capacity;  /**< pooled stacks kept; 0 = STRAND_POOL_CAPACITY, else 10000 */
    int    yield_interval; /**< strand_maybe_yield() yields every N calls; 0 = env, else off */
    int    registry_size;  /**< live strands tracked for dumps; 0 = env, else 1024 */
    int    watchdog_secs;  /**< report strands holding a worker longer; 0 = env, else off */
    int    host_driven;    /**< 1 = no worker threads: the host calls strand_run_until_idle() */
    int    no_signals;     /**< 1 = do not install SIGINT/SIGQUIT handlers */
    uint64_t seed;         /**< deterministic scheduling with one worker; 0 = STRAND_SEED */
    int    shutdown_ms;    /**< how long strand_shutdown() waits for cancelled strands; 0 = STRAND_SHUTDOWN_MS, else 5000 */
    int    handoff_ms;     /**< hand a worker's queue to a spare thread when one strand has held it
                                this long (a blocking call, a foreign library, a loop); 0 =
                                STRAND_HANDOFF_MS, else 10; -1 = off; at most 3600000 */
    int    slice_ms;       /**< time slice: strand_maybe_yield() yields once a strand has run this
                                long; 0 = STRAND_SLICE_MS, else 10; -1 = off; at most 3600000 */
    int    max_threads;    /**< threads that may run strands, workers and spares together; 0 =
                                STRAND_MAX_THREADS, else 256; at most 4096 (never below workers) */
} strand_config;

/**
 * Starts the runtime with explicit settings. Optional: the first strand_spawn(),
 * strand_run() or strand_poll_fd() starts it with `NULL` settings. After
 * strand_shutdown() it may be called again (with other settings).
 * @param cfg the settings; NULL = the environment and defaults for every field.
 * @return 0 on success.
 * @retval -EALREADY if the runtime is already running (started explicitly or lazily;
 *  always the case when called from a strand)
 * @retval -EINVAL for a field out of range (a negative field other than handoff_ms or
 *  slice_ms = -1, workers > 1024, registry_size > 4194304, stack_size > 1 GiB, handoff_ms or
 *  slice_ms > 3600000, max_threads > 4096, host_driven or no_signals other than 0 or 1)
 * @retval -ENOMEM out of memory
 * @retval other a negative errno of epoll_create1, eventfd or pthread_create (-EMFILE,
 *  -EAGAIN, ...) when the poller or the workers cannot be set up.
 * @par Threads
 * A plain thread may call it; so may a strand (it then gets -EALREADY).
 */
STRAND_API int  strand_init(const strand_config *cfg);          /* cfg may be NULL */
/**
 * Runs `fn(arg)` as a strand and returns when it and every other strand have finished
 * (detached ones included). Starts the runtime if needed. In host-driven mode the
 * calling thread drives the runtime (strand_run_until_idle()) until nothing is alive.
 * @param fn the first strand's body; must not be NULL.
 * @param arg passed to fn.
 * @param result receives fn's result; may be NULL.
 * @return 0 once every strand has finished.
 * @retval -EINVAL if fn is NULL
 * @retval -EDEADLK if called from a strand (it would wait for itself)
 * @retval other any error of strand_init() (runtime start) or strand_spawn().
 * @par Threads
 * Plain threads only.
 */
STRAND_API int  strand_run(strand_fn fn, void *arg, void **result);
/**
 * Waits until no strand is alive (spawned == completed, detached strands included).
 * Returns at once if the runtime was never started. In host-driven mode the calling
 * thread drives the runtime until then.
 * @return 0 when no strand is alive.
 * @retval -EDEADLK if called from a strand
 * @par Threads
 * Plain threads only.
 */
STRAND_API int  strand_wait_all(void);                          /* from a plain thread */
/**
 * Stops the runtime, ending its strands first: refuses new spawns (-ECANCELED), cancels
 * every live strand (strand_cancel(): each blocking call returns -ECANCELED, so they
 * unwind), and waits until all have ended or strand_config.shutdown_ms
 * (STRAND_SHUTDOWN_MS, default 5000; 0 from the environment: do not wait) has passed;
 * then stops and joins the worker threads and frees what it can. Strands still alive at
 * the deadline (shielded, or in a loop that never checks strand_cancelled()) are listed
 * on stderr, one dump line each (strand_dump()), and abandoned: they never run again,
 * their memory is kept and they stay counted as live, so a later strand_wait_all() would
 * wait for them. After a shutdown that returned 0, strand_init() or strand_run() starts a
 * fresh runtime, any number of times. Does nothing (returns 0) if the runtime is not
 * running.
 * @retval 0 every strand ended and the runtime is stopped
 * @retval -ETIMEDOUT some strands did not end in time (listed on stderr); the runtime is
 *         stopped all the same
 * @retval -EDEADLK called from a strand: nothing is done (a worker cannot wait for
 *         itself; cancel what should end and return to the plain thread that runs it)
 * @par Threads
 * Plain threads only.
 */
STRAND_API int strand_shutdown(void);

/** Counters of the runtime, as returned by strand_stats(). */
struct strand_stats {
    uint64_t spawned;         /**< strands ever spawned */
    uint64_t completed;       /**< strands that have finished */
    uint64_t active;          /**< spawned - completed */
    uint64_t peak;            /**< most strands alive at once (exact to a flush batch) */
    uint64_t switches;        /**< context switches into strands */
    uint64_t steals;          /**< strands moved by work stealing */
    uint64_t parks;           /**< times a strand parked */
    uint64_t chan_ops;        /**< channel sends and receives that completed */
    uint64_t mailbox_sent;    /**< messages accepted by strand_send */
    uint64_t mailbox_dropped; /**< messages freed unread when their strand ended */
    uint64_t stack_bytes;     /**< bytes of stack address space held (live + pooled) */
    uint64_t stacks_guarded;  /**< stacks with a guard page */
    uint64_t stacks_canary;   /**< stacks past the mapping budget, checked by canary */
    uint64_t registry_overflow; /**< strands not tracked because the registry was full */
    int      workers;         /**< worker threads of the running runtime (0 if none) */
    /* Hand-off and time slice (strand_config.handoff_ms, slice_ms, max_threads). */
    uint64_t handoffs;        /**< times a stuck worker's role and queue went to a spare thread */
    uint64_t handoff_strands; /**< queued strands those hand-offs moved */
    uint64_t handoff_waits;   /**< hand-offs not made for want of a thread (STRAND_MAX_THREADS
                                   reached, or pthread_create failed): that queue waited */
    uint64_t slice_requests;  /**< times a strand was asked to yield: its slice was used up */
    uint64_t slice_yields;    /**< strand_maybe_yield() calls that yielded for the slice */
    uint64_t spares_started;  /**< spare threads created */
    uint64_t spares_reaped;   /**< spare threads that ended after idling */
    uint64_t monitor_ticks;   /**< wake-ups of the monitor thread (none while all is idle) */
    int      spare_threads;   /**< spare threads alive now (parked or running) */
};

/**
 * A lock-free snapshot of the counters. Each counter is exact at some instant, not all
 * at the same instant. (A struct tag, not a typedef: the function and the struct share
 * the name strand_stats.)
 * @param out filled in; must not be NULL.
 * @return 0.
 * @retval -EINVAL if out is NULL
 * @par Threads
 * Any thread, at any time (before strand_init() too).
 */
STRAND_API int strand_stats(struct strand_stats *out);

/** @} */

/* ---------------------------------------------------------------- strands */

/**
 * @defgroup strands Strands
 * Spawning, joining and identifying strands.
 * @{
 */

/**
 * Scheduling priority of a strand (strand_attr.priority). A worker picks the highest
 * priority that has a runnable strand, except every 31st pick, which scans from LOW up:
 * no level starves.
 */
enum strand_priority {
    STRAND_PRIO_NORMAL = 0, /**< the default (zero) */
    STRAND_PRIO_MAX    = 1, /**< picked first */
    STRAND_PRIO_HIGH   = 2, /**< picked before NORMAL and LOW */
    STRAND_PRIO_LOW    = 3, /**< picked last (but see the 31st pick) */
};

/** Per-strand options of strand_spawn_attr(); all-zero gives strand_spawn()'s strand. */
typedef struct strand_attr {
    size_t      stack_size; /**< 0 = the runtime default; else 16 KiB .. 1 GiB */
    int         priority;   /**< enum strand_priority */
    const char *name;       /**< copied (first 31 bytes); NULL = unnamed */
    int         worker;     /**< 0 = any; n > 0 pins the strand to worker n-1 (n <= workers) */
    int         detached;   /**< 1 = start detached (no join) */
} strand_attr;

/**
 * Spawns a strand running `fn(arg)` with the default attributes. Starts the runtime if
 * needed. The new strand is queued to run soon (first on the spawning worker).
 * @param fn the strand's body; must not be NULL.
 * @param arg passed to fn.
 * @return the new strand's id (> 0, never reused), or a negative errno code as
 *  strand_spawn_attr().
 * @par Threads
 * Any thread: from a plain thread the strand goes to the global queue.
 */
STRAND_API int64_t strand_spawn(strand_fn fn, void *arg);
/**
 * Spawns a strand running `fn(arg)` with the given attributes.
 * @param fn the strand's body; must not be NULL.
 * @param arg passed to fn.
 * @param attr the attributes; NULL = all defaults.
 * @return the new strand's id (> 0, never reused).
 * @retval -EINVAL if fn is NULL, attr->priority is not an enum strand_priority,
 *  attr->stack_size is neither 0 nor 16 KiB .. 1 GiB, or attr->worker is negative or above
 *  the number of workers
 * @retval -ECANCELED if strand_shutdown() is in progress
 * @retval -ENOMEM if no stack or id could be allocated
 * @retval other any error of strand_init() when this call starts the runtime.
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_spawn_attr(strand_fn fn, void *arg, const strand_attr *attr);
/**
 * Waits for strand `id` to finish and takes its result; equal to
 * strand_join_until(id, result, STRAND_FOREVER). Each strand is joined (or detached)
 * once; a finished, unjoined strand keeps its id and result (not its stack) until then.
 * @param id the strand, as returned by strand_spawn().
 * @param result receives the strand's result; may be NULL.
 * @return as strand_join_until(), except that -EAGAIN and -ETIMEDOUT cannot occur.
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int     strand_join(int64_t id, void **result);      /* result may be NULL */
/**
 * Waits until strand `id` finishes or the deadline passes, and takes its result.
 * @param id the strand, as returned by strand_spawn().
 * @param result receives the strand's result on success; may be NULL.
 * @param deadline absolute, strand_now() clock; 0 = only if already finished.
 * @return 0 when the strand has finished (its id is then released).
 * @retval -ESRCH if no strand has that id (never spawned, already joined, or detached and
 *  finished)
 * @retval -EDEADLK if id is the calling strand
 * @retval -EINVAL if the strand is detached or another caller is already joining it
 * @retval -EAGAIN if deadline is 0 and the strand is still running
 * @retval -ETIMEDOUT if the deadline passed first (the strand may still be joined later)
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int     strand_join_until(int64_t id, void **result, int64_t deadline);
/**
 * Detaches strand `id`: its id and result are released when it finishes, and it can no
 * longer be joined. Detaching a finished, unjoined strand releases it at once.
 * @param id the strand.
 * @return 0.
 * @retval -ESRCH if no strand has that id
 * @retval -EINVAL if it is already detached or a joiner is waiting for it
 * @par Threads
 * Any thread.
 */
STRAND_API int     strand_detach(int64_t id);
/**
 * The calling strand's id.
 * @return the id (> 0); 0 outside a strand.
 * @par Exception to the conventions
 * 0 is "not a strand", not success.
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_self(void);                           /* 0 outside a strand */
/**
 * Lets the other runnable strands run, then continues.
 * @par Exception to the conventions
 * Returns nothing; on a plain thread it calls sched_yield(2).
 * @par Threads
 * Any thread.
 */
STRAND_API void    strand_yield(void);
/**
 * Yields if the calling strand has used up its time slice, so a long loop that calls it
 * shares its worker: the runtime's monitor thread asks for the yield once a strand has run
 * `slice_ms` without a scheduling point (strand_config.slice_ms or STRAND_SLICE_MS, 10 ms
 * by default). Also yields every `yield_interval` calls when that is set
 * (strand_config.yield_interval or STRAND_YIELD_INTERVAL; off by default). When nothing is
 * asked of any strand it is one load of one global word and a return (four instructions
 * on x86_64), cheap enough to call on every iteration of a loop.
 * @par Exception to the conventions
 * Returns nothing; does nothing on a plain thread, when the slice is not used up, or with
 * both the slice and the interval off.
 * @par Threads
 * Any thread.
 */
STRAND_API void    strand_maybe_yield(void);
/**
 * Ends the calling strand with `result`, as if its function had returned it. Its arena
 * (strand_arena_alloc()) and unread mailbox messages are freed; a waiting joiner wakes.
 * @param result handed to strand_join().
 * @par Exception to the conventions
 * Does not return. On a plain thread it calls pthread_exit(result).
 * @par Threads
 * Any thread.
 */
STRAND_API void    strand_exit(void *result) __attribute__((noreturn));
/**
 * Cancels strand `id`: the blocking call it is parked in returns -ECANCELED at once, and
 * so does every later call of it that would have to wait (join, channel send and
 * receive, select, mailbox receive, sleep, mutex, condition, wait group, semaphore, every
 * I/O call, strand_accept()'s back-off), so the strand unwinds through its normal error
 * paths. A call that can complete without waiting still completes, and what a call had
 * accepted before the cancel (a received message, a channel value) is returned, never
 * lost: a cancel and a wake race for the same claim, and exactly one of them ends the
 * wait. A strand inside strand_blocking() gets -ECANCELED when the off-loaded call
 * returns (a thread cannot be interrupted safely). A CPU loop sees the cancel through
 * strand_cancelled(); strand_maybe_yield() gives way at every call once cancelled. The
 * strand ends with reason STRAND_EXIT_CANCELLED. Cancelling is idempotent, and a strand
 * may cancel itself (its next wait returns -ECANCELED). Blocking for clean-up:
 * strand_cancel_shield().
 * @param id the strand to cancel.
 * @retval 0 done (it may take effect later, at the strand's next wait)
 * @retval -ESRCH no live strand has that id (0, negative, never issued, or ended)
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_cancel(int64_t id);
/**
 * Has the calling strand been cancelled (strand_cancel())? Stays true once set, shield or
 * not.
 * @return 1 if it has, 0 if not or outside a strand.
 * @par Exception to the conventions
 * Returns a truth value, never an error.
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_cancelled(void);
/**
 * Shields the calling strand's waits from its cancellation (on != 0), so clean-up code
 * can block (close a connection, flush, join a helper) after a cancel, or lifts the
 * shield (on == 0): its next wait then returns -ECANCELED if it was cancelled meanwhile.
 * A cancel that comes while shielded is remembered (strand_cancelled() says 1). Shields
 * do not nest: save the previous setting and restore it.
 * @param on 1 to shield, 0 to lift.
 * @return the previous setting (0 or 1).
 * @retval -EPERM called from a plain thread (which cannot be cancelled)
 * @par Threads
 * Strands only.
 */
STRAND_API int strand_cancel_shield(int on);
/** Why a strand ended, as its monitors and links learn it (strand_notice.reason). */
enum strand_exit_reason {
    STRAND_EXIT_NORMAL = 0,    /**< returned, or strand_exit(), without being cancelled */
    STRAND_EXIT_CANCELLED = 1, /**< ended after strand_cancel() (whatever way it ended) */
    STRAND_EXIT_FAILED = 2,    /**< strand_fail(); strand_notice.code has its code */
    STRAND_EXIT_NOPROC = 3,    /**< there was no such strand (it had ended or never existed) */
};
/**
 * Ends the calling strand with reason STRAND_EXIT_FAILED and `code`: its monitors get a
 * DOWN notice with that reason and code, and each strand linked to it is cancelled (or,
 * if it traps exits, gets an EXIT notice), as in Erlang. Otherwise as strand_exit(NULL):
 * a joiner gets result NULL and strand_join() returns 0 (a join reports how to get the
 * result, not how the strand ended: monitor it for that). A strand that was cancelled
 * and then calls strand_fail() ends FAILED.
 * @param code any value, handed to the notices.
 * @par Exception to the conventions
 * Does not return. On a plain thread it calls pthread_exit(NULL).
 * @par Threads
 * Any thread.
 */
STRAND_API void strand_fail(int code) __attribute__((noreturn));

/** strand_recv()'s `*from` for a notice sent by the runtime (strand_notice). */
#define STRAND_FROM_RUNTIME ((int64_t)-1)
/** strand_notice.kind: a monitored strand ended (strand_monitor()). */
#define STRAND_NOTICE_DOWN 1
/** strand_notice.kind: a linked strand ended and the receiver traps exits. */
#define STRAND_NOTICE_EXIT 2

/**
 * The body of a notice (len == sizeof(strand_notice)), received from
 * STRAND_FROM_RUNTIME in the mailbox like any message, so strand_recv_match() can wait
 * for one in particular and a strand can wait for messages and deaths in one place.
 * Notices are not subject to any mailbox limit: one is never refused or dropped while
 * its receiver lives (only a failed allocation could lose one; it is then counted among
 * the dropped messages of strand_stats() and reported on stderr).
 */
typedef struct strand_notice {
    int     kind;    /**< STRAND_NOTICE_DOWN or STRAND_NOTICE_EXIT */
    int     reason;  /**< enum strand_exit_reason */
    int     code;    /**< strand_fail()'s code when reason is STRAND_EXIT_FAILED, else 0 */
    int64_t id;      /**< the strand that ended */
    int64_t ref;     /**< the monitor's ref for DOWN, else 0 */
} strand_notice;

/**
 * Monitors strand `id`: when it ends, the caller receives a DOWN notice (strand_notice)
 * with its reason and this ref; at once, with reason STRAND_EXIT_NOPROC, if it has
 * already ended or never existed (0, a negative id). One notice per monitor; monitoring
 * the same strand twice gives two refs and two notices. Ended by the caller's end too.
 * @param id the strand to watch.
 * @return a ref > 0, for strand_demonitor().
 * @retval -EINVAL id is the caller itself
 * @retval -EPERM called from a plain thread (it has no mailbox)
 * @retval -ENOMEM
 * @par Threads
 * Strands only.
 */
STRAND_API int64_t strand_monitor(int64_t id);
/**
 * Ends a monitor: once it returns, no DOWN notice for `ref` will be received (one already
 * in the mailbox is removed). A ref that is not (or no longer) an active monitor of the
 * caller is accepted and changes nothing.
 * @param ref from strand_monitor().
 * @retval 0 done
 * @retval -EINVAL ref <= 0
 * @retval -EPERM called from a plain thread
 * @par Threads
 * Strands only.
 */
STRAND_API int strand_demonitor(int64_t ref);
/**
 * Links the caller and strand `id`, both ways (Erlang's link): when either ends with a
 * reason other than STRAND_EXIT_NORMAL, the other is cancelled (strand_cancel()), unless
 * it traps exits (strand_trap_exits()): it then receives an EXIT notice (strand_notice),
 * for any reason, NORMAL included. Linking twice is one link. Linking to a strand that
 * has ended (or never existed) acts as if it had just ended with STRAND_EXIT_NOPROC: the
 * caller is cancelled, or gets an EXIT notice if it traps exits.
 * @param id the partner.
 * @retval 0 linked
 * @retval -ESRCH no live strand has that id (and the NOPROC exit was acted on)
 * @retval -EINVAL id is the caller itself
 * @retval -EPERM called from a plain thread
 * @retval -ENOMEM
 * @par Threads
 * Strands only.
 */
STRAND_API int strand_link(int64_t id);
/**
 * Removes the link between the caller and `id` (both ways). Once it returns, the
 * partner's end no longer cancels the caller nor sends it an EXIT notice (one already
 * received stays in the mailbox). Unlinking a strand that is not linked does nothing.
 * @param id the partner.
 * @retval 0 done
 * @retval -EPERM called from a plain thread
 * @par Threads
 * Strands only.
 */
STRAND_API int strand_unlink(int64_t id);
/**
 * Makes the calling strand trap exits (on != 0): a linked strand's end then sends it an
 * EXIT notice instead of cancelling it. Supervisors trap exits.
 * @param on 1 to trap, 0 to stop trapping.
 * @return the previous setting (0 or 1).
 * @retval -EPERM called from a plain thread
 * @par Threads
 * Strands only.
 */
STRAND_API int strand_trap_exits(int on);

/** A group of strands cancelled together and waited for together (strand_group_create()). */
typedef struct strand_group strand_group;
/**
 * Creates an empty group (structured concurrency: strands spawned into it are cancelled
 * together and waited for with a deadline, as Trio's nurseries and libdill's bundles).
 * @param out receives the group.
 * @retval 0 done
 * @retval -EINVAL out is NULL
 * @retval -ENOMEM
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_group_create(strand_group **out);
/**
 * Spawns a strand into group g, as strand_spawn_attr() (attr may be NULL). Members are
 * always detached (attr->detached is ignored): the group waits for them, nobody joins
 * them. A member spawned after strand_group_cancel() is cancelled at once.
 * @param g the group.
 * @param fn the strand's function.
 * @param arg its argument.
 * @param attr as for strand_spawn_attr(); NULL for the defaults.
 * @return the new strand's id (> 0).
 * @retval -EINVAL g or fn is NULL, or a bad attribute (as strand_spawn_attr())
 * @retval -ENOMEM
 * @retval -ECANCELED strand_shutdown() is in progress
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_group_spawn(strand_group *g, strand_fn fn, void *arg,
                                      const strand_attr *attr);
/**
 * Cancels every member of g (strand_cancel()), and every member spawned later.
 * @param g the group.
 * @retval 0 done
 * @retval -EINVAL g is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_group_cancel(strand_group *g);
/**
 * Waits until every member of g has ended.
 * @param g the group.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @retval 0 all members have ended (at once if there are none)
 * @retval -EAGAIN deadline 0 and a member still runs
 * @retval -ETIMEDOUT the deadline passed first
 * @retval -ECANCELED the calling strand was cancelled
 * @retval -EINVAL g is NULL
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int strand_group_wait(strand_group *g, int64_t deadline);
/**
 * Cancels what still runs in g, waits (shielded from the caller's own cancellation) until
 * every member has ended, and frees g. Must not be called by a member of g (it would wait
 * for itself).
 * @param g the group (NULL does nothing).
 * @par Exception to the conventions
 * Returns nothing; NULL does nothing.
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API void strand_group_release(strand_group *g);

/** When a supervisor restarts a child that ended (strand_child_spec.restart). */
enum strand_restart {
    STRAND_PERMANENT = 0, /**< always */
    STRAND_TRANSIENT = 1, /**< unless it ended STRAND_EXIT_NORMAL */
    STRAND_TEMPORARY = 2, /**< never (and not when a sibling's end restarts the others) */
};
/** What else a supervisor restarts when a child is restarted (strand_sup_spec.strategy). */
enum strand_strategy {
    STRAND_ONE_FOR_ONE = 0,  /**< only that child */
    STRAND_ONE_FOR_ALL = 1,  /**< every child: the others are stopped first */
    STRAND_REST_FOR_ONE = 2, /**< that child and those started after it */
};
/** One child of a supervisor (strand_sup_spec.children). */
typedef struct strand_child_spec {
    strand_fn   fn;          /**< the child's function (a new strand each start) */
    void       *arg;         /**< its argument, the same at every start */
    const char *name;        /**< its strand name (strand_attr.name), may be NULL */
    int         restart;     /**< enum strand_restart */
    int64_t     shutdown_ns; /**< how long it may take to end once cancelled; 0 = 5 s */
} strand_child_spec;
/** A supervisor (strand_supervise()). */
typedef struct strand_sup_spec {
    int      strategy;       /**< enum strand_strategy */
    int      intensity;      /**< at most this many restarts ... */
    int64_t  period_ns;      /**< ... within this period (0 and 0: 1 in 5 s; period 0: 5 s) */
    const strand_child_spec *children; /**< started in this order, stopped in reverse */
    int      nchildren;      /**< at least 1 */
} strand_sup_spec;
/** strand_notice.code of a supervisor that gave up (more restarts than its intensity). */
#define STRAND_SUP_GAVE_UP (-0x5c5c)

/**
 * Spawns a supervisor (OTP's model) for the children of `spec` (copied: the caller's
 * spec may go away; each child's arg and name must outlive the supervisor) and returns
 * its id. The supervisor traps exits; each child, a detached strand named as its spec
 * says, links itself to it before its function runs. Children are spawned in order.
 * When a child ends, its restart type says whether it is restarted and the strategy what
 * else is (stopped first, in reverse order, then started again in order). More than
 * `intensity` restarts within `period_ns` and the supervisor stops every child and ends
 * STRAND_EXIT_FAILED with code STRAND_SUP_GAVE_UP, so a supervisor of supervisors (a
 * tree, see strand_supervisor_run()) escalates. Cancelling the supervisor stops it: its
 * children are stopped in reverse order (each cancelled and given its shutdown_ns to
 * end; one that does not is reported on stderr and left running, as a strand cannot be
 * killed), then it ends STRAND_EXIT_CANCELLED. A supervisor's own mailbox is for notices:
 * messages sent to it are discarded.
 * @param spec the strategy, the restart intensity and the children.
 * @return the supervisor's id (> 0).
 * @retval -EINVAL spec or its children NULL, no children, a NULL fn, a negative intensity,
 *         period or shutdown_ns, an unknown strategy or restart type
 * @retval -ENOMEM
 * @retval -ECANCELED strand_shutdown() is in progress
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_supervise(const strand_sup_spec *spec);
/**
 * Runs a supervisor for `spec` on the calling strand (which becomes the supervisor, as
 * strand_supervise() describes), so a child's function can be a supervisor: a tree. It
 * returns only when the strand is cancelled, or a linked strand that is not one of its
 * children (its own supervisor) ends other than NORMAL; if it gives up it ends the strand
 * with strand_fail(STRAND_SUP_GAVE_UP) (or the code of a failed restart) instead.
 * `spec` must stay valid while it runs.
 * @param spec as for strand_supervise().
 * @retval -ECANCELED stopped as above, every child stopped
 * @retval -EINVAL a bad spec, as for strand_supervise()
 * @retval -EPERM called from a plain thread
 * @retval -ENOMEM
 * @par Threads
 * Strands only.
 */
STRAND_API int strand_supervisor_run(const strand_sup_spec *spec);

/**
 * The calling strand's name (strand_attr.name, at most 31 bytes).
 * @return the name, valid while the strand lives; "" when unnamed or outside a strand.
 * @par Exception to the conventions
 * Returns a string, never an error.
 * @par Threads
 * Any thread.
 */
STRAND_API const char *strand_name(void);                      /* "" when unnamed */

/** @} */

/**
 * @defgroup embedding Embedding (host-driven mode)
 * With strand_config.host_driven = 1 there are no worker threads: the host's own event
 * loop runs strands on its thread, waiting on strand_poll_fd() for at most
 * strand_next_timeout().
 * @{
 */

/**
 * Runs at most `budget` strand slices on the calling thread (host-driven mode), then
 * returns. A slice ends when the strand parks, yields or exits. Due timers and ready I/O
 * are handled on the way.
 * @param budget the most slices to run; > 0.
 * @param more set to 1 if runnable work remains (call again at once), else 0; may be NULL.
 * @return the number of slices run (0 .. budget).
 * @retval -EINVAL if the runtime is not running in host-driven mode, budget <= 0, or
 *  called from a strand
 * @par Threads
 * Plain threads only (the host's thread); one thread at a time.
 */
STRAND_API int strand_run_until_idle(int budget, int *more);
/**
 * A descriptor that becomes readable when the runtime has work: an fd is ready, a timer
 * is due or a strand was woken from another thread (host-driven mode). Poll it for
 * readability in the host's loop, then call strand_run_until_idle(); never read or close
 * it. Starts the runtime (with NULL settings) if it is not running, so call strand_init()
 * first.
 * @return the descriptor (>= 0).
 * @retval -EINVAL if the runtime cannot be started
 * @retval -1 if the poller could not be set up (see the exception)
 * @par Exception to the conventions
 * The last case returns -1, not an errno code.
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_poll_fd(void);
/**
 * Nanoseconds until the earliest timer (a sleep or a deadline) is due: the longest the
 * host may wait on strand_poll_fd() before calling strand_run_until_idle() again.
 * @return the nanoseconds until the earliest timer is due; 0 if one is already due.
 * @retval -1 if no timer is armed
 * @par Exception to the conventions
 * -1 means "none", not -EPERM.
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_next_timeout(void);

/** @} */

/* ---------------------------------------------------------------- time */

/**
 * @defgroup time Time
 * The clock every deadline is measured on, and sleeping.
 * @{
 */

/**
 * The monotonic clock (CLOCK_MONOTONIC), in nanoseconds: the clock of every deadline.
 * @return the current time (> 0).
 * @par Exception to the conventions
 * A time, never an error.
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_now(void);
/**
 * Sleeps for `ns` nanoseconds; strand_sleep(0) just yields.
 * @param ns how long; >= 0.
 * @return 0 after the time has passed.
 * @retval -EINVAL if ns < 0
 * @par Threads
 * Any thread: a plain thread sleeps in clock_nanosleep(2).
 */
STRAND_API int     strand_sleep(int64_t ns);
/**
 * Sleeps until `deadline`; a deadline already past just yields.
 * @param deadline absolute, strand_now() clock; >= 0.
 * @return 0 once the deadline has passed.
 * @retval -EINVAL for a negative deadline, STRAND_FOREVER included (a sleep that nothing
 *  can end is a bug)
 * @par Threads
 * Any thread: a plain thread sleeps in clock_nanosleep(2).
 */
STRAND_API int     strand_sleep_until(int64_t deadline);
/**
 * Convenience: the deadline `ns` from now, saturating at INT64_MAX.
 * @param ns nanoseconds from now; any negative value means "forever".
 * @return strand_now() + ns; STRAND_FOREVER if ns < 0.
 * @par Exception to the conventions
 * A deadline, never an error.
 * @par Threads
 * Any thread.
 */
STRAND_API int64_t strand_deadline_in(int64_t ns);

/** @} */

/* ---------------------------------------------------------------- channels */

/**
 * @defgroup channels Channels
 * Typed FIFO queues between strands (and plain threads), as Go's channels. See
 * docs/channels.md.
 * @{
 */

/** A channel of fixed-size elements; reference counted (strand_chan_retain/release). */
typedef struct strand_chan strand_chan;

/**
 * Creates a channel. capacity 0 is unbuffered: a send waits for a receiver and hands the
 * value over directly.
 * @param out receives the channel (holding one reference), or NULL on failure.
 * @param elem_size bytes per element, 1 .. 65536.
 * @param capacity elements buffered, 0 .. 2^30.
 * @return 0.
 * @retval -EINVAL if out is NULL or a size is out of range
 * @retval -ENOMEM out of memory
 * @par Threads
 * Any thread.
 */
STRAND_API int    strand_chan_create(strand_chan **out, size_t elem_size, size_t capacity);
/**
 * Sends one element (copies elem_size bytes from elem).
 * @param ch the channel.
 * @param elem the value to send; must not be NULL.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return 0 once the value is buffered or taken by a receiver.
 * @retval -EINVAL if ch or elem is NULL
 * @retval -EPIPE if the channel is closed, or is closed while waiting (the value was not
 *  taken)
 * @retval -EAGAIN if deadline is 0 and the send would wait
 * @retval -ETIMEDOUT if the deadline passed (the value was not taken)
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int    strand_chan_send(strand_chan *ch, const void *elem, int64_t deadline);
/**
 * Receives one element (copies elem_size bytes into elem). After close, the buffered
 * values are still received, then -EPIPE.
 * @param ch the channel.
 * @param elem receives the value; must not be NULL.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return 0 with a value in elem.
 * @retval -EINVAL if ch or elem is NULL
 * @retval -EPIPE if the channel is closed and empty
 * @retval -EAGAIN if deadline is 0 and the receive would wait
 * @retval -ETIMEDOUT if the deadline passed
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int    strand_chan_recv(strand_chan *ch, void *elem, int64_t deadline);
/**
 * Closes the channel: waiting senders fail with -EPIPE, waiting receivers get -EPIPE
 * (the buffer is empty when receivers wait), later receives drain the buffer first.
 * Does not release a reference.
 * @param ch the channel.
 * @return 0.
 * @retval -EINVAL if ch is NULL
 * @retval -EPIPE if it was already closed
 * @par Threads
 * Any thread.
 */
STRAND_API int    strand_chan_close(strand_chan *ch);
/**
 * Takes one more reference to the channel (for another owner).
 * @param ch the channel.
 * @return 0.
 * @retval -EINVAL if ch is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int    strand_chan_retain(strand_chan *ch);
/**
 * Drops one reference; the channel is freed when the last reference is dropped and no
 * caller is still inside a call on it. It is not closed by this: release only once no
 * one will use it.
 * @param ch the channel; NULL does nothing.
 * @par Exception to the conventions
 * Returns nothing.
 * @par Threads
 * Any thread.
 */
STRAND_API void   strand_chan_release(strand_chan *ch);
/**
 * The number of elements buffered now (a snapshot).
 * @param ch the channel.
 * @return the count; 0 if ch is NULL.
 * @par Exception to the conventions
 * A count, never an error.
 * @par Threads
 * Any thread.
 */
STRAND_API size_t strand_chan_len(strand_chan *ch);
/**
 * The channel's capacity.
 * @param ch the channel.
 * @return the capacity given to strand_chan_create(); 0 if ch is NULL.
 * @par Exception to the conventions
 * A count, never an error.
 * @par Threads
 * Any thread.
 */
STRAND_API size_t strand_chan_cap(strand_chan *ch);

/** The operation of a strand_select_case. */
enum strand_select_op {
    STRAND_SELECT_SEND = 1, /**< send *elem on chan */
    STRAND_SELECT_RECV = 2, /**< receive from chan into elem */
};

/** One case of strand_select(). */
typedef struct strand_select_case {
    strand_chan *chan;   /**< the channel; must not be NULL */
    int          op;     /**< enum strand_select_op */
    void        *elem;   /**< value to send, or buffer to receive into */
    int          status; /**< out: 0, or -EPIPE for a closed channel that fired */
} strand_select_case;

/**
 * Waits until one of the cases can proceed and performs exactly that one. When several
 * are ready, one is chosen at random. A closed channel makes its case fire with
 * status -EPIPE. With n = 0 it sleeps until the deadline.
 * @param cases the cases; their status fields are written.
 * @param n the number of cases, 0 .. 65536.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the index of the case that fired (its status says 0 or -EPIPE).
 * @retval -EINVAL if cases is NULL with n > 0, n is out of range, a case has a NULL chan
 *  or elem or an unknown op, or n is 0 with deadline STRAND_FOREVER
 * @retval -EAGAIN if deadline is 0 and no case is ready
 * @retval -ETIMEDOUT if the deadline passed
 * @retval -ENOMEM if n > 8 and the scratch space cannot be allocated
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int strand_select(strand_select_case *cases, int n, int64_t deadline);

/** @} */

/* ---------------------------------------------------------------- mailboxes */

/**
 * @defgroup mailboxes Mailboxes
 * Every strand has a mailbox: an unbounded FIFO of byte messages, as Erlang's.
 * @{
 */

/**
 * Sends a copy of `len` bytes to strand `to`'s mailbox. Never blocks.
 * @param to the receiving strand.
 * @param msg the bytes; may be NULL only if len is 0.
 * @param len the message's length (0 is a valid, empty message).
 * @return 0 once queued.
 * @retval -ESRCH if `to` is not a live strand (never spawned, or finished: a finished
 *  strand's mailbox is gone even before it is joined)
 * @retval -EINVAL if msg is NULL with len > 0, or len > SIZE_MAX / 2
 * @retval -ENOMEM out of memory
 * @par Threads
 * Any thread: the message's sender is then 0.
 */
STRAND_API int     strand_send(int64_t to, const void *msg, size_t len);
/**
 * Takes the oldest message from the calling strand's mailbox.
 * @param buf receives the message; may be NULL only if cap is 0.
 * @param cap the size of buf.
 * @param from receives the sender's id (0 = a plain thread); may be NULL.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the message's length (>= 0).
 * @retval -EMSGSIZE if the oldest message is longer than cap (it stays queued)
 * @retval -EINVAL if buf is NULL with cap > 0
 * @retval -EPERM if called outside a strand
 * @retval -EAGAIN if deadline is 0 and the mailbox is empty
 * @retval -ETIMEDOUT if the deadline passed
 * @par Threads
 * Strands only.
 */
STRAND_API ssize_t strand_recv(void *buf, size_t cap, int64_t *from, int64_t deadline);
/**
 * A predicate for strand_recv_match(): nonzero to take the message.
 * @param msg the message's bytes (read only; valid during the call).
 * @param len its length.
 * @param from the sender's id (0 = a plain thread).
 * @param ctx the ctx given to strand_recv_match().
 * @return nonzero to take this message, 0 to leave it queued.
 */
typedef int (*strand_match_fn)(const void *msg, size_t len, int64_t from, void *ctx);
/**
 * Takes the oldest message for which `pred` returns nonzero (selective receive, as
 * Erlang's); the others stay queued in order. pred runs on the calling strand, once per
 * message per call, and must not call strand_recv*.
 * @param pred the predicate; must not be NULL.
 * @param ctx passed to pred.
 * @param buf receives the message; may be NULL only if cap is 0.
 * @param cap the size of buf.
 * @param from receives the sender's id; may be NULL.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return as strand_recv() (-EMSGSIZE when the matching message is longer than cap; it
 *  stays queued), and -EINVAL if pred is NULL.
 * @par Threads
 * Strands only.
 */
STRAND_API ssize_t strand_recv_match(strand_match_fn pred, void *ctx, void *buf, size_t cap,
                                     int64_t *from, int64_t deadline);

/** @} */

/* ---------------------------------------------------------------- sync */

/**
 * @defgroup sync Synchronisation
 * Mutex, condition variable, wait group and semaphore. They park a strand (never its
 * worker) and block a plain thread; strands and plain threads may share one object.
 * All-zero bytes are a valid initial state (unlocked, empty, zero), so a static object
 * needs no init call. Not process-shared; never copy one in use.
 * @{
 */

/** Alignment of the opaque sync objects: C11 spells it _Alignas, C++11 alignas (same layout). */
#ifdef __cplusplus
#define STRAND_ALIGNAS(n) alignas(n)
#else
#define STRAND_ALIGNAS(n) _Alignas(n)
#endif

/** A mutex (FIFO hand-off, not recursive); opaque. */
typedef struct strand_mutex { STRAND_ALIGNAS(8) unsigned char opaque[64]; /**< private */ } strand_mutex;
/** A condition variable used with a strand_mutex; opaque. */
typedef struct strand_cond  { STRAND_ALIGNAS(8) unsigned char opaque[48]; /**< private */ } strand_cond;
/** A wait group (Go's sync.WaitGroup): waiters wake when its counter reaches 0; opaque. */
typedef struct strand_wg    { STRAND_ALIGNAS(8) unsigned char opaque[48]; /**< private */ } strand_wg;
/** A counting semaphore (FIFO hand-off); opaque. */
typedef struct strand_sem   { STRAND_ALIGNAS(8) unsigned char opaque[48]; /**< private */ } strand_sem;

/**
 * Initialises (zeroes) a mutex: unlocked.
 * @param m the mutex.
 * @return 0.
 * @retval -EINVAL if m is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_mutex_init(strand_mutex *m);
/**
 * Locks the mutex, waiting until the deadline. Waiters get it in FIFO order: unlock
 * hands it to the oldest waiter directly.
 * @param m the mutex.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return 0 when the caller holds it.
 * @retval -EINVAL if m is NULL
 * @retval -EDEADLK if the caller already holds it
 * @retval -EAGAIN if deadline is 0 and it is held (strand_mutex_trylock() says -EBUSY)
 * @retval -ETIMEDOUT if the deadline passed
 * @par Threads
 * Any thread: a plain thread blocks. The owner is the strand (or the plain thread).
 */
STRAND_API int strand_mutex_lock(strand_mutex *m, int64_t deadline);
/**
 * Locks the mutex if it is free.
 * @param m the mutex.
 * @return 0 when the caller now holds it.
 * @retval -EBUSY if it is held (by anyone, the caller included)
 * @retval -EINVAL if m is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_mutex_trylock(strand_mutex *m);
/**
 * Unlocks the mutex, handing it to the oldest waiter if there is one.
 * @param m the mutex.
 * @return 0.
 * @retval -EPERM if the caller does not hold it
 * @retval -EINVAL if m is NULL
 * @par Threads
 * Any thread (the one that locked it).
 */
STRAND_API int strand_mutex_unlock(strand_mutex *m);
/**
 * Checks that the mutex is unused; it holds no resources, so nothing is freed.
 * @param m the mutex.
 * @return 0.
 * @retval -EBUSY if it is held or has waiters
 * @retval -EINVAL if m is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_mutex_destroy(strand_mutex *m);

/**
 * Initialises (zeroes) a condition variable: no waiters.
 * @param c the condition variable.
 * @return 0.
 * @retval -EINVAL if c is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_cond_init(strand_cond *c);
/**
 * Atomically releases `m` and waits for a signal or broadcast, then locks `m` again
 * (also after a timeout). Wait in a loop on the predicate: another locker may change it
 * before the woken waiter has the mutex again.
 * @param c the condition variable.
 * @param m a mutex the caller holds.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return 0 when signalled (m held again).
 * @retval -EINVAL if c or m is NULL
 * @retval -EPERM if the caller does not hold m
 * @retval -EAGAIN if deadline is 0 (m was never released)
 * @retval -ETIMEDOUT if the deadline passed (m held again; never released if it had passed
 *  already on entry)
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int strand_cond_wait(strand_cond *c, strand_mutex *m, int64_t deadline);
/**
 * Wakes the oldest waiter, if any.
 * @param c the condition variable.
 * @return 0.
 * @retval -EINVAL if c is NULL
 * @par Threads
 * Any thread; holding the mutex is not required.
 */
STRAND_API int strand_cond_signal(strand_cond *c);
/**
 * Wakes every waiter.
 * @param c the condition variable.
 * @return 0.
 * @retval -EINVAL if c is NULL
 * @par Threads
 * Any thread; holding the mutex is not required.
 */
STRAND_API int strand_cond_broadcast(strand_cond *c);
/**
 * Checks that no one waits on the condition variable; nothing is freed.
 * @param c the condition variable.
 * @return 0.
 * @retval -EBUSY if it has waiters
 * @retval -EINVAL if c is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_cond_destroy(strand_cond *c);

/**
 * Initialises (zeroes) a wait group: counter 0.
 * @param wg the wait group.
 * @return 0.
 * @retval -EINVAL if wg is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_wg_init(strand_wg *wg);
/**
 * Adds `delta` (which may be negative) to the counter; reaching 0 wakes every waiter.
 * @param wg the wait group.
 * @param delta the change.
 * @return 0.
 * @retval -EINVAL if wg is NULL or the counter would become negative or overflow (it is
 *  left unchanged)
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_wg_add(strand_wg *wg, int64_t delta);
/**
 * strand_wg_add(wg, -1).
 * @param wg the wait group.
 * @return as strand_wg_add(): -EINVAL if wg is NULL or the counter is already 0.
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_wg_done(strand_wg *wg);
/**
 * Waits until the counter is 0.
 * @param wg the wait group.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return 0 when the counter is (or reaches) 0.
 * @retval -EINVAL if wg is NULL
 * @retval -EAGAIN if deadline is 0 and the counter is not 0
 * @retval -ETIMEDOUT if the deadline passed
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int strand_wg_wait(strand_wg *wg, int64_t deadline);
/**
 * Checks that no one waits on the wait group; nothing is freed.
 * @param wg the wait group.
 * @return 0.
 * @retval -EBUSY if it has waiters
 * @retval -EINVAL if wg is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_wg_destroy(strand_wg *wg);

/**
 * Initialises a semaphore with `value` units.
 * @param s the semaphore.
 * @param value the initial count; >= 0.
 * @return 0.
 * @retval -EINVAL if s is NULL or value < 0
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_sem_init(strand_sem *s, int64_t value);
/**
 * Takes one unit, waiting until one is posted. Waiters are served in FIFO order.
 * @param s the semaphore.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return 0 with the unit taken.
 * @retval -EINVAL if s is NULL
 * @retval -EAGAIN if deadline is 0 and the count is 0
 * @retval -ETIMEDOUT if the deadline passed
 * @par Threads
 * Any thread: a plain thread blocks.
 */
STRAND_API int strand_sem_wait(strand_sem *s, int64_t deadline);
/**
 * Posts one unit: hands it to the oldest waiter, else adds it to the count.
 * @param s the semaphore.
 * @return 0.
 * @retval -EINVAL if s is NULL
 * @retval -EOVERFLOW if the count is already INT64_MAX
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_sem_post(strand_sem *s);
/**
 * Checks that no one waits on the semaphore; nothing is freed.
 * @param s the semaphore.
 * @return 0.
 * @retval -EBUSY if it has waiters
 * @retval -EINVAL if s is NULL
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_sem_destroy(strand_sem *s);

/** @} */

/* ---------------------------------------------------------------- I/O */

/**
 * @defgroup io I/O
 * Blocking-style I/O on any descriptor, without blocking the worker (docs/io.md).
 *
 * The first call on a descriptor classifies it. Sockets, pipes, terminals and other
 * pollable descriptors are used non-blocking per call (MSG_DONTWAIT, RWF_NOWAIT, or a
 * zero-timeout poll first on a terminal): their flags are never changed, so stdio and a
 * shared terminal or pipe keep working (only a listening socket given to strand_accept
 * is made non-blocking, until strand_fd_close). A would-block parks the strand until the
 * poller reports readiness. Regular files, block devices and directories run the system
 * call on the off-load pool instead, and the deadline is not applied to them. Sockets are
 * written with MSG_NOSIGNAL: a vanished peer is -EPIPE, not SIGPIPE. A number reused
 * after a plain close(2) is detected (its identity is checked before a strand parks) and
 * starts with fresh state: no buffered bytes or end-of-file of the old descriptor.
 *
 * Every call below returns, besides what it lists: any negative errno of the underlying
 * system call (-EBADF, -ECONNRESET, -EPIPE, ...); -EAGAIN if deadline is 0 and the call
 * would wait; -ETIMEDOUT if the deadline passed; -ECANCELED if strand_fd_close() closed
 * the descriptor while the call waited on it (a plain thread notices within 50 ms);
 * -ENOMEM if the fd's record cannot be allocated.
 * A plain thread may call each of them: it waits in poll(2), and regular files are read
 * on its own thread.
 * @{
 */

/**
 * Reads up to len bytes, waiting until some are available.
 * @param fd the descriptor.
 * @param buf receives the bytes; may be NULL only if len is 0.
 * @param len the size of buf.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the number of bytes read (0 = end of file).
 * @retval -EINVAL if buf is NULL with len > 0
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_read(int fd, void *buf, size_t len, int64_t deadline);
/**
 * Writes up to len bytes, waiting until some can be written (a partial write is
 * returned as such; see strand_write_all()).
 * @param fd the descriptor.
 * @param buf the bytes; may be NULL only if len is 0.
 * @param len how many.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the number of bytes written (> 0 unless len is 0).
 * @retval -EINVAL if buf is NULL with len > 0
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_write(int fd, const void *buf, size_t len, int64_t deadline);
/**
 * Writes all len bytes, in as many writes as it takes.
 * @param fd the descriptor.
 * @param buf the bytes; may be NULL only if len is 0.
 * @param len how many; at most SSIZE_MAX.
 * @param deadline absolute, strand_now() clock, for the whole call.
 * @return len.
 * @retval -EINVAL if buf is NULL with len > 0 or len > SSIZE_MAX
 * @retval other an error listed for the group.
 * @par Exception to the conventions
 * On an error after a partial write, how much was written is not reported.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_write_all(int fd, const void *buf, size_t len, int64_t deadline);
/**
 * readv(2), waiting until some bytes are available.
 * @param fd the descriptor.
 * @param iov the buffers.
 * @param iovcnt how many, 0 .. IOV_MAX.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the number of bytes read (0 = end of file).
 * @retval -EINVAL if iovcnt is out of range or iov is NULL with iovcnt > 0
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
/**
 * writev(2) (sendmsg(2) with MSG_NOSIGNAL on sockets), waiting until some bytes can be
 * written; a partial write is returned as such.
 * @param fd the descriptor.
 * @param iov the buffers.
 * @param iovcnt how many, 0 .. IOV_MAX.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the number of bytes written.
 * @retval -EINVAL if iovcnt is out of range or iov is NULL with iovcnt > 0
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
struct sockaddr;
/**
 * Accepts a connection, waiting for one. The new descriptor is non-blocking and
 * close-on-exec. Connections that died in the backlog (ECONNABORTED, EPROTO) are
 * skipped. When the process is out of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) the connection stays queued and the call retries with a backoff (5 ms doubling
 * to 1 s) until the deadline.
 * @param fd a listening socket.
 * @param addr receives the peer's address; NULL together with addrlen.
 * @param addrlen in: the size of addr; out: the address's length.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the new descriptor (>= 0).
 * @retval -EINVAL if exactly one of addr and addrlen is NULL
 * @retval -EMFILE (etc.) at deadline 0 when out of descriptors
 * @retval -ETIMEDOUT when the deadline passes while backing off
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API int     strand_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline);
/**
 * Connects a socket, waiting until the connection is established or fails.
 * @param fd a socket.
 * @param addr the address to connect to; must not be NULL.
 * @param addrlen its length.
 * @param deadline absolute, strand_now() clock; 0 = start the connect without waiting.
 * @return 0 when connected.
 * @retval -EINPROGRESS if deadline is 0 and the connection is under way: it goes on, and
 *  a later call (with a deadline) finishes it
 * @retval -EINVAL if addr is NULL
 * @retval -ENOTSOCK if fd is not a socket
 * @retval -EISCONN if it was already connected
 * @retval -ECONNREFUSED (-ENETUNREACH, ...) the connect failed (connect(2) or SO_ERROR)
 * @retval -ETIMEDOUT if the deadline passed (the attempt is not cancelled: close the
 *  socket)
 * @retval other an error listed for the group.
 * @par Exception to the conventions
 * At deadline 0 the "would wait" answer is -EINPROGRESS, not -EAGAIN: the connect has
 * started and goes on.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API int     strand_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                                  int64_t deadline);
/** strand_read_line()'s end of input: the last line has been returned. */
#define STRAND_EOF (-ENODATA)
/**
 * Reads one line into buf without its `\n` (a `\r\n` loses the `\r` too), NUL
 * terminated. Buffered over any fd: the reader's buffer is kept per fd until
 * strand_fd_close(), so do not mix it with strand_read() on the same fd (the reader
 * holds bytes read past the line). A last line without `\n` is returned as a line;
 * after it, STRAND_EOF. On an error or timeout what was buffered stays for the next call.
 * @param fd the descriptor.
 * @param buf receives the line.
 * @param cap the size of buf (the line plus its NUL); 1 .. SSIZE_MAX.
 * @param deadline absolute, strand_now() clock; 0 = do not block.
 * @return the line's length (without `\n` and NUL).
 * @retval STRAND_EOF (-ENODATA) at the end of input
 * @retval -EMSGSIZE for a line longer than cap-1 bytes: that line is skipped, so the next
 *  call reads the line after it
 * @retval -EINVAL if buf is NULL or cap is 0 or above SSIZE_MAX
 * @retval -EBUSY if another strand is reading lines from the same fd at the moment
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_read_line(int fd, char *buf, size_t cap, int64_t deadline);
/**
 * Writes `len` bytes and a `\n`, completely (as strand_write_all()).
 * @param fd the descriptor.
 * @param line the bytes, without `\n`; may be NULL only if len is 0.
 * @param len how many; below SSIZE_MAX.
 * @param deadline absolute, strand_now() clock, for the whole call.
 * @return len + 1 (the `\n` included).
 * @retval -EINVAL if line is NULL with len > 0 or len is too large
 * @retval other an error listed for the group.
 * @par Threads
 * Any thread: a plain thread waits in poll(2).
 */
STRAND_API ssize_t strand_write_line(int fd, const char *line, size_t len, int64_t deadline);
/**
 * Closes a descriptor used with strand's I/O calls: wakes the strands waiting on it
 * (their calls return -ECANCELED), waits until no other call is inside a call on it (a
 * strand between its wake-up and its system call, a plain thread in poll(2): at most
 * 50 ms), takes it out of the poller, frees its line reader, restores O_NONBLOCK if strand
 * set it (a listening socket), then close(2)s it. Calls on fd that start while the close
 * is under way wait for it to finish, then run on whatever the number is then (-EBADF,
 * or a new descriptor). Prefer it to close(2): a plain close is detected (the next
 * descriptor with that number starts fresh, its line reader empty) but wakes nobody.
 * @param fd the descriptor.
 * @return 0 (also when close(2) fails with EINTR or EIO: the descriptor is released
 *  anyway).
 * @retval -EBADF if fd is negative or not open, or another strand_fd_close of fd is under
 *  way
 * @par Threads
 * Any thread.
 */
STRAND_API int     strand_fd_close(int fd);
/**
 * Tells strand that fd's number starts a new life without strand_fd_close having been
 * called (it was closed with plain close(2), replaced by dup2, closed by fclose, or has
 * just been returned by socket(), pipe(), open() ...): what strand kept for the previous
 * descriptor with that number (its line reader's bytes and end-of-file, its poller
 * registration) is dropped, and strands still parked on the old one are woken with
 * -ECANCELED. Needed only for state strand cannot check cheaply on its own (bytes a
 * line reader buffered); strand_accept and strand_connect do it themselves, and
 * libstrand_hook calls it for every descriptor it sees created. Never closes anything.
 * @param fd the number.
 * @return 0.
 * @retval -EBADF if fd is negative
 * @par Threads
 * Any thread.
 */
STRAND_API int     strand_fd_forget(int fd);
struct pollfd;
/**
 * poll(2) for strands: waits until one of `fds` is ready, parking the calling strand (its
 * worker runs other strands). Each entry's `revents` is set as poll(2) sets it
 * (POLLNVAL for a closed descriptor, or one that strand_fd_close is closing); negative fds
 * are ignored. Regular files are always ready.
 * @param fds the descriptors and the events wanted (struct pollfd of <poll.h>); may be
 *  NULL only if nfds is 0 (then the call just sleeps until the deadline).
 * @param nfds how many; at most 2^20.
 * @param deadline absolute, strand_now() clock; 0 only looks; STRAND_FOREVER.
 * @return the number of entries with a non-zero revents (> 0).
 * @retval -EAGAIN deadline 0 and nothing ready
 * @retval -ETIMEDOUT the deadline passed with nothing ready
 * @retval -EINVAL fds NULL with nfds > 0, or nfds too large
 * @retval -ENOMEM no memory for the registrations (more than 8 fds)
 * @retval other a negative errno code of poll(2)
 * @par Threads
 * Any thread: a plain thread calls poll(2) with the time left to the deadline.
 */
STRAND_API int     strand_poll(struct pollfd *fds, unsigned long nfds, int64_t deadline);

/**
 * A function run on the off-load pool by strand_blocking().
 * @param arg the arg given to strand_blocking().
 * @return the result handed back through strand_blocking()'s result.
 */
typedef void *(*strand_blocking_fn)(void *arg);
/**
 * Runs fn(arg) on the off-load pool (up to 64 plain threads, created on demand) and
 * parks the strand until it returns, so a call that blocks its thread (a file system
 * call, a library without non-blocking I/O) does not hold a worker. fn runs on a plain
 * thread: it may use errno and blocking calls, but not strand calls that need a strand.
 * There is no deadline: the strand waits for fn however long it takes.
 * @param fn the function; must not be NULL.
 * @param arg passed to fn.
 * @param result receives fn's result; may be NULL.
 * @return 0 once fn has returned.
 * @retval -EINVAL if fn is NULL
 * @retval -EAGAIN if the pool has no thread and none can be created
 * @par Threads
 * Any thread: on a plain thread fn simply runs on that thread.
 */
STRAND_API int strand_blocking(strand_blocking_fn fn, void *arg, void **result);
struct addrinfo;
/**
 * getaddrinfo(3) on the off-load pool (strand_blocking()), with its EAI_* results
 * turned into errno codes. Free *res with freeaddrinfo(3).
 * @param node the host name or address; NULL only with a service.
 * @param service the service name or port; NULL only with a node.
 * @param hints as getaddrinfo's; may be NULL.
 * @param res receives the list on success; must not be NULL.
 * @return 0.
 * @retval -EINVAL if res is NULL, both node and service are NULL, or for EAI_BADFLAGS,
 *  EAI_FAMILY, EAI_SERVICE, EAI_SOCKTYPE
 * @retval -ENOENT for EAI_NONAME (and EAI_NODATA, EAI_ADDRFAMILY)
 * @retval -EAGAIN for EAI_AGAIN (a temporary failure) or when the pool has no thread
 * @retval -ENOMEM for EAI_MEMORY
 * @retval -EIO for EAI_FAIL
 * @retval other the errno of EAI_SYSTEM (-EIO if none).
 * @par Threads
 * Any thread.
 */
STRAND_API int strand_getaddrinfo(const char *node, const char *service,
                                  const struct addrinfo *hints, struct addrinfo **res);

/** @} */

/* ---------------------------------------------------------------- diagnostics & memory */

/**
 * @defgroup diag Diagnostics and memory
 * @{
 */

/**
 * Writes a report of the runtime to fd: each worker and what it runs, then each live
 * strand the registry tracks (id, name, state, priority, age, what it waits on, a
 * backtrace of parked ones). The same report SIGQUIT prints (docs/debugging.md).
 * Serialised by a process-wide lock; not async-signal-safe.
 * @param fd where to write (write(2), completely).
 * @return the number of strands listed (>= 0).
 * @retval -EBADF if fd is negative
 * @retval other a negative errno of write(2).
 * @par Threads
 * Any thread.
 */
STRAND_API int   strand_dump(int fd);
/**
 * Allocates memory that lives until the calling strand ends (then it is all freed at
 * once); there is no free call. 16-byte aligned, not zeroed. Other strands may use it,
 * but only while the calling strand lives.
 * @param size bytes; 1 .. 2^40.
 * @return the memory; NULL outside a strand, for size 0 or too large, or when out of
 *  memory.
 * @par Exception to the conventions
 * Returns NULL, not an errno code, on failure.
 * @par Threads
 * Strands only.
 */
STRAND_API void *strand_arena_alloc(size_t size); /* NULL outside a strand or for size 0 */

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* STRAND_H */
