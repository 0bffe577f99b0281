/*
 * stats.c - strand_stats(): a snapshot of the runtime's counters.
 *
 * Invariants: no lock is taken. The counters live where they are bumped (per worker, in
 * sched_counters.c; per stack pool in stack.c; the registry's overflow in registry.c); each
 * is read with a relaxed atomic load, so a snapshot is a consistent value per counter, not across
 * counters (completed may run a little ahead of spawned between two loads; `active` is
 * taken from the scheduler's own figure and clamped so it never reads as negative).
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

    uint64_t active = 0, peak = 0;
    strand__active_peak(&active, &peak);
    if ((int64_t)active < 0)
        active = 0;
    out->active = active;
    out->peak = peak > active ? peak : active;

    strand__stack_stats(&out->stack_bytes, &out->stacks_guarded, &out->stacks_canary);
    out->registry_overflow = strand__registry_overflow();
    out->workers = strand__worker_count();
    strand__handoff_stats(out);
    return 0;
}
