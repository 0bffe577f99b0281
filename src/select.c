/*
 * select.c - strand_select: wait on several channel operations, take the first ready.
 *
 * How (as Go's selectgo):
 *  1. Shuffle the case order (fairness among ready cases) and sort the distinct channels
 *     by address; lock them all in that order (a total order, so two selects can never
 *     deadlock on each other's locks; the same channel in two cases is locked once).
 *  2. With every lock held, try each case in the shuffled order with the same helpers as
 *     strand_chan_send/recv; the first that completes fires. If none does, raise the wait
 *     flag of each buffered case's side (the waiting side of chan.c's "No lost
 *     wake-up") and try them all once more: that is the last look before the cases are
 *     queued (if one fires now, every channel's flags are set back from its queues).
 *  3. Otherwise register one waiter per case, all sharing one claim word, then unlock and
 *     block on the first waiter (the primary). A waker claims whichever case waiter it
 *     dequeues - the shared claim lets exactly one case (or the timeout) win - writes that
 *     case's status and wakes the primary (waiter->data points to it, see waitq.h).
 *  4. On return, every case waiter that no waker claimed is unregistered from its channel
 *     (one lock at a time is enough for removal). A case woken with STRAND__CHAN_RETRY
 *     (its waker could not complete it after all, see chan.c) starts the select over.
 * Steps 3 and 4 are the wait layer's (wait.h), the same sequence as a single channel wait.
 *
 * Non-blocking (no case ready, deadline 0 or past): the answer "nothing ready" must hold
 * at one instant, but buffered channels change under our locks (chan.c's lock-free
 * paths). So step 2 runs once more between two reads of the ring positions of those
 * channels (a double collect): if none moved, no value left and no claim was made while we
 * looked, so a case found unready at its look was unready at the first look too (a
 * value or slot only appears when a position moves or an in-flight copy completes, and a
 * completion after our look is ordered after it); otherwise the select starts over.
 * Each start-over means another operation completed, so this is lock-free, not a spin.
 * Invariants: between 3 and 4 the case registrations live on this stack and each is
 * counted in its channel's nwait; their statuses stay STRAND__STATUS_PENDING except the
 * one a waker claimed.
 */
#include "chan_internal.h"

#include <limits.h>
#include <stdlib.h>

#define SELECT_INLINE 8                /* cases handled without malloc */
#define SELECT_MAX (1 << 16)
#define SELECT_AGAIN (-1 - SELECT_MAX) /* select_block: a case said "retry"; start over */

/* A per-thread xorshift generator. Not inlined: the TLS address must be computed afresh on
 * each call, as the strand may have moved to another thread since the last one. */
static STRAND__NOINLINE uint32_t select_rand(void)
{
    static _Thread_local uint64_t x;
    if (x == 0)
        x = ((uint64_t)(uintptr_t)&x ^ (uint64_t)strand_now() * 0x9E3779B97F4A7C15ull) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

static int chan_addr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(struct strand_chan *const *)a;
    uintptr_t y = (uintptr_t)*(struct strand_chan *const *)b;
    return x < y ? -1 : x > y;
}

/* Sort the n channels in place and drop duplicates; returns how many remain. */
static int sort_unique(struct strand_chan **chans, int n)
{
    if (n > 16) {
        qsort(chans, (size_t)n, sizeof *chans, chan_addr_cmp);
    } else {
        for (int i = 1; i < n; i++) {
            struct strand_chan *c = chans[i];
            int j = i - 1;
            for (; j >= 0 && (uintptr_t)chans[j] > (uintptr_t)c; j--)
                chans[j + 1] = chans[j];
            chans[j + 1] = c;
        }
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == 0 || chans[m - 1] != chans[i])
            chans[m++] = chans[i];
    }
    return m;
}

static void lock_all(struct strand_chan **chans, int m)
{
    for (int i = 0; i < m; i++)
        strand__wlock_acquire(&chans[i]->lock);
}

static void unlock_all(struct strand_chan **chans, int m)
{
    for (int i = m - 1; i >= 0; i--)
        strand__wlock_release(&chans[i]->lock);
}

