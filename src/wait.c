/*
 * wait.c - the out-of-line part of the wait sequence of wait.h (its inline functions are
 * the rest, written once there): taking back a registration no waker took. The
 * primitives (chan.c, select.c, sync.c, mailbox.c, strand.c's join, netpoll.c,
 * blocking.c) supply only their object's ops.
 *
 * Why this order (verify/park.pml checks it): strand__waiter_prepare's PARKING store comes
 * before publish, and both before the unlock that lets a waker find the waiter, so a wake
 * can never fall between the primitive's check of its condition and the park. Taking a
 * registration back needs the object's lock: a waker that dequeued it may still be
 * touching it until it drops that lock (see verify/README.md, "The waker claims under the
 * lock").
 */
#include "wait.h"

#include <stdlib.h>

void strand__wait_take_back(strand__wait_reg *r)
{
    if (r->ops->unlink == NULL)
        return; /* cannot happen: such a wait has no other ending (see wait.h) */
    r->ops->lock(r->obj);
    void *dead = r->ops->unlink(r->obj, &r->w);
    r->ops->unlock(r->obj);
    free(dead);
}
