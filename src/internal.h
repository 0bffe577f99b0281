/*
 * internal.h - what the files of src/ share. Nothing here is exported: every symbol is
 * `strand__*` and hidden (the library is built with -fvisibility=hidden).
 *
 * The pieces and who owns them:
 *   struct strand          one per strand, at the top of its stack (stack.c carves it);
 *                          fields are written by the strand itself while it runs, by the
 *                          worker that switches it, or through the atomics noted below.
 *   struct strand__worker  one per worker thread (the scheduler's, sched_private.h, which
 *                          no file outside src/sched_*.c may include); its queues' producer
 *                          side, its caches and its counters are written by its thread only.
 *   strand__waiter         one per blocking call, on the waiting strand's (or thread's)
 *                          stack; the one way anything in strand waits (see "Parking").
 *
 * Parking (the protocol model-checked in verify/park.pml):
 *   A strand's `state` is RUNNING, PARKING, PARKED, RUNNABLE or DONE. To wait, a strand
 *   calls strand__waiter_prepare (state := PARKING) *before* it publishes its waiter where a
 *   waker can find it (under the object's lock), then strand__waiter_block. The block
 *   switches away; the scheduler, off the strand's stack, completes PARKING -> PARKED with
 *   a CAS. A waker first claims the waiter (one CAS on *claim; select shares one claim
 *   among its cases, a timeout races for the same claim), writes the status, then calls
 *   strand__ready: PARKED -> RUNNABLE and it queues the strand, or PARKING -> RUNNABLE and
 *   the scheduler's CAS fails and the scheduler queues it. Either way exactly once.
 */
#ifndef STRAND_INTERNAL_H
#define STRAND_INTERNAL_H

#include "strand.h"
#include "context.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__)
#define STRAND__NOINLINE __attribute__((noinline))
#define STRAND__LIKELY(x) __builtin_expect(!!(x), 1)
#define STRAND__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define STRAND__NOINLINE
#define STRAND__LIKELY(x) (x)
#define STRAND__UNLIKELY(x) (x)
#endif

#define STRAND__CACHELINE 64

#if defined(STRAND_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void  __tsan_destroy_fiber(void *fiber);
void  __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* ------------------------------------------------------------------ small helpers */

static inline void strand__cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* A test-and-test-and-set spinlock for very short critical sections (a few stores). */
typedef struct { atomic_bool held; } strand__spinlock;

static inline void strand__spin_lock(strand__spinlock *l)
{
    for (;;) {
        /* acquire: the section's reads must not move above taking the lock */
        if (!atomic_exchange_explicit(&l->held, true, memory_order_acquire))
            return;
        while (atomic_load_explicit(&l->held, memory_order_relaxed))
            strand__cpu_relax();
    }
}

static inline bool strand__spin_trylock(strand__spinlock *l)
{
    return !atomic_exchange_explicit(&l->held, true, memory_order_acquire);
}

static inline void strand__spin_unlock(strand__spinlock *l)
{
    /* release: the section's writes are visible to the next holder */
    atomic_store_explicit(&l->held, false, memory_order_release);
}

/* Cancellation, exit reasons, links and monitors: one struct per strand (fate.h). */
#include "fate.h"

/* futex wrappers (futex.c). wait returns 0 when woken or the value differed, -ETIMEDOUT
 * when the absolute monotonic deadline passed (-1 = none). */
int  strand__futex_wait(atomic_uint *addr, unsigned expected, int64_t deadline);
void strand__futex_wake(atomic_uint *addr, int n);

/* ------------------------------------------------------------------ settings */

/* Resolved configuration: strand_config fields over STRAND_* variables over defaults
 * (config.c parses the environment strictly and warns once per bad variable). */
typedef struct strand__settings {
    int      workers;
    size_t   stack_size;
    size_t   pool_capacity;
    int      yield_interval;
    int      registry_size;
    int      watchdog_secs;
    int      host_driven;
    int      no_signals;
    int      guard_fallback;  /* 1: page guards and canaries even where guard regions exist */
    uint64_t seed;
    int      shutdown_ms;
    int      report;      /* STRAND_REPORT=1: counters at process exit */
    int      handoff_ms;     /* 0 = off */
    int      slice_ms;       /* 0 = off */
    int      max_threads;    /* workers and spares; >= workers once loaded */
    int      poller;        /* STRAND__POLLER_*: STRAND_POLLER (0: not loaded yet) */
} strand__settings;

