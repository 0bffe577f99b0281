/*
 * stats.c - strand_stats(): a snapshot of the runtime's counters.
 *
 * Invariants: no lock is taken. The counters live where they are bumped (per worker, in
 * sched_counters.c; per stack pool in stack.c; the registry's overflow in registry.c). One
 * collection of the scheduler's counters gives spawned >= completed (sched_counters.c says
 * why), and `active` is computed from that same pair, so spawned == completed + active holds
 * in every snapshot; the other counters are each a value they had during the call.
 */
#include "diag.h"

#include <string.h>

int strand_stats(struct strand_stats *out)
{
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);

    uint64_t c[STRAND__STAT_COUNT] = { 0 };
    strand__stats_collect(c);
    out->spawned = c[STRAND__STAT_SPAWNED];
    out->completed = c[STRAND__STAT_COMPLETED];
    out->switches = c[STRAND__STAT_SWITCHES];
    out->steals = c[STRAND__STAT_STEALS];
    out->parks = c[STRAND__STAT_PARKS];
    out->chan_ops = c[STRAND__STAT_CHAN_OPS];
    out->mailbox_sent = c[STRAND__STAT_MAILBOX_SENT];
    out->mailbox_dropped = c[STRAND__STAT_MAILBOX_DROPPED];

    /* spawned >= completed in one collection; the clamp is only a safety net */
    uint64_t active = out->spawned > out->completed ? out->spawned - out->completed : 0;
    if (out->completed > out->spawned)
        out->completed = out->spawned;
    uint64_t peak = strand__peak_with(active);
    out->active = active;
    out->peak = peak > active ? peak : active;

    strand__stack_stats(&out->stack_bytes, &out->stacks_guarded, &out->stacks_canary);
    out->registry_overflow = strand__registry_overflow();
    out->workers = strand__worker_count();
    strand__handoff_stats(out);
    return 0;
}
