/*
 * strand.c - a strand's life: ids, spawn, join, detach, exit.
 *
 * Ids. An id names a slot of the id table and a generation of that slot:
 * id = generation << 24 | slot, slot >= 1. Freeing a slot bumps its generation, so a
 * stale id never matches a new strand (ids are never reused while generations last:
 * 2^39 reuses of one slot). The table is two-level (chunks of 4096 slots, allocated on
 * demand, never freed) so lookups are lock-free and entries never move.
 *
 * A slot outlives its strand's stack: a joinable strand that ends leaves its result in
 * the slot (ZOMBIE) and its stack goes straight back to the pool; strand_join takes the
 * result and frees the slot. Each slot has a spinlock that orders the three parties that
 * may race on it: the strand ending, a joiner, and strand_detach / strand__with_live.
 *
 * Slot numbers are handed out from a per-worker cache (strand__slot_cache, which each
 * worker carries and only its thread touches) over a global stack of freed numbers under
 * free_lock; a plain thread goes to the global stack directly.
 *
 * Slot states: FREE -> LIVE (spawn) -> ZOMBIE (exit, joinable) -> FREE (join)
 *              LIVE -> DETACHED (detach) -> FREE (exit)
 *              LIVE -> FREE (exit with a joiner waiting: the joiner gets the result)
 *              ZOMBIE -> FREE (detach)
 */
#include "internal.h"
#include "cancel.h"
#include "wait.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOT_BITS   24
#define CHUNK_BITS  12
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define MAX_CHUNKS  (1u << (SLOT_BITS - CHUNK_BITS))

enum { SLOT_FREE = 0, SLOT_LIVE, SLOT_DETACHED, SLOT_ZOMBIE };

typedef struct slot {
    strand__spinlock lock;
    uint8_t          state;
    uint64_t         gen;
    struct strand   *s;
    void            *result;
    strand__waiter  *joiner;
} slot;

static _Atomic(slot *) chunks[MAX_CHUNKS];
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *free_slots; /* freed slot numbers (a stack) */
static size_t nfree, free_cap;
static uint32_t next_fresh = 1; /* slot 0 is never used: ids are > 0 */

static slot *slot_at(uint32_t n)
{
    slot *c = atomic_load_explicit(&chunks[n >> CHUNK_BITS], memory_order_acquire);
    return c ? &c[n & (CHUNK_SLOTS - 1)] : NULL;
}

static int64_t make_id(uint32_t n, uint64_t gen)
{
    return (int64_t)(gen << SLOT_BITS | n);
}

/* Lock the slot an id names if it still names it; NULL otherwise. */
static slot *slot_lock(int64_t id)
{
    if (id <= 0)
        return NULL;
    uint32_t n = (uint32_t)(id & ((1 << SLOT_BITS) - 1));
    slot *sl = slot_at(n);
    if (!sl)
        return NULL;
    strand__spin_lock(&sl->lock);
    if (sl->state == SLOT_FREE || make_id(n, sl->gen) != id) {
        strand__spin_unlock(&sl->lock);
        return NULL;
    }
    return sl;
}

/* ---- allocation of slot numbers: a per-worker cache over a global stack */

static bool refill(strand__slot_cache *cache)
{
    pthread_mutex_lock(&free_lock);
    while (cache->n < STRAND__SLOT_CACHE / 2 && nfree)
        cache->v[cache->n++] = free_slots[--nfree];
    while (cache->n < STRAND__SLOT_CACHE / 2 && next_fresh < (1u << SLOT_BITS)) {
        uint32_t n = next_fresh;
        if (!slot_at(n)) {
            slot *c = calloc(CHUNK_SLOTS, sizeof *c);
            if (!c)
                break;
            atomic_store_explicit(&chunks[n >> CHUNK_BITS], c, memory_order_release);
        }
        cache->v[cache->n++] = next_fresh++;
    }
    pthread_mutex_unlock(&free_lock);
    return cache->n > 0;
}

