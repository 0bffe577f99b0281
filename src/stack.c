/*
 * stack.c - strand stacks: carved from large mappings, guarded while the mapping budget
 * lasts, canaried past it, pooled for reuse, trimmed while pooled.
 *
 * Layout. A stack of the default size Z is one region of Z bytes inside a slab of
 * SLAB_STACKS regions. The control block (struct strand) sits at the top of its region,
 * the stack grows down from just below it, so a strand that never goes deep touches one
 * page: its top page. The kernel commits pages lazily (MAP_NORESERVE), so the rest costs
 * address space only.
 *   guarded slab:   [guard|stack .. cb][guard|stack .. cb]...   (guard = PROT_NONE page)
 *   canaried slab:  regions start (page - CANARY) bytes into the slab, so each region's
 *                   canary (its lowest CANARY bytes) shares a page with the control block
 *                   of the region below it: a canary costs no extra page.
 * Why both: a guard page splits a mapping, costing two of the kernel's vm.max_map_count
 * mappings (65,530 by default) per stack. Stacks are guarded while the guarded ones fit
 * in half of what the process may still map; past that, slabs are unguarded and each
 * stack's canary is checked at every switch out and on release (sched_switch.c). One
 * million live strands thus fit a stock kernel.
 *
 * Pool. A freed stack goes to the freeing worker's cache (no lock: it is the next one
 * that worker spawns on; the caller passes its cache, a strand__stack_cache the worker
 * carries, so this file knows nothing of workers); the cache spills half of itself to the
 * global pool (one mutex
 * acquisition per batch). Nothing on the release path makes a system call: a madvise in a
 * multi-threaded process shoots down the TLB of every other CPU, which under a spawn storm
 * costs more than the strands. Instead a worker with nothing to run sweeps the pool, at
 * most every 100 ms: stacks freed before the previous sweep hand back every page below the
 * control block's with madvise(MADV_DONTNEED) ("clean"), and those beyond pool_capacity are
 * dropped entirely and kept only as address space on the cold list, reused before any new
 * slab is mapped. A burst of frees with no idle moment sweeps from the release path once
 * the pool holds four times its capacity. Stacks of a non-default size get their own
 * mapping and are unmapped when freed.
 * Threads. Caches are per worker (owner only; each call is handed its caller's); the pool,
 * the cold list and the slab table are under `pool_lock`. strand__stack_find reads the slab
 * table without locks (from a signal handler): entries are published with a release store
 * of `nslabs`.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(STRAND_VALGRIND)
#include <valgrind/valgrind.h>
#endif
#if defined(STRAND_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#define SLAB_STACKS 64
#define MAX_SLABS   (1u << 17)
#define CANARY      64
#define CANARY_WORD 0x5354524e44435259ull /* "STRNDCRY" */
#define SWEEP_NS    100000000 /* 100 ms between sweeps of the pool */
#define CACHE_BATCH (STRAND__STACK_CACHE / 2) /* stacks moved between a worker cache and the pool */

typedef struct slab {
    uintptr_t base;   /* first region */
    size_t    stride; /* region size */
    uint32_t  count;  /* regions */
    uint8_t   guarded;
} slab;

static slab slabs[MAX_SLABS];
static atomic_uint nslabs;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* Pooled stacks, linked through cb->next: freed since the last sweep (young), freed
 * before it (old; both untouched, their pages still there), and trimmed (clean). */
typedef struct pool_list {
    struct strand *head;
    size_t count;
} pool_list;
static pool_list young, old, clean;
static atomic_bool have_dirty;    /* a lock-free peek: young or old may be non-empty */
static _Atomic int64_t last_sweep;

/* Pop the head of a pool list. Called under pool_lock. */
static struct strand *list_pop(pool_list *l)
{
    struct strand *s = l->head;
    if (s) {
        l->head = s->next;
        l->count--;
    }
    return s;
}

static void list_push(pool_list *l, struct strand *s)
{
    s->next = l->head;
    l->head = s;
    l->count++;
}

