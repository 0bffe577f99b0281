/*
 * sync.c - synchronisation objects for strands: mutex, condition variable, wait group and
 * counting semaphore. They park the calling strand (never the worker); a plain thread
 * blocks on its waiter's futex through the same waiter API.
 *
 * Invariants:
 *  - Each public struct is an opaque byte array in strand.h; the real layout below must
 *    fit (checked by _Static_assert). All-zero bytes are a valid unlocked mutex, an empty
 *    condition variable, a zero wait group and a zero semaphore, so static zero
 *    initialisation works without *_init.
 *  - Every field is guarded by the object's strand__wlock (struct swait, first in each
 *    object). Waiting is wait.h's sequence (park_on, and cond_wait's two halves around
 *    the mutex unlock); wakers claim a waiter under the lock, give it status 0 and wake it
 *    after releasing the lock.
 *  - Mutex: `owner` is 0 when unlocked, else the holder's identity (strand id > 0, or a
 *    negative number per plain thread). Unlock with waiters hands ownership straight to
 *    the oldest claimable waiter (no barging, FIFO), so a woken locker never re-contends.
 *  - Semaphore: post hands its unit straight to the oldest claimable waiter, else bumps
 *    the count. Wait group: reaching zero wakes every waiter.
 */
#include "wait.h"
#include "waitq.h"

#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What every object here waits on: its lock and one FIFO of waiters. */
struct swait {
    strand__wlock lock;
    strand__waitq q;
};

struct smutex {
    struct swait  wq;
    int64_t       owner;
};

struct scond {
    struct swait  wq;
};

struct swg {
    struct swait  wq;
    int64_t       count;
};

struct ssem {
    struct swait  wq;
    int64_t       value;
};

_Static_assert(sizeof(struct smutex) <= sizeof(strand_mutex), "mutex fits");
_Static_assert(sizeof(struct scond) <= sizeof(strand_cond), "cond fits");
_Static_assert(sizeof(struct swg) <= sizeof(strand_wg), "wait group fits");
_Static_assert(sizeof(struct ssem) <= sizeof(strand_sem), "semaphore fits");
_Static_assert(_Alignof(struct smutex) <= _Alignof(strand_mutex), "mutex alignment");
_Static_assert(_Alignof(struct ssem) <= _Alignof(strand_sem), "sem alignment");

#define MUTEX(m) ((struct smutex *)(void *)(m)->opaque)
#define COND(c) ((struct scond *)(void *)(c)->opaque)
#define WG(g) ((struct swg *)(void *)(g)->opaque)
#define SEM(s) ((struct ssem *)(void *)(s)->opaque)

/* The identity that owns a mutex: the strand id in a strand, else a negative number unique
 * to the calling thread. Never 0 (0 = unlocked). Not inlined: a thread-local read must
 * not be cached across a strand switch. */
static STRAND__NOINLINE int64_t owner_self(void)
{
    int64_t id = strand_self();
    if (id > 0)
        return id;
    static _Thread_local int64_t tid;
    if (tid == 0)
        tid = -(int64_t)syscall(SYS_gettid);
    return tid;
}

/* ------------------------------------------------------------------ waiting (wait.h) */

static int swait_publish(void *obj, strand__waiter *w)
{
    struct swait *o = obj;
    strand__waitq_push(&o->q, w, o);
    return 0;
}

static void *swait_unlink(void *obj, strand__waiter *w)
{
    struct swait *o = obj;
    if (w->obj != NULL) /* else a waker dropped it on its way to a claimable waiter */
        strand__waitq_remove(&o->q, w);
    return NULL;
}

STRAND__LOCK_FIRST(struct swait);
static const strand__wait_ops swait_ops = {
    strand__wait_wlock, strand__wait_wunlock, swait_publish, swait_unlink,
};

/* Park on o (lock held on entry, released here). `data`: a value for the waker (the
 * mutex hands over to w->elem's identity). Returns the waker's status or -ETIMEDOUT, in
 * which case w has been taken off the queue. */
static int park_on(struct swait *o, int kind, uintptr_t data, int64_t deadline)
{
    strand__wait_reg r;
    r.w.elem = (void *)data;
    return strand__wait(&r, &swait_ops, o, deadline, kind, 0);
}

/* Lock held: claim the oldest claimable waiter of o (status 0), to wake after the unlock;
 * NULL if there is none. */
static strand__waiter *claim_one(struct swait *o)
{
    strand__waiter *w = strand__waitq_claim(&o->q);
    if (w != NULL)
        w->status = 0;
    return w;
}

/* Lock held: claim every waiter of o (status 0) into a wake list. */
static strand__waiter *claim_all(struct swait *o)
{
    strand__waiter *list = NULL;
    strand__waitq_claim_all(&o->q, 0, &list);
    return list;
}

