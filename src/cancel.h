/*
 * cancel.h - what links.c, group.c, supervisor.c and runtime.c's shutdown share with
 * cancel.c (the protocol is fate.h's).
 */
#ifndef STRAND_CANCEL_H
#define STRAND_CANCEL_H

#include "internal.h"

/* Cancel s, whose id slot the caller holds (inside strand__with_live): sets the flag and
 * claims the waiter it is parked on, if any. Returns that waiter, which the caller must
 * wake (strand__waiter_wake) once it has released the slot, or NULL. */
strand__waiter *strand__cancel_locked(struct strand *s);
/* The same with s->fate.lock held too. */
strand__waiter *strand__cancel_fate_held(struct strand *s);

/* supervisor.c: restarts of children by every supervisor so far (for the report). */
uint64_t strand__sup_restarts(void);
/* report.c: at each start of the runtime (under its init lock): note the first start's
 * time and, with STRAND_REPORT=1, arrange the exit report. */
void strand__report_start(void);

/* links.c: the exit path's one call (strand_exit, before the id slot changes hands):
 * settles the exit reason and tells monitors, links, the group and the supervisor. */
void strand__fate_exit(struct strand *s);

#endif