/* The readiness backends STRAND_POLLER names (poller.c falls back to epoll at run time when
 * io_uring cannot be used). STRAND__POLLER_DEFAULT is what an unset variable means. */
enum { STRAND__POLLER_EPOLL = 1, STRAND__POLLER_IO_URING = 2 };
#define STRAND__POLLER_DEFAULT STRAND__POLLER_EPOLL
/* "epoll" or "io_uring", exactly: STRAND__POLLER_*; anything else -EINVAL (config.c). */
int strand__poller_parse(const char *text);

void strand__settings_load(strand__settings *out, const strand_config *cfg);
extern strand__settings strand__cfg; /* valid once the runtime is initialised */

/* ------------------------------------------------------------------ strands */

enum strand__state {
    STRAND__RUNNING = 0,
    STRAND__PARKING,
    STRAND__PARKED,
    STRAND__RUNNABLE,
    STRAND__DONE,
};

/* What a parked strand waits on, for the dump (wait_kind / wait_obj / wait_arg). */
enum strand__wait_kind {
    STRAND__WAIT_NONE = 0,
    STRAND__WAIT_JOIN,      /* wait_arg = id joined */
    STRAND__WAIT_CHAN_SEND, /* wait_obj = channel */
    STRAND__WAIT_CHAN_RECV,
    STRAND__WAIT_SELECT,
    STRAND__WAIT_MAILBOX,
    STRAND__WAIT_MUTEX,
    STRAND__WAIT_COND,
    STRAND__WAIT_WG,
    STRAND__WAIT_SEM,
    STRAND__WAIT_SLEEP,     /* wait_arg = deadline */
    STRAND__WAIT_FD_READ,   /* wait_arg = fd */
    STRAND__WAIT_FD_WRITE,
    STRAND__WAIT_BLOCKING,  /* off-load pool */
};

struct strand__msg;

/* Per-strand mailbox (mailbox.c owns the fields and states the protocol; sched/strand.c
 * only zero and drain it). `lock` guards `waiter` only; `inbox` is the senders' lock-free
 * stack; head/tail the owner's private FIFO. */
typedef struct strand__mailbox {
    strand__spinlock    lock;
    struct strand__waiter *waiter;
    _Atomic uintptr_t   inbox;
    struct strand__msg *head, *tail;
} strand__mailbox;

#define STRAND__NAME_MAX 32

struct strand__worker;
struct strand__stack;

/* A strand's descriptor: small, from the memory layer's descriptor slabs (desc.c), apart
 * from any stack. `stack` is NULL until the strand first runs (the scheduler binds one from
 * its worker's cache, sched_switch.c) and goes back the moment the strand exits; a strand
 * spawned with a custom stack size gets its stack at spawn (so its -ENOMEM is the spawn's).
 * The whole of it stays within 256 bytes (a _Static_assert in desc.c says so); issue-sized
 * additions go at the end. */
struct strand {
    strand__ctx ctx;                 /* saved registers while switched out */
    _Atomic int state;               /* enum strand__state (see "Parking") */
    uint8_t     prio;                /* enum strand_priority */
    uint8_t     spare_flags;
    uint8_t     detached_at_spawn;
    uint8_t     reserved_stack;      /* holds a default-stack credit (stack.c), not a stack */
    int16_t     pinned;              /* worker index, or -1 */
    int32_t     registry_index;      /* -1 = not tracked */
    int64_t     id;                  /* generation << 24 | slot (strand.c) */
    strand_fn   fn;
    void       *arg;
    struct strand *next;             /* link in whichever queue holds the strand */
    struct strand__worker *worker;   /* the worker that last ran it */
    struct strand__stack *stack;     /* bound at first run (NULL before), released at exit */
    int64_t     created_ns;
    /* for the dump; written by the strand itself just before it parks */
    int         wait_kind;
    uint32_t    yield_count;         /* strand_maybe_yield() */
    const void *wait_obj;
    int64_t     wait_arg;
    strand__mailbox mbox;
    void       *arena;               /* arena.c */
    struct strand__fate fate;        /* cancellation, exit reason, links (fate.h) */
#if defined(STRAND_ASAN)
    void       *asan_fake_stack;
#endif
#if defined(STRAND_TSAN)
    void       *tsan_fiber;
#endif
    /* last: strand__desc_get zeroes everything before it and only its first byte */
    char        name[STRAND__NAME_MAX];
};