/* ------------------------------------------------------------------ mutex */

int strand_mutex_init(strand_mutex *m)
{
    if (m == NULL)
        return -EINVAL;
    memset(m, 0, sizeof *m);
    return 0;
}

int strand_mutex_lock(strand_mutex *m, int64_t deadline)
{
    if (m == NULL)
        return -EINVAL;
    struct smutex *mx = MUTEX(m);
    int64_t me = owner_self();
    strand__wlock_acquire(&mx->wq.lock);
    if (mx->owner == 0) {
        mx->owner = me;
        strand__wlock_release(&mx->wq.lock);
        return 0;
    }
    if (mx->owner == me) {
        strand__wlock_release(&mx->wq.lock);
        return -EDEADLK;
    }
    if (deadline == 0) {
        strand__wlock_release(&mx->wq.lock);
        return -EAGAIN; /* the deadline convention; strand_mutex_trylock says -EBUSY */
    }
    /* On success the unlocker has already made us the owner. */
    return park_on(&mx->wq, STRAND__WAIT_MUTEX, (uintptr_t)me, deadline);
}

int strand_mutex_trylock(strand_mutex *m)
{
    if (m == NULL)
        return -EINVAL;
    struct smutex *mx = MUTEX(m);
    int64_t me = owner_self();
    strand__wlock_acquire(&mx->wq.lock);
    int rc = mx->owner == 0 ? 0 : -EBUSY;
    if (rc == 0)
        mx->owner = me;
    strand__wlock_release(&mx->wq.lock);
    return rc;
}

int strand_mutex_unlock(strand_mutex *m)
{
    if (m == NULL)
        return -EINVAL;
    struct smutex *mx = MUTEX(m);
    int64_t me = owner_self();
    strand__wlock_acquire(&mx->wq.lock);
    if (mx->owner != me) {
        strand__wlock_release(&mx->wq.lock);
        return -EPERM;
    }
    strand__waiter *w = claim_one(&mx->wq);
    mx->owner = w != NULL ? (int64_t)(uintptr_t)w->elem : 0;
    strand__wlock_release(&mx->wq.lock);
    if (w != NULL)
        strand__waiter_wake(w);
    return 0;
}

int strand_mutex_destroy(strand_mutex *m)
{
    if (m == NULL)
        return -EINVAL;
    struct smutex *mx = MUTEX(m);
    strand__wlock_acquire(&mx->wq.lock);
    int rc = mx->owner != 0 || !strand__waitq_empty(&mx->wq.q) ? -EBUSY : 0;
    strand__wlock_release(&mx->wq.lock);
    return rc;
}

/* ------------------------------------------------------------------ condition variable */

int strand_cond_init(strand_cond *c)
{
    if (c == NULL)
        return -EINVAL;
    memset(c, 0, sizeof *c);
    return 0;
}

int strand_cond_wait(strand_cond *c, strand_mutex *m, int64_t deadline)
{
    if (c == NULL || m == NULL)
        return -EINVAL;
    struct scond *cv = COND(c);
    struct smutex *mx = MUTEX(m);
    int64_t me = owner_self();

    strand__wlock_acquire(&mx->wq.lock);
    bool held = mx->owner == me;
    strand__wlock_release(&mx->wq.lock);
    if (!held)
        return -EPERM;

    int rc;
    strand__wlock_acquire(&cv->wq.lock);
    if (deadline == 0 || (deadline > 0 && deadline <= strand_now())) {
        strand__wlock_release(&cv->wq.lock);
        rc = deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        return rc; /* the mutex was never released */
    }
    strand__wait_reg r;
    strand__wait_register(&r, &swait_ops, &cv->wq, NULL); /* never refused */
    struct strand *cur = strand__current();
    if (cur != NULL)
        strand__set_wait(cur, STRAND__WAIT_COND, cv, 0);
    strand__wlock_release(&cv->wq.lock);
    /* Registered before the mutex is released: a signal sent after our unlock finds us. */
    strand_mutex_unlock(m);

    rc = strand__wait_block(&r, 1, deadline);
    /* Shielded: even a cancelled strand returns holding the mutex, as its caller expects. */
    int shield = strand__wait_shield(1);
    int lrc = strand_mutex_lock(m, STRAND_FOREVER);
    (void)lrc; /* cannot fail: we do not hold it and wait forever */
    strand__wait_shield(shield);
    return rc;
}

