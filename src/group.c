/*
 * group.c - groups (structured concurrency, as libdill's bundles and Trio's nurseries):
 * strands spawned into a group are cancelled together and waited for with a deadline.
 *
 * A group is a counter of live members (a strand_wg, which plain threads can wait on
 * too) and an array of the members' control blocks under `lock`. Invariants:
 *  - A member is counted (wg_add) before it is spawned and uncounted (wg_done) by its own
 *    exit path (strand__group_exit), after it has left the array; so a count of 0 means
 *    no member can touch the group any more, and release may free it.
 *  - A member enters the array on its own first instruction (group_entry) and leaves it
 *    in its exit path, both under `lock`; while it is in the array its control block is
 *    alive, so strand_group_cancel may cancel it through the pointer while holding the
 *    lock (the member cannot pass its exit path meanwhile).
 *  - `cancelled` goes 0 -> 1 under the lock; a member entering after it cancels itself,
 *    so no spawn racing a cancel escapes it.
 * Members are detached: the group waits for them, nobody joins them.
 */
#include "internal.h"
#include "cancel.h"
#include "group.h"

#include <errno.h>
#include <stdlib.h>

struct strand_group {
    strand__spinlock lock;
    int              cancelled;
    int              n, cap;
    struct strand  **members; /* index = member's fate.group_index */
    strand_wg        live;
};

typedef struct gstart {
    strand_group *g;
    strand_fn     fn;
    void         *arg;
} gstart;

int strand_group_create(strand_group **out)
{
    if (out == NULL)
        return -EINVAL;
    strand_group *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    strand_wg_init(&g->live);
    *out = g;
    return 0;
}

/* Under g->lock: put s in the array. false when out of memory (then it is not a member
 * of the array but still counted: it leaves the count at exit all the same). */
static bool members_add(strand_group *g, struct strand *s)
{
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 16;
        struct strand **m = realloc(g->members, (size_t)cap * sizeof *m);
        if (m == NULL)
            return false;
        g->members = m;
        g->cap = cap;
    }
    s->fate.group_index = g->n;
    g->members[g->n++] = s;
    return true;
}

static void *group_entry(void *p)
{
    gstart st = *(gstart *)p;
    free(p);
    struct strand *s = strand__current();
    s->fate.group = st.g;
    s->fate.group_index = -1;
    strand__spin_lock(&st.g->lock);
    bool listed = members_add(st.g, s);
    bool cancel = st.g->cancelled || !listed; /* unlisted: cannot be cancelled later */
    strand__spin_unlock(&st.g->lock);
    if (cancel)
        strand_cancel(s->id);
    return st.fn(st.arg);
}

void strand__group_exit(struct strand *s)
{
    strand_group *g = s->fate.group;
    if (g == NULL)
        return;
    strand__spin_lock(&g->lock);
    int i = s->fate.group_index;
    if (i >= 0) {
        struct strand *last = g->members[--g->n];
        g->members[i] = last;
        last->fate.group_index = i;
    }
    strand__spin_unlock(&g->lock);
    strand_wg_done(&g->live); /* the last touch of g by this member */
}

int64_t strand_group_spawn(strand_group *g, strand_fn fn, void *arg, const strand_attr *attr)
{
    if (g == NULL || fn == NULL)
        return -EINVAL;
    gstart *st = malloc(sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    *st = (gstart){ g, fn, arg };
    strand_attr a = attr != NULL ? *attr : (strand_attr){ 0 };
    a.detached = 1;
    strand_wg_add(&g->live, 1);
    int64_t id = strand_spawn_attr(group_entry, st, &a);
    if (id < 0) {
        free(st);
        strand_wg_done(&g->live);
    }
    return id;
}

int strand_group_cancel(strand_group *g)
{
    if (g == NULL)
        return -EINVAL;
    strand__spin_lock(&g->lock);
    g->cancelled = 1;
    for (int i = 0; i < g->n; i++) {
        /* The member cannot pass its exit path while we hold the lock, and a claimed
         * waiter stays parked until woken: waking here is safe. */
        strand__waiter *w = strand__cancel_locked(g->members[i]);
        if (w != NULL)
            strand__waiter_wake(w);
    }
    strand__spin_unlock(&g->lock);
    return 0;
}

int strand_group_wait(strand_group *g, int64_t deadline)
{
    if (g == NULL)
        return -EINVAL;
    return strand_wg_wait(&g->live, deadline);
}

void strand_group_release(strand_group *g)
{
    if (g == NULL)
        return;
    strand_group_cancel(g);
    /* Shielded: a cancelled owner must still wait, or members would touch freed memory. */
    int shield = strand_cancel_shield(1);
    (void)strand_wg_wait(&g->live, STRAND_FOREVER);
    if (shield >= 0)
        strand_cancel_shield(shield);
    strand_wg_destroy(&g->live);
    free(g->members);
    free(g);
}