static int validate(strand_select_case *cases, int n)
{
    if (n < 0 || n > SELECT_MAX || (n > 0 && cases == NULL))
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        strand_select_case *c = &cases[i];
        if (c->chan == NULL || c->elem == NULL)
            return -EINVAL;
        if (c->op != STRAND_SELECT_SEND && c->op != STRAND_SELECT_RECV)
            return -EINVAL;
        c->status = 0;
    }
    return 0;
}

/* A select with no cases: a sleep until the deadline (forever would never return). */
static int select_none(int64_t deadline)
{
    if (deadline == 0)
        return -EAGAIN;
    if (deadline < 0)
        return -EINVAL;
    int rc = strand_sleep_until(deadline);
    return rc == 0 ? -ETIMEDOUT : rc;
}

struct select_scratch {
    int                 *order;
    struct strand_chan **chans;
    strand__wait_reg    *r;
    uint64_t            *snap;   /* 2 per channel: enq and deq before step 2 */
};

/* Steps 3 and 4: register on every case, block, unregister (wait.h: the first case's
 * registration is the primary, the others share its claim). Locks held on entry. Returns
 * the case that fired, -ETIMEDOUT, or SELECT_AGAIN. */
static int select_block(strand_select_case *cases, int n, struct select_scratch *sc, int m,
                        int64_t deadline)
{
    strand__wait_reg *r = sc->r;
    for (int i = 0; i < n; i++) {
        bool send = cases[i].op == STRAND_SELECT_SEND;
        r[i].w.elem = cases[i].elem;
        r[i].w.index = i;
        strand__wait_register(&r[i], send ? &strand__chan_send_ops : &strand__chan_recv_ops,
                              cases[i].chan, i == 0 ? NULL : &r[0]); /* a channel never refuses */
    }
    struct strand *cur = strand__current();
    if (cur != NULL)
        strand__set_wait(cur, STRAND__WAIT_SELECT, cases, n);
    unlock_all(sc->chans, m);

    int rc = strand__wait_block(r, n, deadline);
    for (int i = 0; i < n; i++) {
        if (strand__wait_taken(&r[i])) {
            if (r[i].w.status == STRAND__CHAN_RETRY)
                return SELECT_AGAIN;
            cases[i].status = r[i].w.status;
            return i;
        }
    }
    if (rc == -ETIMEDOUT || rc == -ECANCELED)
        return rc;
    return -EPROTO; /* a broken wake, never */
}

/* Raise the flag of each buffered case's side, so that step 2 is the last look. */
static void raise_flags(strand_select_case *cases, int n)
{
    for (int i = 0; i < n; i++) {
        struct strand_chan *ch = cases[i].chan;
        if (ch->cap == 0)
            continue;
        /* seq_cst: the waiting side's store of chan.c's "No lost wake-up" */
        atomic_store_explicit(cases[i].op == STRAND_SELECT_SEND ? &ch->swait : &ch->rwait, 1,
                              memory_order_seq_cst);
    }
}

/* The ring positions of every buffered channel (the locks freeze the unbuffered ones).
 * Returns false if they differ from the previous snapshot (`check`). */
static bool snapshot(struct select_scratch *sc, int m, bool check)
{
    bool same = true;
    for (int i = 0; i < m; i++) {
        struct strand_chan *ch = sc->chans[i];
        if (ch->cap == 0)
            continue;
        uint64_t e = atomic_load_explicit(&ch->enq, memory_order_acquire);
        uint64_t d = atomic_load_explicit(&ch->deq, memory_order_acquire);
        if (check) {
            same = same && sc->snap[2 * i] == e && sc->snap[2 * i + 1] == d;
        } else {
            sc->snap[2 * i] = e;
            sc->snap[2 * i + 1] = d;
        }
    }
    return same;
}

/* No wait after all: set every buffered channel's flags back from its queues. */
static void settle_flags(struct strand_chan **chans, int m)
{
    for (int i = 0; i < m; i++) {
        if (chans[i]->cap > 0)
            strand__chan_flags(chans[i]);
    }
}

/* Try each case in the shuffled order (locks held): the index of the first that
 * completed (its locks then dropped, its partners woken), or -1 with the locks held.
 * `raised`: the flags were raised for this look and must be set back on success. */