static void free_push_locked(uint32_t n)
{
    if (nfree == free_cap) {
        size_t cap = free_cap ? free_cap * 2 : 4096;
        uint32_t *p = realloc(free_slots, cap * sizeof *p);
        if (!p)
            return; /* the slot is lost to reuse; its generation still protects it */
        free_slots = p;
        free_cap = cap;
    }
    free_slots[nfree++] = n;
}

/* c: the calling worker's cache, NULL on a plain thread. */
static int64_t slot_alloc(struct strand *s, strand__slot_cache *c)
{
    uint32_t n = 0;
    if (c) {
        if (!c->n && !refill(c))
            return -ENOMEM;
        n = c->v[--c->n];
    } else {
        pthread_mutex_lock(&free_lock);
        if (nfree) {
            n = free_slots[--nfree];
        } else if (next_fresh < (1u << SLOT_BITS)) {
            n = next_fresh;
            if (!slot_at(n)) {
                slot *c = calloc(CHUNK_SLOTS, sizeof *c);
                if (c)
                    atomic_store_explicit(&chunks[n >> CHUNK_BITS], c, memory_order_release);
            }
            if (slot_at(n))
                next_fresh++;
            else
                n = 0;
        }
        pthread_mutex_unlock(&free_lock);
        if (!n)
            return -ENOMEM;
    }
    slot *sl = slot_at(n);
    strand__spin_lock(&sl->lock);
    sl->state = s->detached_at_spawn ? SLOT_DETACHED : SLOT_LIVE;
    sl->s = s;
    sl->result = NULL;
    sl->joiner = NULL;
    int64_t id = make_id(n, sl->gen);
    strand__spin_unlock(&sl->lock);
    return id;
}

/* Give slot number n back, to cache c (the caller's, NULL on a plain thread). */
static void slot_number_free(uint32_t n, strand__slot_cache *c)
{
    if (c && c->n < STRAND__SLOT_CACHE) {
        c->v[c->n++] = n;
        return;
    }
    pthread_mutex_lock(&free_lock);
    if (c) /* spill half the cache along with it */
        while (c->n > STRAND__SLOT_CACHE / 2)
            free_push_locked(c->v[--c->n]);
    free_push_locked(n);
    pthread_mutex_unlock(&free_lock);
}

/* Called with the slot locked; unlocks it. The number goes to the calling worker's cache. */
static void slot_free_unlock(slot *sl, uint32_t n)
{
    sl->state = SLOT_FREE;
    sl->s = NULL;
    sl->joiner = NULL;
    sl->gen++;
    strand__spin_unlock(&sl->lock);
    strand__caches *c = strand__worker_caches();
    slot_number_free(n, c ? &c->slots : NULL);
}

/* ---- spawn */

/* The birth time is for the dump's "age" only: the coarse clock (a few ms of resolution)
 * costs a fraction of a precise read, which is most of a spawn on some virtual machines. */
static int64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void entry(void *arg)
{
    struct strand *s = arg;
    strand__entry_finish();
    strand_exit(s->fn(s->arg));
}

static void copy_name(struct strand *s, const char *name)
{
    if (!name)
        return;
    size_t i = 0;
    for (; i < STRAND__NAME_MAX - 1 && name[i]; i++)
        s->name[i] = name[i];
    s->name[i] = '\0';
}

/* A default-size strand gets a credit now and its stack when it first runs (the scheduler
 * binds it); a custom size is mapped now, so that its -ENOMEM is the spawn's. */
static int take_stack(struct strand *s, size_t size, strand__caches *c)
{
    strand__ctx_prepare(&s->ctx, entry, s);
    if (strand__stack_is_default(size)) {
        if (strand__stack_reserve(c ? &c->stacks : NULL) != 0)
            return -ENOMEM;
        s->reserved_stack = 1;
        return 0;
    }
    strand__stack *st = strand__stack_get(size, c ? &c->stacks : NULL);
    if (!st)
        return -ENOMEM;
    atomic_store_explicit(&st->owner, s, memory_order_relaxed); /* for the overflow report */
    s->stack = st;
    strand__ctx_place(&s->ctx, st->lo, strand__stack_usable(st));
#if defined(STRAND_TSAN)
    s->tsan_fiber = __tsan_create_fiber(0);
#endif
    return 0;
}