/* The strand running on this thread (NULL on a plain thread or a worker between strands).
 * Not inlined, on purpose: a strand may resume on another thread, and the compiler must
 * not keep one thread's TLS address across a switch. */
struct strand *strand__current(void);
struct strand__worker *strand__worker_self(void);

/* Record what the current strand is about to wait on (for the dump). */
static inline void strand__set_wait(struct strand *s, int kind, const void *obj, int64_t arg)
{
    s->wait_kind = kind;
    s->wait_obj = obj;
    s->wait_arg = arg;
}

/* ------------------------------------------------------------------ waiting
 * The waiter API below is the protocol; the sequence every blocking primitive runs around
 * it (prepare, publish under the object's lock, unlock, block, take back what no waker
 * took) is written once in wait.h. */

typedef struct strand__waiter {
    struct strand *s;               /* NULL: a plain thread, blocked on `futex` */
    atomic_int    *claim;           /* 0 = open; the one CAS 0 -> 1 decides who wakes */
    atomic_int     own_claim;       /* used when no shared claim is given */
    atomic_uint    futex;           /* thread waiters: 0 = waiting, 1 = woken */
    int            status;          /* written by the claimer before it wakes */
    int            index;           /* select: which case; fd waits: the direction */
    void          *elem;            /* value to send / buffer to receive into */
    void          *obj;             /* the object this waiter is queued on */
    struct strand__waiter *next, *prev;
    uintptr_t      data;            /* free for the owning primitive */
} strand__waiter;

/* Set up `w` for the calling strand or thread. With a strand, its state becomes PARKING:
 * from here until strand__waiter_block (or _abort) it must not wait on anything else. */
void strand__waiter_prepare(strand__waiter *w, atomic_int *claim);
/* Undo a prepare whose waiter was never published. */
void strand__waiter_abort(strand__waiter *w);
/* One CAS: true for exactly one caller per wait. */
static inline bool strand__waiter_claim(strand__waiter *w)
{
    int open = 0;
    /* acq_rel: the claimer's later writes (status, value) must not be reordered before
     * the claim, and it must see what the waiter published before registering. */
    return atomic_compare_exchange_strong_explicit(w->claim, &open, 1, memory_order_acq_rel,
                                                   memory_order_acquire);
}
/* After a successful claim and writing w->status: resume the waiter. The caller must not
 * touch `w` afterwards (it lives on the waiter's stack). */
void strand__waiter_wake(strand__waiter *w);
/* Block until the waiter is claimed and woken or `deadline` passes (then a timer claims it
 * and the status is -ETIMEDOUT), or the strand is cancelled (fate.h: the status is
 * STRAND__STATUS_CANCELLED and it returns -ECANCELED). Otherwise returns w->status. The waiter must be published and the
 * object's lock released. On -ETIMEDOUT the caller removes w from the object itself
 * (strand__wait_block in wait.h does, for every primitive). */
int strand__waiter_block(strand__waiter *w, int64_t deadline);
/* The same, but a cancel cannot end it (for a wait only its waker can end, whose
 * registration cannot be taken back: the off-load pool's). */
int strand__waiter_block_shielded(strand__waiter *w, int64_t deadline);

/* ------------------------------------------------------------------ scheduler */

#define STRAND__PRIOS 4 /* enum strand_priority */

void strand__ready(struct strand *s);          /* see "Parking"; any thread */
void strand__park(void);                       /* current strand, state PARKING */
int  strand__runtime_ensure(void);             /* lazy init; 0 or negative code (runtime.c) */
void strand__stat_add(int which, uint64_t n);  /* enum strand__stat */