static int try_cases(strand_select_case *cases, int n, struct select_scratch *sc, int m,
                     bool raised, bool *busy)
{
    for (int k = 0; k < n; k++) {
        int i = sc->order[k];
        strand_select_case *c = &cases[i];
        strand__chan_wake wk = { NULL, 0 };
        int rc = c->op == STRAND_SELECT_SEND ? strand__chan_try_send(c->chan, c->elem, &wk)
                                              : strand__chan_try_recv(c->chan, c->elem, &wk);
        if (rc == -EINPROGRESS) { /* not ready yet, but about to be: never park on it */
            *busy = true;
            continue;
        }
        if (rc == -EAGAIN)
            continue;
        if (raised)
            settle_flags(sc->chans, m);
        unlock_all(sc->chans, m);
        strand__chan_wake_run(&wk);
        c->status = rc;
        return i;
    }
    return -1;
}

static int select_run(strand_select_case *cases, int n, struct select_scratch *sc,
                      int64_t deadline)
{
    /* step 1: a random permutation of the cases, and the channels in lock order */
    for (int i = 0; i < n; i++) {
        int j = (int)(select_rand() % (uint32_t)(i + 1));
        sc->order[i] = sc->order[j];
        sc->order[j] = i;
        sc->chans[i] = cases[i].chan;
    }
    int m = sort_unique(sc->chans, n);
    lock_all(sc->chans, m);

    /* step 2: anything ready? A first look without the flags (the common case, a ready
     * case, then writes nothing the lock-free paths read), then the last look with them */
    bool busy = false;
    int i = try_cases(cases, n, sc, m, false, &busy);
    if (i >= 0)
        return i;
    raise_flags(cases, n);
    busy = false;
    if (deadline == 0 || (deadline > 0 && deadline <= strand_now())) {
        /* "Nothing ready" must have held at one instant, but the lock-free operations do
         * not stop for our locks: so the last look runs between two snapshots of the ring
         * positions, and the select starts over if any moved (see "Non-blocking" above). */
        snapshot(sc, m, false);
        if ((i = try_cases(cases, n, sc, m, true, &busy)) >= 0)
            return i; /* an in-flight operation (busy) is one not complete yet: unready */
        bool same = snapshot(sc, m, true);
        settle_flags(sc->chans, m);
        unlock_all(sc->chans, m);
        if (!same)
            return SELECT_AGAIN;
        return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
    }
    if ((i = try_cases(cases, n, sc, m, true, &busy)) >= 0)
        return i;
    if (busy) { /* as chan.c's chan_slow: do not park on an operation in flight */
        settle_flags(sc->chans, m);
        unlock_all(sc->chans, m);
        for (int k = 0; k < 64; k++)
            strand__cpu_relax();
        if (strand__current() != NULL)
            strand_yield();
        return SELECT_AGAIN;
    }
    return select_block(cases, n, sc, m, deadline);
}

int strand_select(strand_select_case *cases, int n, int64_t deadline)
{
    int rc = validate(cases, n);
    if (rc != 0)
        return rc;
    if (n == 0)
        return select_none(deadline);

    int order_buf[SELECT_INLINE];
    struct strand_chan *chans_buf[SELECT_INLINE];
    strand__wait_reg r_buf[SELECT_INLINE];
    uint64_t snap_buf[2 * SELECT_INLINE];
    struct select_scratch sc = { order_buf, chans_buf, r_buf, snap_buf };
    void *heap = NULL;
    if (n > SELECT_INLINE) {
        heap = malloc((size_t)n * (sizeof(int) + sizeof(struct strand_chan *) +
                                   sizeof(strand__wait_reg) + 2 * sizeof(uint64_t)));
        if (heap == NULL)
            return -ENOMEM;
        sc.r = heap;
        sc.snap = (uint64_t *)(sc.r + n);
        sc.chans = (struct strand_chan **)(sc.snap + 2 * n);
        sc.order = (int *)(sc.chans + n);
    }
    do
        rc = select_run(cases, n, &sc, deadline);
    while (rc == SELECT_AGAIN);
    free(heap);
    return rc;
}