/* Stacks dropped entirely, kept as address space. An array, not a list: a link would
 * commit the page again; and the record keeps what the dropped (zeroed) control block
 * of a guarded stack no longer holds. */
typedef struct cold_stack {
    uintptr_t region;
    uint32_t  stride;
    uint8_t   guarded;
} cold_stack;
static cold_stack *cold;
static size_t cold_count, cold_cap;
static atomic_size_t page_size;
static long map_budget;           /* mappings we may spend on guards */
static long maps_spent;
static atomic_ulong bytes_held, n_guarded, n_canary;

static size_t page(void)
{
    /* relaxed: every thread computes the same value; the atomic only keeps it race-free */
    size_t p = atomic_load_explicit(&page_size, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page_size, p, memory_order_relaxed);
    }
    return p;
}

static long read_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

static long count_current_maps(void)
{
    long n = 0;
    int c;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 1024;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Half of what the process may still map goes to guard pages; the rest is left to the
 * program (malloc arenas, libraries, its own mappings). Called under pool_lock. */
static void budget_init(void)
{
    if (map_budget)
        return;
    long left = read_max_map_count() - count_current_maps();
    map_budget = left > 2 ? left / 2 : 1;
#if defined(STRAND_VALGRIND)
    /* Valgrind tracks every mapping in a fixed table (VG_N_SEGMENTS) and dies when it
     * overflows: under it, guard only the first few thousand stacks. */
    if (RUNNING_ON_VALGRIND && map_budget > 2048)
        map_budget = 2048;
#endif
}

static uintptr_t region_cb(uintptr_t region, size_t stride)
{
    uintptr_t top = region + stride - sizeof(struct strand);
    return top & ~(uintptr_t)(STRAND__CACHELINE - 1);
}

static struct strand *cb_of(const slab *sl, uint32_t i)
{
    return (struct strand *)region_cb(sl->base + (uintptr_t)i * sl->stride, sl->stride);
}

static void write_canary(uintptr_t region)
{
    uint64_t *w = (uint64_t *)region;
    for (size_t i = 0; i < CANARY / sizeof(uint64_t); i++)
        w[i] = CANARY_WORD ^ (region + i);
}

static void cb_setup(struct strand *s, uintptr_t region, size_t stride, bool guarded)
{
    uintptr_t lo = region + (guarded ? page() : CANARY);
    memset(s, 0, sizeof *s);
    s->stack_lo = (void *)lo;
    s->stack_size = stride;
    s->guarded = guarded;
}

static uintptr_t cb_region(const struct strand *s)
{
    return (uintptr_t)s->stack_lo - (s->guarded ? page() : CANARY);
}

static int slab_register(uintptr_t base, size_t stride, uint32_t count, bool guarded)
{
    unsigned n = atomic_load_explicit(&nslabs, memory_order_relaxed);
    if (n >= MAX_SLABS)
        return -ENOMEM;
    slabs[n] = (slab){base, stride, count, guarded};
    /* release: a signal handler that sees the new count sees the entry */
    atomic_store_explicit(&nslabs, n + 1, memory_order_release);
    return 0;
}

/* Map a slab of default-size stacks and put all but the first on the warm pool.
 * Called under pool_lock. */
static struct strand *slab_new(size_t stride)
{
    budget_init();
    bool guarded = maps_spent + 2 * SLAB_STACKS + 1 <= map_budget;
    size_t off = guarded ? 0 : page() - CANARY;
    size_t len = (size_t)SLAB_STACKS * stride + (guarded ? 0 : page());
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t base = (uintptr_t)m + off;
    if (guarded) {
        for (uint32_t i = 0; i < SLAB_STACKS; i++)
            if (mprotect((void *)(base + i * stride), page(), PROT_NONE) != 0) {
                munmap(m, len);
                return NULL;
            }
        maps_spent += 2 * SLAB_STACKS;
    } else {
        maps_spent += 1;
    }
    if (slab_register(base, stride, SLAB_STACKS, guarded) != 0) {
        munmap(m, len);
        return NULL;
    }
    atomic_fetch_add_explicit(&bytes_held, len, memory_order_relaxed);
    atomic_fetch_add_explicit(guarded ? &n_guarded : &n_canary, SLAB_STACKS, memory_order_relaxed);
    const slab *sl = &slabs[atomic_load_explicit(&nslabs, memory_order_relaxed) - 1];
    for (uint32_t i = SLAB_STACKS; i-- > 1;) {
        struct strand *s = cb_of(sl, i);
        uintptr_t region = sl->base + (uintptr_t)i * stride;
        cb_setup(s, region, stride, guarded);
        if (!guarded)
            write_canary(region);
        list_push(&clean, s);
    }
    struct strand *s = cb_of(sl, 0);
    cb_setup(s, sl->base, stride, guarded);
    if (!guarded)
        write_canary(sl->base);
    return s;
}

static void unpoison(struct strand *s)
{
#if defined(STRAND_ASAN)
    /* A strand that ended was switched away from, so its frames never returned and left
     * their redzones poisoned; the next strand on this stack starts clean. */
    ASAN_UNPOISON_MEMORY_REGION(s->stack_lo, (uintptr_t)s - (uintptr_t)s->stack_lo);
#else
    (void)s;
#endif
}

static void vg_register(struct strand *s)
{
#if defined(STRAND_VALGRIND)
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->stack_lo, (char *)s);
#else
    (void)s;
#endif
}

