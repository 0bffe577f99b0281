/*
 * chan_internal.h - the channel structure and the locked helpers chan.c shares with
 * select.c. See chan.c for the invariants.
 */
#ifndef STRAND_CHAN_INTERNAL_H
#define STRAND_CHAN_INTERNAL_H

#include "wait.h"
#include "waitq.h"

#include <string.h>

#define STRAND__CHAN_MAX_ELEM ((size_t)64 * 1024)  /* bytes per element */
#define STRAND__CHAN_MAX_CAP  ((size_t)1 << 30)    /* elements */

struct strand_chan {
    strand__wlock lock;
    uint32_t      elem_size;
    bool          closed;
    bool          dead;      /* no references left; freed once nwait drops to 0 */
    size_t        cap;
    size_t        count;     /* elements buffered */
    size_t        recvx;     /* next slot to receive from */
    size_t        sendx;     /* next slot to send into */
    strand__waitq sendq, recvq;
    size_t        nwait;     /* waiters that will come back to this lock (see chan.c) */
    atomic_size_t refs;
    _Alignas(16) unsigned char buf[]; /* cap * elem_size bytes */
};

static inline void *strand__chan_slot(struct strand_chan *ch, size_t i)
{
    return ch->buf + i * ch->elem_size;
}

/* Element copy with the common small sizes unrolled (a call to memcpy with a variable
 * size costs more than the rest of an uncontended channel operation). */
static inline void strand__chan_copy(void *dst, const void *src, uint32_t size)
{
    switch (size) {
    case 1: memcpy(dst, src, 1); return;
    case 2: memcpy(dst, src, 2); return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default: memcpy(dst, src, size); return;
    }
}

/* With ch->lock held: complete the operation now (0, or -EPIPE), setting *wake to a
 * claimed waiter the caller must wake after unlocking, or return -EAGAIN. */
int  strand__chan_try_send(struct strand_chan *ch, const void *elem, strand__waiter **wake);
int  strand__chan_try_recv(struct strand_chan *ch, void *elem, strand__waiter **wake);
/* How the wait layer (wait.h) queues a waiter on a channel's sendq / recvq and takes it
 * back; select.c registers its cases with them. */
extern const strand__wait_ops strand__chan_send_ops, strand__chan_recv_ops;

#endif
