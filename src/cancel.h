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

#endif