static void vg_deregister(struct strand *s)
{
#if defined(STRAND_VALGRIND)
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#else
    (void)s;
#endif
}

/* Reset a pooled control block for a new strand (keeps the stack fields). */
static struct strand *reuse(struct strand *s)
{
    void *lo = s->stack_lo;
    size_t size = s->stack_size;
    uint8_t guarded = s->guarded;
    memset(s, 0, sizeof *s);
    s->stack_lo = lo;
    s->stack_size = size;
    s->guarded = guarded;
    unpoison(s);
    vg_register(s);
    return s;
}

/* One pooled stack (the most recently freed first: its pages are still there), or a new
 * slab. Called under pool_lock. */
static struct strand *pool_take_locked(size_t stride)
{
    struct strand *s;
    if ((s = list_pop(&young)) || (s = list_pop(&old)) || (s = list_pop(&clean)))
        return s;
    if (cold_count) {
        cold_stack c = cold[--cold_count];
        s = (struct strand *)region_cb(c.region, c.stride);
        cb_setup(s, c.region, c.stride, c.guarded);
        return s;
    }
    return slab_new(stride);
}

/* Refill an empty worker cache with up to CACHE_BATCH stacks under one lock, and return
 * one more for the caller (c may be NULL: a plain thread gets just the one). */
static struct strand *pool_take(strand__stack_cache *c, size_t stride)
{
    pthread_mutex_lock(&pool_lock);
    struct strand *s = pool_take_locked(stride);
    for (int i = 0; c && s && i < CACHE_BATCH && (young.head || old.head || clean.head); i++)
        c->v[c->n++] = pool_take_locked(stride);
    pthread_mutex_unlock(&pool_lock);
    return s;
}

/* Give back every page below the top one (the control block's); with `all`, the top page
 * too where it holds nothing else (a canaried top page also holds a neighbour's canary). */
static void trim(struct strand *s, bool all)
{
    uintptr_t lo = ((uintptr_t)s->stack_lo + page() - 1) & ~(uintptr_t)(page() - 1);
    uintptr_t top_page = (uintptr_t)s & ~(uintptr_t)(page() - 1);
    if (top_page > lo)
        madvise((void *)lo, top_page - lo, MADV_DONTNEED);
    if (all && s->guarded)
        madvise((void *)top_page, page(), MADV_DONTNEED);
}

static bool cold_push_locked(cold_stack rec)
{
    if (cold_count == cold_cap) {
        size_t cap = cold_cap ? cold_cap * 2 : 1024;
        cold_stack *c = realloc(cold, cap * sizeof *c);
        if (!c)
            return false;
        cold = c;
        cold_cap = cap;
    }
    cold[cold_count++] = rec;
    return true;
}