/* Undo take_stack (a spawn that failed later). */
static void give_back_stack(struct strand *s, strand__caches *c)
{
    if (s->reserved_stack) {
        strand__stack_unreserve(c ? &c->stacks : NULL);
        return;
    }
#if defined(STRAND_TSAN)
    __tsan_destroy_fiber(s->tsan_fiber);
#endif
    strand__stack_put(s->stack, c ? &c->stacks : NULL);
}

static int check_attr(const strand_attr *a)
{
    if (!a)
        return 0;
    if (a->priority < 0 || a->priority >= STRAND__PRIOS)
        return -EINVAL;
    if (a->stack_size && (a->stack_size < 16 * 1024 || a->stack_size > (1ull << 30)))
        return -EINVAL;
    if (a->worker < 0)
        return -EINVAL;
    return 0;
}

int64_t strand_spawn_attr(strand_fn fn, void *arg, const strand_attr *attr)
{
    if (!fn)
        return -EINVAL;
    int rc = check_attr(attr);
    if (rc)
        return rc;
    if ((rc = strand__runtime_ensure()) != 0)
        return rc;
    if (strand__sched_stopping() || strand__runtime_draining())
        return -ECANCELED;
    if (attr && attr->worker > strand__worker_count())
        return -EINVAL;
    strand__caches *c = strand__worker_caches();
    struct strand *s = strand__desc_get(c ? &c->descs : NULL);
    if (!s)
        return -ENOMEM;
    if ((rc = take_stack(s, attr ? attr->stack_size : 0, c)) != 0) {
        strand__desc_put(s, c ? &c->descs : NULL);
        return rc;
    }
    s->fn = fn;
    s->arg = arg;
    s->pinned = (int16_t)(attr && attr->worker ? attr->worker - 1 : -1);
    s->prio = (uint8_t)(attr ? attr->priority : STRAND_PRIO_NORMAL);
    s->detached_at_spawn = attr && attr->detached;
    s->registry_index = -1;
    if (attr)
        copy_name(s, attr->name);
    int64_t id = slot_alloc(s, c ? &c->slots : NULL);
    if (id < 0) {
        give_back_stack(s, c);
        strand__desc_put(s, c ? &c->descs : NULL);
        return id;
    }
    s->id = id;
    s->created_ns = coarse_now();
    strand__registry_add(s);
    strand__count_spawn();
    strand__sched_spawn(s);
    return id;
}

int64_t strand_spawn(strand_fn fn, void *arg)
{
    return strand_spawn_attr(fn, arg, NULL);
}

/* ---- exit */

void strand_exit(void *result)
{
    struct strand *s = strand__current();
    if (!s) {
        pthread_exit(result); /* a plain thread: as documented, behaves like pthread_exit */
    }
    strand__fate_exit(s); /* the exit reason to monitors, links, group (links.c) */
    strand__registry_remove(s);
    strand__arena_release(s);
    uint32_t n = (uint32_t)(s->id & ((1 << SLOT_BITS) - 1));
    slot *sl = slot_at(n);
    strand__spin_lock(&sl->lock);
    strand__waiter *j = sl->joiner;
    if (j && strand__waiter_claim(j)) {
        j->elem = result;
        j->status = 0;
        slot_free_unlock(sl, n);
    } else {
        j = NULL;
        if (sl->state == SLOT_DETACHED) {
            slot_free_unlock(sl, n);
        } else {
            sl->state = SLOT_ZOMBIE;
            sl->result = result;
            sl->s = NULL;
            strand__spin_unlock(&sl->lock);
        }
    }
    /* No send can reach s now: its slot no longer names it as live. Everything is
     * counted before the joiner wakes, so it sees the strand complete in strand_stats. */
    strand__mailbox_drain(s);
    atomic_store_explicit(&s->state, STRAND__DONE, memory_order_relaxed);
    strand__stat_add(STRAND__STAT_COMPLETED, 1);
    if (j)
        strand__waiter_wake(j);
    strand__sched_exit(s);
}

