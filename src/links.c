/*
 * links.c - exit reasons, monitors and links, as Erlang's: strand_fail, strand_monitor,
 * strand_demonitor, strand_link, strand_unlink, strand_trap_exits, and the exit path's
 * one hook (strand__fate_exit) that tells everyone who asked.
 *
 * Records (strand__watch, fate.h), each list under its owner's fate.lock:
 *   a link A-B    is {peer B} in A's `links` and {peer A} in B's;
 *   a monitor     of T by W with ref R is {peer T, R} in W's `watching` and {peer W, R}
 *                 in T's `watchers`.
 * The watcher's side (W's `watching`, A's `links`) is the authority on whether a notice
 * or a cancel is still wanted: the ending strand acts on a peer only if, under the peer's
 * fate.lock, it still finds and removes the peer's record of it, and it acts (delivers
 * the notice, claims the waiter) under that same lock. So strand_demonitor and
 * strand_unlink, which remove their own record first under their own lock, either win
 * (no notice and no cancel will come) or lose (the notice is in the mailbox already, and
 * demonitor removes it).
 *
 * Ending: strand__fate_exit runs on the ending strand, before its id slot stops naming it
 * as live. Under its own lock it sets `exiting` (no link or monitor can be added after)
 * and takes its three lists; then, for each peer, inside strand__with_live (the peer
 * cannot end meanwhile) it acts as above. Lock order: one strand's slot, then its fate
 * lock, then its mailbox's; no code holds two strands' locks at once.
 */
#include "internal.h"
#include "cancel.h"
#include "group.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_llong next_ref = 1; /* refs are unique in the process; relaxed: only unique */

/* ------------------------------------------------------------------ lists */

static strand__watch *watch_new(int64_t peer, int64_t ref)
{
    strand__watch *w = malloc(sizeof *w);
    if (w != NULL) {
        w->next = NULL;
        w->peer = peer;
        w->ref = ref;
    }
    return w;
}

/* Unlink and return the first record matching (peer, ref); ref 0 matches links. NULL if
 * none. Lock held. */
static strand__watch *watch_take(strand__watch **list, int64_t peer, int64_t ref)
{
    for (strand__watch **p = list; *p != NULL; p = &(*p)->next) {
        strand__watch *w = *p;
        if ((peer == 0 || w->peer == peer) && w->ref == ref) {
            *p = w->next;
            return w;
        }
    }
    return NULL;
}

static bool watch_has(strand__watch *list, int64_t peer, int64_t ref)
{
    for (; list != NULL; list = list->next)
        if (list->peer == peer && list->ref == ref)
            return true;
    return false;
}

static void watch_free_all(strand__watch *w)
{
    while (w != NULL) {
        strand__watch *next = w->next;
        free(w);
        w = next;
    }
}

/* ------------------------------------------------------------------ notices */

static void notice_lost(void)
{
    static const char msg[] = "strand: out of memory: a DOWN/EXIT notice was lost\n";
    (void)!write(2, msg, sizeof msg - 1);
    strand__stat_add(STRAND__STAT_MAILBOX_DROPPED, 1);
}

static void notify(struct strand *to, int kind, int reason, int code, int64_t id, int64_t ref)
{
    strand_notice n = { .kind = kind, .reason = reason, .code = code, .id = id, .ref = ref };
    if (strand__mailbox_deliver(to, STRAND_FROM_RUNTIME, &n, sizeof n) != 0)
        notice_lost();
}

/* What an ending strand tells one peer (inside strand__with_live(peer)). */
typedef struct ending {
    int64_t         id;     /* the strand that ended */
    int             reason, code;
    int64_t         ref;    /* DOWN: the monitor's ref; EXIT: 0 */
    strand__waiter *wake;   /* a cancelled peer's waiter, to wake after the slot lock */
} ending;

static int tell_watcher(struct strand *w, void *ctx)
{
    ending *e = ctx;
    strand__spin_lock(&w->fate.lock);
    strand__watch *rec = watch_take(&w->fate.watching, e->id, e->ref);
    if (rec != NULL) /* else demonitored meanwhile: no notice wanted */
        notify(w, STRAND_NOTICE_DOWN, e->reason, e->code, e->id, e->ref);
    strand__spin_unlock(&w->fate.lock);
    free(rec);
    return 0;
}