enum strand__stat {
    STRAND__STAT_SPAWNED = 0,
    STRAND__STAT_COMPLETED,
    STRAND__STAT_SWITCHES,
    STRAND__STAT_STEALS,
    STRAND__STAT_PARKS,
    STRAND__STAT_CHAN_OPS,
    STRAND__STAT_MAILBOX_SENT,
    STRAND__STAT_MAILBOX_DROPPED,
    STRAND__STAT_YIELDS_IN_PLACE, /* strand_yield with nothing else to run */
    STRAND__STAT_COUNT
};

/* Start the workers (runtime.c, under its init lock); each worker thread, and the host's
 * thread when it first drives the runtime, calls thread_start first (may be NULL). */
int  strand__sched_start(void (*thread_start)(void));
void strand__sched_stop(void);
bool strand__sched_stopping(void);
bool strand__sched_host(void);                 /* host-driven mode */
void strand__sched_spawn(struct strand *s);    /* queue a new strand (state RUNNABLE) */
int  strand__sched_wait_quiet(void);           /* until no strand is alive */
/* First code of every strand, on its own stack. */
void strand__entry_finish(void);
/* The end of strand_exit: switch away for good; the stack goes back to its cache. */
_Noreturn void strand__sched_exit(struct strand *self);
/* Start a timer (as strand__timer_start) and, if it moved the earliest deadline, wake the
 * worker that would sleep past it. Every timer of the runtime starts through this. */
struct strand__timer;
void strand__sched_timer_start(struct strand__timer *t, int64_t when,
                               void (*fn)(struct strand__timer *), void *arg);

/* The calling worker's caches (the memory layer's, defined under "stacks"); NULL on a
 * plain thread. */
typedef struct strand__caches strand__caches;
strand__caches *strand__worker_caches(void);

/* Counters (sched_counters.c): summed over workers without locks. */
void     strand__count_spawn(void);
uint64_t strand__active(void);                 /* spawned - completed */
/* Every counter; spawned >= completed always holds in one collection (sched_counters.c). */
void     strand__stats_collect(uint64_t out[STRAND__STAT_COUNT]);
uint64_t strand__peak_with(uint64_t active);    /* the peak, raised to `active` first */

/* Worker introspection for the watchdog and the dump (sched_counters.c). */
int strand__worker_count(void);
/* The strand worker i is running now (NULL if none) and its switch counter. */
struct strand *strand__worker_current(int i, uint64_t *switches);
/* Worker index of `w` (0-based), -1 if unknown; for the dump (dump.c has a weak fallback
 * that answers -1). */
int  strand__worker_index(const struct strand__worker *w);

/* Hand-off and the time slice (sched_monitor.c). Threads that run strands: the configured
 * workers [0, strand__worker_count()), then the spares (strand__thread_count() in all). */
typedef struct strand__thread_info {
    int            index;
    bool           spare;
    bool           parked;      /* spare: waits for a role */
    bool           gone;        /* spare: no thread now */
    int            tid;         /* kernel thread id (0 before it started) */
    struct strand *current;     /* the strand it runs, NULL if none */
    uint64_t       switches;
    int            standin;     /* worker: the spare holding its role, -1 */
    int            charge;      /* spare: the worker whose role it holds, -1 */
    int64_t        stuck_since; /* worker: handed off; its strand holds it since (0: not) */
    unsigned       queued;      /* strands in its rings and run-next (a racy count) */
} strand__thread_info;
int  strand__thread_count(void);
bool strand__thread_info_get(int i, strand__thread_info *out);
void strand__handoff_stats(struct strand_stats *out);
/* Is hand-off on? Then a call that may block its thread a while (a regular file's read or
 * write) may be made directly: the worker's queue moves on after STRAND_HANDOFF_MS. */
bool strand__handoff_enabled(void);

/* ------------------------------------------------------------------ ids (strand.c) */

/* Run fn(s, ctx) on the live strand `id` while it cannot finish (its id slot is locked:
 * keep fn short and non-blocking). -ESRCH if there is no such live strand. */