static void sweep(void);
static void sweep_if_due(int64_t interval);

/* Freed stacks are pooled as they are: no system call on the release path (each madvise
 * of a multi-threaded process also costs a TLB shoot-down on every other CPU). */
static void pool_give_batch(struct strand **v, int n)
{
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < n; i++)
        list_push(&young, v[i]);
    bool flood = young.count + old.count > 4 * strand__cfg.pool_capacity + 4 * CACHE_BATCH;
    pthread_mutex_unlock(&pool_lock);
    atomic_store_explicit(&have_dirty, true, memory_order_relaxed);
    if (flood) /* a burst of exits and no idle moment: don't wait for one, but sweep at
                * most once a second (each sweep's madvise calls interrupt every CPU) */
        sweep_if_due(1000000000);
}

static void pool_give(struct strand *s)
{
    pool_give_batch(&s, 1);
}

/* Trim the stacks that stayed in the pool since the previous sweep ("old"), drop those
 * beyond pool_capacity, and age the recent ones. */
static void sweep(void)
{
    pthread_mutex_lock(&pool_lock);
    pool_list aged = old;
    old = young;
    young = (pool_list){0};
    size_t room = strand__cfg.pool_capacity > clean.count + old.count
                      ? strand__cfg.pool_capacity - clean.count - old.count
                      : 0;
    if (!old.head)
        atomic_store_explicit(&have_dirty, false, memory_order_relaxed);
    pthread_mutex_unlock(&pool_lock);
    while (aged.head) {
        struct strand *s = aged.head;
        aged.head = s->next;
        bool keep = room > 0;
        room -= keep;
        /* Trim before publishing: a stack on a list may be handed out at once. The cold
         * record is taken first: dropping zeroes a guarded stack's control block. */
        cold_stack rec = {cb_region(s), (uint32_t)s->stack_size, s->guarded};
        trim(s, !keep);
        pthread_mutex_lock(&pool_lock);
        if (!keep && !cold_push_locked(rec)) {
            s = (struct strand *)region_cb(rec.region, rec.stride);
            cb_setup(s, rec.region, rec.stride, rec.guarded); /* no room for the record */
            keep = true;
        }
        if (keep)
            list_push(&clean, s);
        pthread_mutex_unlock(&pool_lock);
    }
}

/* Called by a worker with nothing to run; sweeps at most every SWEEP_NS. */
void strand__stack_trim_idle(void)
{
    /* relaxed: a stack missed here is swept at a later idle moment */
    if (atomic_load_explicit(&have_dirty, memory_order_relaxed))
        sweep_if_due(SWEEP_NS);
}

