/*
 * poll.c - strand_poll: poll(2) for strands. The calling strand parks on the records of
 * every descriptor it polls (the netpoller's queues, netpoll.c) instead of blocking its
 * worker; from a plain thread it is poll(2) itself.
 *
 * How, as a strand:
 *  1. Take a reference on each valid fd's record (strand_fd_close waits for it) and read
 *     the per-direction `seq` of each.
 *  2. poll(2) with timeout 0: anything ready (or invalid, POLLNVAL) is the answer.
 *  3. Otherwise register one waiter per record and direction, all sharing the first one's
 *     claim (as select.c does for channels), one record lock at a time, arming each fd on
 *     the way. If any seq moved since step 1 (an edge came after the poll(0) but before the
 *     registration), the strand claims its own wait (status -ETIMEDOUT, with `again` set)
 *     so the edge is not lost; then block (wait.h), take back what no waker took, and go
 *     to step 1's seq read again.
 *  A record found closing (strand_fd_close waits for our reference) is reported POLLNVAL:
 *  the fd is gone as far as this call is concerned.
 * Invariants: registrations live in `regs` (this stack, or malloc'd for many fds) from
 * registration to the end of strand__wait_block; references are dropped on every return.
 */
#include "io_internal.h"
#include "wait.h"

#include <poll.h>
#include <stdlib.h>

#define POLL_INLINE 8
#define POLL_MAX (1 << 20)

typedef struct poll_scratch {
    strand__fdrec   **recs;
    unsigned         *seq;  /* 2 per fd */
    strand__wait_reg *regs; /* 2 per fd */
} poll_scratch;

static int poll_thread(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - strand_now();
            if (left < 0)
                left = 0;
            ms = left > (int64_t)INT32_MAX * 1000000 ? INT32_MAX : (int)((left + 999999) / 1000000);
        }
        int r = poll(fds, n, ms);
        if (r > 0)
            return r;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r == 0)
            return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
    }
}

static bool wants_write(short ev)
{
    return ev & POLLOUT;
}

/* Register on every record (step 3). Returns how many registrations were made. *moved:
 * some seq changed since step 1 (or an fd cannot be watched); *nval: a record is closing
 * (its entry got POLLNVAL, and registering stopped there). */
static int register_all(struct pollfd *fds, nfds_t n, poll_scratch *sc, bool *moved,
                        bool *nval)
{
    int k = 0;
    *moved = *nval = false;
    for (nfds_t i = 0; i < n; i++) {
        strand__fdrec *rec = sc->recs[i];
        if (rec == NULL)
            continue;
        for (int dir = 0; dir < 2; dir++) {
            if (dir == STRAND__DIR_WRITE && !wants_write(fds[i].events))
                continue;
            if (dir == STRAND__DIR_READ && wants_write(fds[i].events) &&
                !(fds[i].events & (POLLIN | POLLPRI | POLLRDHUP)))
                continue; /* write only: errors and hang-ups are write events too */
            strand__spin_lock(&rec->lock);
            if (atomic_load_explicit(&rec->refs, memory_order_acquire) & STRAND__FD_CLOSING) {
                strand__spin_unlock(&rec->lock);
                fds[i].revents = POLLNVAL;
                *nval = true;
                return k;
            }
            if (strand__fd_arm(rec, fds[i].fd) < 0)
                *moved = true; /* not watchable (a file): poll(0) reports it next round */
            if (atomic_load_explicit(&rec->seq[dir], memory_order_acquire) != sc->seq[2 * i + dir])
                *moved = true;
            strand__wait_reg *r = &sc->regs[k];
            r->w.index = dir;
            strand__wait_register(r, &strand__fd_wait_ops, rec, k == 0 ? NULL : &sc->regs[0]);
            strand__spin_unlock(&rec->lock);
            k++;
        }
    }
    return k;
}

/* A wait whose registration must end at once (an edge was missed, or a record is closing):
 * claim it ourselves, as a timer would, so every registration is taken back. */