int strand__with_live(int64_t id, int (*fn)(struct strand *s, void *ctx), void *ctx);

/* Run fn(s, ctx) on every live strand, each under its id slot's lock (as with_live). */
void strand__each_live(void (*fn)(struct strand *s, void *ctx), void *ctx);
/* runtime.c: true while strand_shutdown cancels the strands (spawns are refused). */
bool strand__runtime_draining(void);

/* A per-worker cache of free id slot numbers (strand.c fills and drains it; the worker only
 * carries it, and only its own thread touches it). */
#define STRAND__SLOT_CACHE 128
typedef struct strand__slot_cache {
    int      n;
    uint32_t v[STRAND__SLOT_CACHE];
} strand__slot_cache;

/* ------------------------------------------------------------------ stacks (stack.c) */

bool strand__stack_is_default(size_t size); /* 0 or the configured size, page-rounded */

/* How a stack is guarded (strand__stack.guard). */
enum strand__guard {
    STRAND__GUARD_CANARY = 0, /* no guard: a canary in its lowest bytes, checked at switches */
    STRAND__GUARD_PAGE,       /* one PROT_NONE page (mprotect; costs a mapping) */
    STRAND__GUARD_REGION,     /* STRAND__GUARD_REGION_BYTES of MADV_GUARD_INSTALL markers */
};
/* The width of a guard region: wide enough that a frame the compiler did not probe
 * (no -fstack-clash-protection) still lands in it; see "Stacks and guard regions". */
#define STRAND__GUARD_REGION_BYTES ((size_t)64 * 1024)

/* A stack's own record, at the top of its usable memory (the first frames share its page):
 * what the pool, the binding and the overflow report need. Written by whoever holds the
 * stack (the pool under its lock, the worker that binds it); `owner` is read by the fault
 * handler. Issue 15's shared stacks would be a second kind of record: the descriptor only
 * ever holds a `struct strand__stack *`. */
typedef struct strand__stack {
    struct strand__stack *next;      /* pool and cache link */
    void       *lo;                  /* usable: [lo, this record) */
    size_t      size;                /* the stack size asked for (what reports print) */
    _Atomic(struct strand *) owner;  /* the strand bound to it, or NULL */
    uint8_t     guard;               /* enum strand__guard */
    uint8_t     single;              /* a mapping of its own (non-default size) */
#if defined(STRAND_VALGRIND)
    unsigned    valgrind_id;
#endif
} strand__stack;

static inline size_t strand__stack_usable(const strand__stack *st)
{
    return (size_t)((uintptr_t)st - (uintptr_t)st->lo);
}

/* A per-worker cache of free default-size stacks (LIFO: the most recently freed is the
 * warmest) and of default-stack credits. stack.c fills, drains and spills it; the worker
 * only carries it, and only its own thread touches it.
 * Credits: every strand spawned with the default size holds one until it first runs, so
 * that binding its stack then cannot fail; the credits say how many mapped stacks are
 * neither bound nor promised (stack.c, "Credits"). */
#define STRAND__STACK_CACHE 64
typedef struct strand__stack_cache {
    int            n;
    int            credits;
    strand__stack *v[STRAND__STACK_CACHE];
} strand__stack_cache;

/* A default-size stack promised to a strand about to be spawned: 0, or -ENOMEM when no
 * stack can be mapped. `cache` is the calling worker's (NULL on a plain thread). */
int  strand__stack_reserve(strand__stack_cache *cache);
void strand__stack_unreserve(strand__stack_cache *cache);
/* A stack of at least `size` usable bytes (0: the default size, which needs a credit the
 * caller reserved and now spends); NULL when out of memory or mappings. The stack's
 * sanitizer state is fresh (ASan unpoisoned, Valgrind registered). */
strand__stack *strand__stack_get(size_t size, strand__stack_cache *cache);
/* Back to the cache (or the pool); a default-size stack's credit goes back with it. */
void strand__stack_put(strand__stack *st, strand__stack_cache *cache);
/* The same without a cache (plain threads, tests): get(0) reserves its own credit. */
strand__stack *strand__stack_alloc(size_t size);
void strand__stack_free(strand__stack *st);
void strand__stack_cache_drain(strand__stack_cache *cache); /* all of it, to the pool */
/* A worker with nothing to run: hand idle pooled stacks' pages back, and give its cache
 * (c) back if a binding elsewhere is starved of stacks. */