static int tell_partner(struct strand *p, void *ctx)
{
    ending *e = ctx;
    strand__spin_lock(&p->fate.lock);
    strand__watch *rec = watch_take(&p->fate.links, e->id, 0);
    if (rec != NULL) { /* else unlinked meanwhile */
        if (p->fate.trap_exits)
            notify(p, STRAND_NOTICE_EXIT, e->reason, e->code, e->id, 0);
        else if (e->reason != STRAND_EXIT_NORMAL)
            e->wake = strand__cancel_fate_held(p);
    }
    strand__spin_unlock(&p->fate.lock);
    free(rec);
    return 0;
}

static int forget_watcher(struct strand *t, void *ctx)
{
    const strand__watch *mine = ctx; /* {peer: the target, ref}; the watcher is current */
    strand__spin_lock(&t->fate.lock);
    strand__watch *rec = t->fate.exiting ? NULL
                                         : watch_take(&t->fate.watchers, 0, mine->ref);
    strand__spin_unlock(&t->fate.lock);
    free(rec);
    return 0;
}

static int forget_partner(struct strand *p, void *ctx)
{
    int64_t me = *(int64_t *)ctx;
    strand__spin_lock(&p->fate.lock);
    strand__watch *rec = p->fate.exiting ? NULL : watch_take(&p->fate.links, me, 0);
    strand__spin_unlock(&p->fate.lock);
    free(rec);
    return 0;
}

/* ------------------------------------------------------------------ the exit hook */

void strand__fate_exit(struct strand *s)
{
    struct strand__fate *f = &s->fate;
    if (f->reason != STRAND_EXIT_FAILED)
        f->reason = atomic_load_explicit(&f->cancelled, memory_order_relaxed)
                        ? STRAND_EXIT_CANCELLED : STRAND_EXIT_NORMAL;
    strand__spin_lock(&f->lock);
    f->exiting = 1;
    strand__watch *links = f->links, *watchers = f->watchers, *watching = f->watching;
    f->links = f->watchers = f->watching = NULL;
    strand__spin_unlock(&f->lock);

    for (strand__watch *w = watchers; w != NULL; w = w->next) {
        ending e = { s->id, f->reason, f->code, w->ref, NULL };
        (void)strand__with_live(w->peer, tell_watcher, &e);
    }
    for (strand__watch *w = links; w != NULL; w = w->next) {
        ending e = { s->id, f->reason, f->code, 0, NULL };
        (void)strand__with_live(w->peer, tell_partner, &e);
        if (e.wake != NULL)
            strand__waiter_wake(e.wake);
    }
    for (strand__watch *w = watching; w != NULL; w = w->next)
        (void)strand__with_live(w->peer, forget_watcher, w);
    watch_free_all(watchers);
    watch_free_all(links);
    watch_free_all(watching);
    strand__group_exit(s);
}

/* ------------------------------------------------------------------ the calls */

void strand_fail(int code)
{
    struct strand *s = strand__current();
    if (s == NULL)
        pthread_exit(NULL);
    s->fate.reason = STRAND_EXIT_FAILED;
    s->fate.code = code;
    strand_exit(NULL);
}

int strand_trap_exits(int on)
{
    struct strand *s = strand__current();
    if (s == NULL)
        return -EPERM;
    strand__spin_lock(&s->fate.lock); /* read by an ending partner under this lock */
    int prev = s->fate.trap_exits;
    s->fate.trap_exits = on != 0;
    strand__spin_unlock(&s->fate.lock);
    return prev;
}

typedef struct adding {
    strand__watch *rec;  /* the record for the target's list */
    strand__watch **(*list)(struct strand *t);
} adding;

static strand__watch **links_of(struct strand *t) { return &t->fate.links; }
static strand__watch **watchers_of(struct strand *t) { return &t->fate.watchers; }

/* Add a->rec to the target's list unless it is ending (-ESRCH: as if it had ended). */
static int add_to_target(struct strand *t, void *ctx)
{
    adding *a = ctx;
    strand__spin_lock(&t->fate.lock);
    int rc = -ESRCH;
    if (!t->fate.exiting) {
        strand__watch **l = a->list(t);
        if (a->rec->ref != 0 || !watch_has(*l, a->rec->peer, 0)) {
            a->rec->next = *l;
            *l = a->rec;
            a->rec = NULL;
        }
        rc = 0;
    }
    strand__spin_unlock(&t->fate.lock);
    return rc;
}