static void end_own_wait(strand__wait_reg *primary)
{
    if (strand__waiter_claim(&primary->w)) {
        primary->w.status = -ETIMEDOUT;
        strand__waiter_wake(&primary->w);
    }
}

static int poll_strand(struct pollfd *fds, nfds_t n, int64_t deadline, poll_scratch *sc)
{
    for (;;) {
        for (nfds_t i = 0; i < n; i++) {
            strand__fdrec *rec = sc->recs[i];
            if (rec != NULL) {
                sc->seq[2 * i] = strand__fd_seq(rec, STRAND__DIR_READ);
                sc->seq[2 * i + 1] = strand__fd_seq(rec, STRAND__DIR_WRITE);
            }
        }
        int r = poll(fds, n, 0);
        if (r > 0)
            return r;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (deadline == 0)
            return -EAGAIN;
        if (deadline > 0 && strand_now() >= deadline)
            return -ETIMEDOUT;
        bool moved, nval;
        int k = register_all(fds, n, sc, &moved, &nval);
        if (k == 0 && nval)
            return 1; /* a closing record before anything was registered */
        if (k == 0) { /* nothing to wait on (no valid fd): poll(2) would sleep */
            int rc = strand_sleep_until(deadline < 0 ? INT64_MAX : deadline);
            if (rc < 0)
                return rc;
            return -ETIMEDOUT;
        }
        if (moved || nval)
            end_own_wait(&sc->regs[0]);
        struct strand *cur = strand__current();
        strand__set_wait(cur, STRAND__WAIT_FD_READ, sc->recs, fds[0].fd);
        int rc = strand__wait_block(sc->regs, k, (moved || nval) ? -1 : deadline);
        if (nval) {
            int cnt = 0;
            for (nfds_t i = 0; i < n; i++)
                cnt += fds[i].revents != 0;
            return cnt;
        }
        if (rc == -ETIMEDOUT && !moved && deadline > 0 && strand_now() >= deadline) {
            r = poll(fds, n, 0); /* one last look: ready at the deadline counts */
            return r > 0 ? r : -ETIMEDOUT;
        }
        /* woken by readiness, a close (-ECANCELED) or our own claim: look again */
    }
}

int strand_poll(struct pollfd *fds, unsigned long nfds, int64_t deadline)
{
    if (fds == NULL && nfds > 0)
        return -EINVAL;
    if (nfds > POLL_MAX)
        return -EINVAL;
    for (nfds_t i = 0; i < nfds; i++)
        fds[i].revents = 0;
    if (strand__current() == NULL)
        return poll_thread(fds, nfds, deadline);
    if (nfds == 0) {
        if (deadline == 0)
            return -EAGAIN;
        int rc = strand_sleep_until(deadline < 0 ? INT64_MAX : deadline);
        return rc < 0 ? rc : -ETIMEDOUT;
    }

    strand__fdrec *recs_in[POLL_INLINE];
    unsigned seq_in[2 * POLL_INLINE];
    strand__wait_reg regs_in[2 * POLL_INLINE];
    poll_scratch sc = { recs_in, seq_in, regs_in };
    if (nfds > POLL_INLINE) {
        sc.recs = calloc(nfds, sizeof *sc.recs);
        sc.seq = calloc(2 * nfds, sizeof *sc.seq);
        sc.regs = calloc(2 * nfds, sizeof *sc.regs);
        if (sc.recs == NULL || sc.seq == NULL || sc.regs == NULL) {
            free(sc.recs);
            free(sc.seq);
            free(sc.regs);
            return -ENOMEM;
        }
    }
    for (nfds_t i = 0; i < nfds; i++) {
        int err = 0;
        sc.recs[i] = fds[i].fd >= 0 ? strand__fd_get(fds[i].fd, &err) : NULL;
    }
    int rc = poll_strand(fds, nfds, deadline, &sc);
    for (nfds_t i = 0; i < nfds; i++) {
        if (sc.recs[i] != NULL)
            strand__fd_put(sc.recs[i]);
    }
    if (nfds > POLL_INLINE) {
        free(sc.recs);
        free(sc.seq);
        free(sc.regs);
    }
    return rc;
}