void strand__stack_trim_idle(strand__stack_cache *c);
/* Is the canary at the bottom of an unguarded stack intact? (always true if guarded) */
bool strand__stack_check(const strand__stack *st);
const void *strand__stack_canary(const strand__stack *st); /* its address, to prefetch */
/* The stack whose guard (or bottom page, if canaried) contains addr, for the overflow
 * report; async-signal-safe (lock-free reads only). NULL if none. */
strand__stack *strand__stack_find(const void *addr);
void strand__stack_stats(uint64_t *bytes, uint64_t *guarded, uint64_t *canary);
/* Which guard new stacks get: STRAND__GUARD_REGION where the kernel offers guard regions
 * (and STRAND_GUARD_FALLBACK is not set), else STRAND__GUARD_PAGE while the mapping budget
 * lasts, then canaries. Decided once, at the first stack. */
int  strand__stack_guard_mode(void);

/* ------------------------------------------------------------------ descriptors (desc.c) */

/* A per-worker cache of free descriptors (LIFO), over a global list of slabs; only the
 * owning worker's thread touches it. */
#define STRAND__DESC_CACHE 64
typedef struct strand__desc_cache {
    int            n;
    struct strand *v[STRAND__DESC_CACHE];
} strand__desc_cache;

/* A descriptor, or NULL when out of memory. `cache`: the caller's, or NULL. Every field is
 * zero except `ctx` (the caller prepares it: strand__ctx_prepare) and the name, which is the
 * empty string. */
struct strand *strand__desc_get(strand__desc_cache *cache);
void strand__desc_put(struct strand *s, strand__desc_cache *cache);
void strand__desc_cache_drain(strand__desc_cache *cache);

/* The memory layer's per-worker caches, as each worker embeds them (stacks, descriptors,
 * ids). */
struct strand__caches {
    strand__stack_cache stacks;
    strand__desc_cache  descs;
    strand__slot_cache  slots;
};

/* ------------------------------------------------------------------ time (timer.c) */

/* A passive facility: timer.c calls nothing above it. Who must wake when a deadline moves
 * is the scheduler's business (strand__sched_timer_start). */
struct strand__tslot;
typedef struct strand__timer {
    int64_t when;                       /* absolute monotonic ns */
    void  (*fn)(struct strand__timer *t); /* runs on a worker, never on the owner's stack */
    void   *arg;
    struct strand__tslot *slot;         /* timer.c: this start's record in its heap */
    unsigned gen;                       /* timer.c: the slot's generation at the start */
} strand__timer;

/* Start t (when < 0: never due). Returns true if it became the earliest deadline of its
 * heap (published, seq_cst, before returning): the only way the process's earliest
 * deadline can move earlier. */
bool    strand__timer_start(strand__timer *t, int64_t when, void (*fn)(strand__timer *), void *arg);
/* Cancel; true if it had not fired. If its callback is running, waits for it to finish, so
 * the caller may free `t` (and what fn touches) on return. */
bool    strand__timer_stop(strand__timer *t);
/* Run the callbacks of every due timer; return the earliest pending deadline or -1. */
int64_t strand__timers_run(int64_t now);
/* The earliest pending deadline or -1 (seq_cst loads of the heap tops; no lock). Never
 * later than the earliest live timer; after a stop on another thread it may briefly be a
 * cancelled timer's (see timer.c), which only wakes a sleeping worker early. */
int64_t strand__timers_next(void);

/* ------------------------------------------------------------------ netpoll */

/* netpoll.c, over the readiness backend of poller.h (netpoll_epoll.c). */
int  strand__netpoll_init(void);
/* Poll for I/O readiness and make waiting strands runnable; timeout: 0 = don't block,
 * -1 = forever, else ns. The timeout is final: the caller bounds it by the earliest timer
 * (the poller reads no timers) and calls strand__netpoll_wake when that moves earlier.
 * Returns how many strands it readied. */