int strand_cond_signal(strand_cond *c)
{
    if (c == NULL)
        return -EINVAL;
    struct scond *cv = COND(c);
    strand__wlock_acquire(&cv->wq.lock);
    strand__waiter *w = claim_one(&cv->wq);
    strand__wlock_release(&cv->wq.lock);
    if (w != NULL)
        strand__waiter_wake(w);
    return 0;
}

int strand_cond_broadcast(strand_cond *c)
{
    if (c == NULL)
        return -EINVAL;
    struct scond *cv = COND(c);
    strand__wlock_acquire(&cv->wq.lock);
    strand__waiter *list = claim_all(&cv->wq);
    strand__wlock_release(&cv->wq.lock);
    strand__wakelist_run(list);
    return 0;
}

int strand_cond_destroy(strand_cond *c)
{
    if (c == NULL)
        return -EINVAL;
    struct scond *cv = COND(c);
    strand__wlock_acquire(&cv->wq.lock);
    int rc = strand__waitq_empty(&cv->wq.q) ? 0 : -EBUSY;
    strand__wlock_release(&cv->wq.lock);
    return rc;
}

/* ------------------------------------------------------------------ wait group */

int strand_wg_init(strand_wg *wg)
{
    if (wg == NULL)
        return -EINVAL;
    memset(wg, 0, sizeof *wg);
    return 0;
}

int strand_wg_add(strand_wg *wg, int64_t delta)
{
    if (wg == NULL)
        return -EINVAL;
    struct swg *g = WG(wg);
    strand__wlock_acquire(&g->wq.lock);
    int64_t n;
    if (__builtin_add_overflow(g->count, delta, &n) || n < 0) {
        strand__wlock_release(&g->wq.lock);
        return -EINVAL; /* the counter is left as it was */
    }
    g->count = n;
    strand__waiter *list = n == 0 ? claim_all(&g->wq) : NULL;
    strand__wlock_release(&g->wq.lock);
    strand__wakelist_run(list);
    return 0;
}

int strand_wg_done(strand_wg *wg)
{
    return strand_wg_add(wg, -1);
}

int strand_wg_wait(strand_wg *wg, int64_t deadline)
{
    if (wg == NULL)
        return -EINVAL;
    struct swg *g = WG(wg);
    strand__wlock_acquire(&g->wq.lock);
    if (g->count == 0) {
        strand__wlock_release(&g->wq.lock);
        return 0;
    }
    if (deadline == 0) {
        strand__wlock_release(&g->wq.lock);
        return -EAGAIN;
    }
    return park_on(&g->wq, STRAND__WAIT_WG, 0, deadline);
}

int strand_wg_destroy(strand_wg *wg)
{
    if (wg == NULL)
        return -EINVAL;
    struct swg *g = WG(wg);
    strand__wlock_acquire(&g->wq.lock);
    int rc = strand__waitq_empty(&g->wq.q) ? 0 : -EBUSY;
    strand__wlock_release(&g->wq.lock);
    return rc;
}

/* ------------------------------------------------------------------ semaphore */

int strand_sem_init(strand_sem *s, int64_t value)
{
    if (s == NULL || value < 0)
        return -EINVAL;
    memset(s, 0, sizeof *s);
    SEM(s)->value = value;
    return 0;
}

int strand_sem_wait(strand_sem *s, int64_t deadline)
{
    if (s == NULL)
        return -EINVAL;
    struct ssem *sm = SEM(s);
    strand__wlock_acquire(&sm->wq.lock);
    if (sm->value > 0) {
        sm->value--;
        strand__wlock_release(&sm->wq.lock);
        return 0;
    }
    if (deadline == 0) {
        strand__wlock_release(&sm->wq.lock);
        return -EAGAIN;
    }
    /* On success the poster handed its unit straight to us. */
    return park_on(&sm->wq, STRAND__WAIT_SEM, 0, deadline);
}

int strand_sem_post(strand_sem *s)
{
    if (s == NULL)
        return -EINVAL;
    struct ssem *sm = SEM(s);
    strand__wlock_acquire(&sm->wq.lock);
    strand__waiter *w = claim_one(&sm->wq);
    if (w == NULL) {
        if (sm->value == INT64_MAX) {
            strand__wlock_release(&sm->wq.lock);
            return -EOVERFLOW;
        }
        sm->value++;
    }
    strand__wlock_release(&sm->wq.lock);
    if (w != NULL)
        strand__waiter_wake(w);
    return 0;
}

int strand_sem_destroy(strand_sem *s)
{
    if (s == NULL)
        return -EINVAL;
    struct ssem *sm = SEM(s);
    strand__wlock_acquire(&sm->wq.lock);
    int rc = strand__waitq_empty(&sm->wq.q) ? 0 : -EBUSY;
    strand__wlock_release(&sm->wq.lock);
    return rc;
}