/* ---- join and detach */

/* How a joiner waits on a slot (wait.h). The slot outlives any change of hands (chunks
 * are never freed), and `joiner` names our waiter only while the wait is ours, so taking
 * it back needs no generation check. */
static int join_publish(void *obj, strand__waiter *w)
{
    ((slot *)obj)->joiner = w;
    return 0;
}

static void *join_unlink(void *obj, strand__waiter *w)
{
    slot *sl = obj;
    if (sl->joiner == w)
        sl->joiner = NULL;
    return NULL;
}

STRAND__LOCK_FIRST(slot);
static const strand__wait_ops join_ops = {
    strand__wait_spin_lock, strand__wait_spin_unlock, join_publish, join_unlink,
};

int strand_join_until(int64_t id, void **result, int64_t deadline)
{
    if (id <= 0)
        return -ESRCH;
    struct strand *me = strand__current();
    if (me && me->id == id)
        return -EDEADLK;
    slot *sl = slot_lock(id);
    if (!sl)
        return -ESRCH;
    if (sl->state == SLOT_ZOMBIE) {
        if (result)
            *result = sl->result;
        slot_free_unlock(sl, (uint32_t)(id & ((1 << SLOT_BITS) - 1)));
        return 0;
    }
    if (sl->state == SLOT_DETACHED || sl->joiner) {
        strand__spin_unlock(&sl->lock);
        return -EINVAL;
    }
    if (deadline == 0) {
        strand__spin_unlock(&sl->lock);
        return -EAGAIN;
    }
    strand__wait_reg r;
    r.w.elem = NULL;
    int rc = strand__wait(&r, &join_ops, sl, deadline, STRAND__WAIT_JOIN, id);
    if (rc < 0)
        return rc;
    if (result)
        *result = r.w.elem;
    return 0;
}

int strand_join(int64_t id, void **result)
{
    return strand_join_until(id, result, STRAND_FOREVER);
}

int strand_detach(int64_t id)
{
    slot *sl = slot_lock(id);
    if (!sl)
        return -ESRCH;
    if (sl->state == SLOT_ZOMBIE) {
        slot_free_unlock(sl, (uint32_t)(id & ((1 << SLOT_BITS) - 1)));
        return 0;
    }
    if (sl->state == SLOT_DETACHED || sl->joiner) {
        strand__spin_unlock(&sl->lock);
        return -EINVAL;
    }
    sl->state = SLOT_DETACHED;
    strand__spin_unlock(&sl->lock);
    return 0;
}

void strand__each_live(void (*fn)(struct strand *s, void *ctx), void *ctx)
{
    pthread_mutex_lock(&free_lock);
    uint32_t end = next_fresh;
    pthread_mutex_unlock(&free_lock);
    for (uint32_t n = 1; n < end; n++) {
        slot *sl = slot_at(n);
        if (sl == NULL)
            continue;
        strand__spin_lock(&sl->lock);
        if ((sl->state == SLOT_LIVE || sl->state == SLOT_DETACHED) && sl->s != NULL)
            fn(sl->s, ctx);
        strand__spin_unlock(&sl->lock);
    }
}

int strand__with_live(int64_t id, int (*fn)(struct strand *s, void *ctx), void *ctx)
{
    slot *sl = slot_lock(id);
    if (!sl)
        return -ESRCH;
    if (sl->state == SLOT_ZOMBIE) {
        strand__spin_unlock(&sl->lock);
        return -ESRCH;
    }
    int rc = fn(sl->s, ctx);
    strand__spin_unlock(&sl->lock);
    return rc;
}

/* ---- identity */

int64_t strand_self(void)
{
    struct strand *s = strand__current();
    return s ? s->id : 0;
}

const char *strand_name(void)
{
    struct strand *s = strand__current();
    return s ? s->name : "";
}