int  strand__netpoll(int64_t timeout_ns);
/* Interrupt a strand__netpoll blocked in another thread (async-signal-safe). */
void strand__netpoll_wake(void);
/* The fd a host may poll in host-driven mode. */
int  strand__netpoll_fd(void);
void strand__netpoll_shutdown(void);
/* Host-driven mode: arm the alarm so that strand__netpoll_fd() becomes readable by `when`
 * (a timer is due then). Does nothing otherwise; never wakes a poller. */
void strand__netpoll_timer_hint(int64_t when);

/* ------------------------------------------------------------------ diagnostics hooks */

void strand__registry_add(struct strand *s);      /* registry.c; at spawn */
void strand__registry_remove(struct strand *s);   /* at exit */
void strand__arena_release(struct strand *s);     /* arena.c; at exit */
void strand__mailbox_drain(struct strand *s);     /* mailbox.c; at exit (after no send can come) */
/* The one way a message enters a mailbox (mailbox.c): strand_send and the runtime's own
 * notices (from < 0, e.g. -1 for the runtime) go through it. Copies `len` bytes of msg and
 * queues them for `to`, waking it if it waits. The caller keeps `to` from finishing during
 * the call (inside strand__with_live on its id, or `to` is the caller). 0; -EMSGSIZE if
 * the message is too long to hold; -ENOMEM. On an error nothing was queued and msg is the
 * caller's still. Never blocks; callable from any thread. */
int  strand__mailbox_deliver(struct strand *to, int64_t from, const void *msg, size_t len);
void strand__diag_start(void);                    /* signals, watchdog; at init */
void strand__diag_stop(void);

/* ------------------------------------------------------------------ diagnostics */

/* Limits and defaults of the settings (config.c). */
#define STRAND__MAX_WORKERS   1024
#define STRAND__STACK_MIN     ((size_t)16 * 1024)
#define STRAND__STACK_MAX     ((size_t)1024 * 1024 * 1024)
#define STRAND__STACK_DEFAULT ((size_t)128 * 1024)
#define STRAND__REGISTRY_MAX  (1 << 22)
#define STRAND__MS_MAX        3600000 /* handoff_ms, slice_ms: an hour */
#define STRAND__THREADS_MAX   4096
#define STRAND__THREADS_DEFAULT 256

/* The STRAND_* variables, for strand__env_parse (the fuzzer's entry point). */
enum strand__env_var {
    STRAND__ENV_WORKERS = 0,
    STRAND__ENV_STACK_SIZE,
    STRAND__ENV_POOL_CAPACITY,
    STRAND__ENV_YIELD_INTERVAL,
    STRAND__ENV_REGISTRY_SIZE,
    STRAND__ENV_WATCHDOG_SECS,
    STRAND__ENV_SEED,
    STRAND__ENV_GUARD_FALLBACK,
    STRAND__ENV_SHUTDOWN_MS,
    STRAND__ENV_REPORT,
    STRAND__ENV_HANDOFF_MS,
    STRAND__ENV_SLICE_MS,
    STRAND__ENV_MAX_THREADS,
    STRAND__ENV_COUNT
};
/* Parse `text` as the value of variable `var`: 0 and *out, -EINVAL (not a number of the
 * accepted form) or -ERANGE (out of the variable's range). No output, no allocation. */
int         strand__env_parse(int var, const char *text, uint64_t *out);
const char *strand__env_name(int var);
/* -EINVAL for a strand_config with out-of-range fields (negative, workers > 1024, ...);
 * strand_init should return it before doing anything. NULL is fine. */
int         strand__config_check(const strand_config *cfg);
/* A stack size clamped to [16 KiB, 1 GiB] and rounded up to pages (for strand_attr too). */
size_t      strand__stack_size_norm(size_t size);

/* Each worker thread (and a host-driven thread) calls this once at start: it gives the
 * thread an alternate signal stack so the stack-overflow report can run (signals.c; the
 * runtime hands it to strand__sched_start, so the scheduler need not know it). */
void strand__diag_thread_start(void);

#endif
