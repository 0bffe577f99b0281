/*
 * fate.h - what a strand's end means to others: cancellation, the exit reason, links,
 * monitors, the group and the supervisor it belongs to. All of it is one struct,
 * struct strand__fate, embedded as one member (`fate`) of struct strand; cancel.c,
 * links.c, group.c and supervisor.c own its fields, and the wait protocol's two ends
 * (strand__waiter_block in sched_park.c, the canceller in cancel.c) meet through the two
 * inline functions below.
 *
 * Cancellation is a third way to end a wait, beside a waker and the deadline, and it
 * ends it the same way the deadline's timer does: one claim of the waiter (the one CAS of
 * "Parking" in internal.h), then a status of its own, STRAND__STATUS_CANCELLED, which no
 * waker writes; wait.h maps it to -ECANCELED and takes the registration back.
 *
 * Invariants:
 *  - `lock` guards `parked` and the lists (links, watchers, watching). `parked` names
 *    the waiter the strand is blocked on, and only while its frame is alive: the strand
 *    sets it under the lock just before it parks and clears it under the lock as soon as
 *    it resumes, so a canceller that read it under the lock may claim it. The canceller
 *    holds the strand's id slot (strand__with_live), so at most one cancels at a time and
 *    the strand cannot end meanwhile.
 *  - `cancelled` goes 0 -> 1 once (never back), written under the lock and read without
 *    it (relaxed: a stale 0 read by strand_cancelled() only delays the unwinding to the
 *    next blocking call, which reads it under the lock).
 *  - `shield`, `trap_exits`, `reason`, `code` are written by the strand itself only
 *    (`reason`/`code` also read by its exit path on the same strand).
 *  - `exiting` goes 0 -> 1 under the lock at the start of the exit path: from then on no
 *    link or monitor is added, and the lists belong to the exit path.
 */
#ifndef STRAND_FATE_H
#define STRAND_FATE_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

/* A spinlock's shape is internal.h's; fate.h is included from there, after it. */

/* The status a canceller writes into the waiter it claims (see wait.h). */
#define STRAND__STATUS_CANCELLED (INT_MIN + 1)

/* One link or monitor as one side records it (links.c). */
typedef struct strand__watch {
    struct strand__watch *next;
    int64_t               peer; /* the other strand's id */
    int64_t               ref;  /* monitors: the ref; links: 0 */
} strand__watch;

struct strand_group;

struct strand__fate {
    strand__spinlock        lock;
    atomic_int              cancelled;  /* 0 -> 1 once */
    /* Small values packed into bytes (a descriptor's size is spawn's cost; desc.c). */
    uint8_t                 shield;     /* strand_cancel_shield(): the strand's own */
    uint8_t                 trap_exits; /* strand_trap_exits(): the strand's own */
    uint8_t                 exiting;    /* 0 -> 1 at the start of the exit path */
    uint8_t                 reason;     /* enum strand_exit_reason, set by strand_fail */
    int                     code;       /* strand_fail's code */
    int                     group_index; /* group.c: its place in the group (its lock) */
    struct strand__waiter  *parked;     /* the waiter it is blocked on, or NULL */
    strand__watch          *links;      /* partners (both sides record a link) */
    strand__watch          *watchers;   /* monitors on this strand: peer = the watcher */
    strand__watch          *watching;   /* this strand's monitors: peer = the target */
    struct strand_group    *group;      /* group.c: the group it was spawned into, or NULL */
    int64_t                 supervisor; /* id of the supervisor that started it, or 0 */
};

#endif