static void sweep_if_due(int64_t interval)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t last = atomic_load_explicit(&last_sweep, memory_order_relaxed);
    if (now - last < interval ||
        !atomic_compare_exchange_strong_explicit(&last_sweep, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    sweep();
}

/* ---- stacks of a non-default size: a mapping each */

static struct strand *single_new(size_t size)
{
    pthread_mutex_lock(&pool_lock);
    budget_init();
    bool guarded = maps_spent + 2 <= map_budget;
    if (guarded)
        maps_spent += 2;
    pthread_mutex_unlock(&pool_lock);
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t base = (uintptr_t)m;
    if (guarded && mprotect(m, page(), PROT_NONE) != 0) {
        munmap(m, size);
        return NULL;
    }
    if (!guarded)
        write_canary(base);
    struct strand *s = (struct strand *)region_cb(base, size);
    cb_setup(s, base, size, guarded);
    atomic_fetch_add_explicit(&bytes_held, size, memory_order_relaxed);
    atomic_fetch_add_explicit(guarded ? &n_guarded : &n_canary, 1, memory_order_relaxed);
    if (guarded) {
        pthread_mutex_lock(&pool_lock);
        if (slab_register(base, size, 1, true) != 0)
            guarded = false; /* still guarded by the kernel; only the report is lost */
        pthread_mutex_unlock(&pool_lock);
    }
    return s;
}

/* Forget the slab entry of an unmapped single stack (it can't be reused by index, so it
 * is turned into an empty one that matches nothing). */
static void single_forget(uintptr_t base)
{
    unsigned n = atomic_load_explicit(&nslabs, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (slabs[i].base == base && slabs[i].count == 1)
            slabs[i].count = 0;
}

static void single_free(struct strand *s)
{
    uintptr_t base = cb_region(s);
    size_t size = s->stack_size;
    bool guarded = s->guarded;
    pthread_mutex_lock(&pool_lock);
    if (guarded) {
        single_forget(base);
        maps_spent -= 2;
    }
    pthread_mutex_unlock(&pool_lock);
    atomic_fetch_sub_explicit(&bytes_held, size, memory_order_relaxed);
    atomic_fetch_sub_explicit(guarded ? &n_guarded : &n_canary, 1, memory_order_relaxed);
    munmap((void *)base, size);
}

/* ---- the interface */

static size_t round_size(size_t size)
{
    return (size + page() - 1) & ~(page() - 1);
}

struct strand *strand__stack_get(size_t size, strand__stack_cache *c)
{
    size_t def = round_size(strand__cfg.stack_size);
    size = round_size(size ? size : def);
    struct strand *s;
    if (size != def) {
        s = single_new(size);
        return s ? reuse(s) : NULL;
    }
    s = c && c->n ? c->v[--c->n] : NULL;
    if (!s)
        s = pool_take(c, size);
    return s ? reuse(s) : NULL;
}

void strand__stack_put(struct strand *s, strand__stack_cache *c)
{
    vg_deregister(s);
    if (s->stack_size != round_size(strand__cfg.stack_size)) {
        single_free(s);
        return;
    }
    if (!c) {
        pool_give(s);
        return;
    }
    if (c->n == STRAND__STACK_CACHE) {
        /* Full: hand the older half of the cache to the pool in one lock, then keep s. */
        pool_give_batch(c->v, CACHE_BATCH);
        memmove(c->v, c->v + CACHE_BATCH, (size_t)(c->n - CACHE_BATCH) * sizeof *c->v);
        c->n -= CACHE_BATCH;
    }
    c->v[c->n++] = s;
}

struct strand *strand__stack_alloc(size_t size)
{
    return strand__stack_get(size, NULL);
}

void strand__stack_free(struct strand *s)
{
    strand__stack_put(s, NULL);
}

/* A worker going away: its whole cache back to the pool, in one lock. */
void strand__stack_cache_drain(strand__stack_cache *c)
{
    if (c->n)
        pool_give_batch(c->v, c->n);
    c->n = 0;
}

const void *strand__stack_canary(const struct strand *s)
{
    return (const void *)cb_region(s);
}

bool strand__stack_check(const struct strand *s)
{
    if (s->guarded)
        return true;
    uintptr_t region = cb_region(s);
    const uint64_t *w = (const uint64_t *)region;
    for (size_t i = 0; i < CANARY / sizeof(uint64_t); i++)
        if (w[i] != (CANARY_WORD ^ (region + i)))
            return false;
    return true;
}

struct strand *strand__stack_find(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    unsigned n = atomic_load_explicit(&nslabs, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        const slab *sl = &slabs[i];
        if (!sl->count || a < sl->base || a >= sl->base + sl->count * sl->stride)
            continue;
        uint32_t k = (uint32_t)((a - sl->base) / sl->stride);
        uintptr_t region = sl->base + (uintptr_t)k * sl->stride;
        /* a fault in the guard page, or in the lowest page of a canaried stack */
        if (a < region + page())
            return cb_of(sl, k);
        return NULL;
    }
    return NULL;
}

void strand__stack_stats(uint64_t *bytes, uint64_t *guarded, uint64_t *canary)
{
    *bytes = atomic_load_explicit(&bytes_held, memory_order_relaxed);
    *guarded = atomic_load_explicit(&n_guarded, memory_order_relaxed);
    *canary = atomic_load_explicit(&n_canary, memory_order_relaxed);
}