int64_t strand_monitor(int64_t id)
{
    struct strand *me = strand__current();
    if (me == NULL)
        return -EPERM;
    if (id == me->id)
        return -EINVAL;
    int64_t ref = atomic_fetch_add_explicit(&next_ref, 1, memory_order_relaxed);
    strand__watch *mine = watch_new(id, ref);
    strand__watch *theirs = watch_new(me->id, ref);
    if (mine == NULL || theirs == NULL) {
        free(mine);
        free(theirs);
        return -ENOMEM;
    }
    /* Ours first: once the target holds its record it may end and look for ours. */
    strand__spin_lock(&me->fate.lock);
    mine->next = me->fate.watching;
    me->fate.watching = mine;
    strand__spin_unlock(&me->fate.lock);
    adding a = { theirs, watchers_of };
    if (id <= 0 || strand__with_live(id, add_to_target, &a) != 0) {
        free(a.rec);
        /* No such strand: the DOWN comes at once, unless ours was taken meanwhile (it
         * cannot be: only an ending target takes it, and this one never got a record). */
        ending e = { id, STRAND_EXIT_NOPROC, 0, ref, NULL };
        tell_watcher(me, &e);
    }
    return ref;
}

/* A DOWN for `ref` already in the mailbox. */
static int is_down_for(const void *msg, size_t len, int64_t from, void *ctx)
{
    const strand_notice *n = msg;
    return from == STRAND_FROM_RUNTIME && len == sizeof *n && n->kind == STRAND_NOTICE_DOWN &&
           n->ref == *(int64_t *)ctx;
}

int strand_demonitor(int64_t ref)
{
    struct strand *me = strand__current();
    if (me == NULL)
        return -EPERM;
    if (ref <= 0)
        return -EINVAL;
    strand__spin_lock(&me->fate.lock);
    strand__watch *mine = watch_take(&me->fate.watching, 0, ref);
    strand__spin_unlock(&me->fate.lock);
    if (mine != NULL) {
        /* Won: no DOWN will come. Tidy the target's side (unless it is ending). */
        (void)strand__with_live(mine->peer, forget_watcher, mine);
        free(mine);
        return 0;
    }
    /* Lost (or never ours): any DOWN for ref was delivered under our lock, so it is in the
     * mailbox now or was received already. Remove it; shielded, as deadline 0 never
     * waits anyway. */
    strand_notice n;
    (void)strand_recv_match(is_down_for, &ref, &n, sizeof n, NULL, 0);
    return 0;
}

int strand_link(int64_t id)
{
    struct strand *me = strand__current();
    if (me == NULL)
        return -EPERM;
    if (id == me->id)
        return -EINVAL;
    strand__spin_lock(&me->fate.lock);
    bool linked = watch_has(me->fate.links, id, 0);
    strand__spin_unlock(&me->fate.lock);
    if (linked)
        return 0;
    strand__watch *mine = watch_new(id, 0);
    strand__watch *theirs = watch_new(me->id, 0);
    if (mine == NULL || theirs == NULL) {
        free(mine);
        free(theirs);
        return -ENOMEM;
    }
    strand__spin_lock(&me->fate.lock);
    mine->next = me->fate.links;
    me->fate.links = mine;
    strand__spin_unlock(&me->fate.lock);
    adding a = { theirs, links_of };
    int rc = id <= 0 ? -ESRCH : strand__with_live(id, add_to_target, &a);
    free(a.rec); /* NULL once the target took it (or a duplicate) */
    if (rc == 0)
        return 0;
    /* As if it had just ended NOPROC: we are its partner now, so tell ourselves. */
    ending e = { id, STRAND_EXIT_NOPROC, 0, 0, NULL };
    tell_partner(me, &e); /* cancels us: e.wake stays NULL, we are running */
    return -ESRCH;
}

int strand_unlink(int64_t id)
{
    struct strand *me = strand__current();
    if (me == NULL)
        return -EPERM;
    strand__spin_lock(&me->fate.lock);
    strand__watch *mine = watch_take(&me->fate.links, id, 0);
    strand__spin_unlock(&me->fate.lock);
    if (mine == NULL)
        return 0;
    free(mine);
    int64_t self = me->id;
    (void)strand__with_live(id, forget_partner, &self);
    return 0;
}
