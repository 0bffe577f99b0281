/*
 * stack.c - strand stacks: carved from large mappings, guarded (by guard regions where the
 * kernel has them, else by guard pages while the mapping budget lasts, then canaries),
 * handed out through per-worker LIFO caches and a global pool, trimmed while pooled.
 *
 * A stack is bound to a strand when the strand first runs and returned the moment it exits
 * (sched_switch.c does both); a strand's descriptor lives elsewhere (desc.c). Each stack has
 * a small record (strand__stack, internal.h) at the top of its usable memory, so a strand
 * that never goes deep touches one stack page, which also holds its first frames.
 *
 * Layout. A stack of the default size Z is one region inside a slab of SLAB_STACKS regions.
 *   guard regions:  [guard G|stack .. rec][guard G|stack .. rec]...   region = G + Z, the
 *                   guard made of MADV_GUARD_INSTALL markers: no extra mapping (one per
 *                   slab), no memory, so every stack is guarded, G = 64 KiB wide.
 *   guard pages:    [page|stack .. rec][page|stack .. rec]...   region = Z, a PROT_NONE
 *                   page each, costing two of vm.max_map_count's mappings per stack: used
 *                   while the guarded stacks fit in half of what the process may still map.
 *   canaried slab:  past that budget; regions start (page - CANARY) bytes into the slab, so
 *                   each region's canary (its lowest CANARY bytes) shares a page with the
 *                   record of the region below it: a canary costs no extra page. It is
 *                   checked at every switch out and on release (sched_switch.c).
 * The mode is chosen once, at the first stack: guard regions when the kernel accepts
 * MADV_GUARD_INSTALL (Linux 6.13 and later) and STRAND_GUARD_FALLBACK is not set; else the
 * guard pages and canaries. The kernel commits pages lazily (MAP_NORESERVE).
 *
 * Credits. Binding at first run must not fail, so a spawn of a default-size strand first
 * reserves a credit: `spare` counts the mapped default stacks that are neither bound nor
 * promised. A worker takes CREDIT_BATCH credits at a time into its cache and a freed stack's
 * credit goes back to the freeing worker's cache, so steady spawning and exiting never
 * touches `spare`. When `spare` runs out a slab is mapped (its stacks join the pool, its
 * credits `spare`); if that mapping fails, the spawn returns -ENOMEM and every strand
 * already spawned still has a stack waiting somewhere. Invariant: mapped default stacks =
 * bound + spare + credits held in caches + credits held by spawned strands not yet run.
 * Free physical stacks may sit in another worker's cache: binding then maps one more slab;
 * only if that fails too (`starved`) do freed stacks skip the caches and idle workers drain
 * theirs, until the binding worker finds one (it requeues the strand meanwhile).
 *
 * Pool. A freed stack goes to the freeing worker's cache (LIFO: the warmest is reused first;
 * no lock); a full cache spills half of itself to the global pool (one mutex acquisition per
 * batch). Nothing on the release path makes a system call: a madvise in a multi-threaded
 * process shoots down the TLB of every other CPU. Instead a worker with nothing to run
 * sweeps the pool, at most every 100 ms: stacks freed before the previous sweep hand back
 * every page below their record's (MADV_DONTNEED, which keeps guard markers) ("clean"), and
 * those beyond pool_capacity are dropped entirely and kept only as address space on the cold
 * list, reused before any new slab is mapped. A burst of frees with no idle moment sweeps
 * from the release path once the pool holds four times its capacity. Stacks of a non-default
 * size get their own mapping (guarded the same way) and are unmapped when freed.
 *
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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(STRAND_VALGRIND)
#include <valgrind/valgrind.h>
#endif
#if defined(STRAND_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#define PIDFD_SELF_ (-10000)   /* process_madvise on ourselves without a pidfd (Linux 6.15) */

#define SLAB_STACKS 64
#define MAX_SLABS   (1u << 17)
#define CANARY      64
#define CANARY_WORD 0x5354524e44435259ull /* "STRNDCRY" */
#define SWEEP_NS    100000000 /* 100 ms between sweeps of the pool */
#define CACHE_BATCH (STRAND__STACK_CACHE / 2) /* stacks moved between a worker cache and the pool */
#define CREDIT_BATCH 32
#define GUARD_BYTES STRAND__GUARD_REGION_BYTES

typedef struct slab {
    uintptr_t base;   /* first region */
    size_t    stride; /* region size */
    uint32_t  count;  /* regions */
    uint8_t   guard;  /* enum strand__guard */
} slab;

static slab slabs[MAX_SLABS];
static atomic_uint nslabs;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* Pooled stacks, linked through st->next: freed since the last sweep (young), freed
 * before it (old; both untouched, their pages still there), and trimmed (clean). */
typedef struct pool_list {
    strand__stack *head;
    size_t count;
} pool_list;
static pool_list young, old, clean;
static atomic_bool have_dirty;    /* a lock-free peek: young or old may be non-empty */
static _Atomic int64_t last_sweep;
static atomic_long spare;         /* credits: see "Credits" above */
static atomic_bool starved;       /* a binding found no stack and could map none */

/* Pop the head of a pool list. Called under pool_lock. */
static strand__stack *list_pop(pool_list *l)
{
    strand__stack *s = l->head;
    if (s) {
        l->head = s->next;
        l->count--;
    }
    return s;
}

static void list_push(pool_list *l, strand__stack *s)
{
    s->next = l->head;
    l->head = s;
    l->count++;
}

/* Stacks dropped entirely, kept as address space. An array, not a list: a link would
 * commit the page again; and the record keeps what the dropped (zeroed) stack record of a
 * guarded stack no longer holds. */
typedef struct cold_stack {
    uintptr_t region;
    uint32_t  stride;
    uint8_t   guard;
} cold_stack;
static cold_stack *cold;
static size_t cold_count, cold_cap;
static atomic_size_t page_size;
static long map_budget;           /* mappings we may spend on guard pages */
static long maps_spent;
static atomic_int guard_mode = -1; /* enum strand__guard of new stacks; -1 = not decided */
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

/* Does this kernel install guard regions? Tried on a scratch mapping. */
static bool have_guard_regions(void)
{
    size_t p = page();
    void *m = mmap(NULL, 2 * p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    bool ok = madvise(m, p, MADV_GUARD_INSTALL) == 0;
    munmap(m, 2 * p);
    return ok;
}

/* The guard mode, and for the fallback half of what the process may still map goes to guard
 * pages; the rest is left to the program (malloc arenas, libraries, its own mappings).
 * Called under pool_lock. */
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
    int mode = !strand__cfg.guard_fallback && have_guard_regions() ? STRAND__GUARD_REGION
                                                                   : STRAND__GUARD_PAGE;
    atomic_store_explicit(&guard_mode, mode, memory_order_relaxed);
}

int strand__stack_guard_mode(void)
{
    int m = atomic_load_explicit(&guard_mode, memory_order_relaxed);
    if (m < 0) {
        pthread_mutex_lock(&pool_lock);
        budget_init();
        pthread_mutex_unlock(&pool_lock);
        m = atomic_load_explicit(&guard_mode, memory_order_relaxed);
    }
    return m;
}

static size_t guard_bytes(int guard)
{
    return guard == STRAND__GUARD_REGION ? GUARD_BYTES
           : guard == STRAND__GUARD_PAGE ? page()
                                         : CANARY;
}

static uintptr_t region_rec(uintptr_t region, size_t stride)
{
    uintptr_t top = region + stride - sizeof(strand__stack);
    return top & ~(uintptr_t)(STRAND__CACHELINE - 1);
}

static strand__stack *rec_of(const slab *sl, uint32_t i)
{
    return (strand__stack *)region_rec(sl->base + (uintptr_t)i * sl->stride, sl->stride);
}

static void write_canary(uintptr_t region)
{
    uint64_t *w = (uint64_t *)region;
    for (size_t i = 0; i < CANARY / sizeof(uint64_t); i++)
        w[i] = CANARY_WORD ^ (region + i);
}

static strand__stack *rec_setup(uintptr_t region, size_t stride, int guard, bool single)
{
    strand__stack *st = (strand__stack *)region_rec(region, stride);
    memset(st, 0, sizeof *st);
    st->lo = (void *)(region + guard_bytes(guard));
    st->size = guard == STRAND__GUARD_REGION ? stride - GUARD_BYTES : stride;
    st->guard = (uint8_t)guard;
    st->single = single;
    return st;
}

static uintptr_t st_region(const strand__stack *st)
{
    return (uintptr_t)st->lo - guard_bytes(st->guard);
}

static size_t st_stride(const strand__stack *st)
{
    return st->guard == STRAND__GUARD_REGION ? st->size + GUARD_BYTES : st->size;
}

static int slab_register(uintptr_t base, size_t stride, uint32_t count, int guard)
{
    unsigned n = atomic_load_explicit(&nslabs, memory_order_relaxed);
    if (n >= MAX_SLABS)
        return -ENOMEM;
    slabs[n] = (slab){base, stride, count, (uint8_t)guard};
    /* release: a signal handler that sees the new count sees the entry */
    atomic_store_explicit(&nslabs, n + 1, memory_order_release);
    return 0;
}

/* Guard markers at the bottom of `count` regions: one process_madvise where the kernel
 * takes a vector for ourselves, else one madvise each. */
static int install_guards(uintptr_t base, size_t stride, uint32_t count)
{
    struct iovec iov[SLAB_STACKS];
    if (count <= SLAB_STACKS) {
        for (uint32_t i = 0; i < count; i++)
            iov[i] = (struct iovec){(void *)(base + i * stride), GUARD_BYTES};
        long r = syscall(SYS_process_madvise, PIDFD_SELF_, iov, (size_t)count,
                         MADV_GUARD_INSTALL, 0u);
        if (r == (long)(count * GUARD_BYTES))
            return 0;
    }
    for (uint32_t i = 0; i < count; i++)
        if (madvise((void *)(base + i * stride), GUARD_BYTES, MADV_GUARD_INSTALL) != 0)
            return -1;
    return 0;
}

/* Slabs whose stacks have not all been handed out yet: never touched, so they are handed
 * out from here rather than linked on a list (a link would touch every stack's page). */
typedef struct fresh_run {
    uintptr_t base;
    uint32_t  stride;
    uint32_t  left;   /* regions not handed out, at the top of the slab */
    uint8_t   guard;
} fresh_run;
static fresh_run *fresh;
static size_t nfresh, fresh_cap;

static bool fresh_push_locked(fresh_run r)
{
    if (nfresh == fresh_cap) {
        size_t cap = fresh_cap ? fresh_cap * 2 : 16;
        fresh_run *f = realloc(fresh, cap * sizeof *f);
        if (!f)
            return false;
        fresh = f;
        fresh_cap = cap;
    }
    fresh[nfresh++] = r;
    return true;
}

static strand__stack *fresh_take_locked(void)
{
    if (!nfresh)
        return NULL;
    fresh_run *r = &fresh[nfresh - 1];
    uintptr_t region = r->base + (uintptr_t)(SLAB_STACKS - r->left) * r->stride;
    int guard = r->guard;
    size_t stride = r->stride;
    if (--r->left == 0)
        nfresh--;
    if (guard == STRAND__GUARD_CANARY)
        write_canary(region);
    return rec_setup(region, stride, guard, false);
}

/* Map a slab of default-size stacks, make them available (a fresh run) and put their
 * credits in `spare`. Called under pool_lock. */
static bool slab_new(void)
{
    budget_init();
    size_t z = strand__cfg.stack_size;
    int guard = atomic_load_explicit(&guard_mode, memory_order_relaxed);
    if (guard == STRAND__GUARD_PAGE && maps_spent + 2 * SLAB_STACKS + 1 > map_budget)
        guard = STRAND__GUARD_CANARY;
    size_t stride = guard == STRAND__GUARD_REGION ? z + GUARD_BYTES : z;
    size_t off = guard == STRAND__GUARD_CANARY ? page() - CANARY : 0;
    size_t len = (size_t)SLAB_STACKS * stride + (guard == STRAND__GUARD_CANARY ? page() : 0);
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return false;
    uintptr_t base = (uintptr_t)m + off;
    if (guard == STRAND__GUARD_REGION && install_guards(base, stride, SLAB_STACKS) != 0) {
        munmap(m, len);
        return false;
    }
    if (guard == STRAND__GUARD_PAGE) {
        for (uint32_t i = 0; i < SLAB_STACKS; i++)
            if (mprotect((void *)(base + i * stride), page(), PROT_NONE) != 0) {
                munmap(m, len);
                return false;
            }
    }
    maps_spent += guard == STRAND__GUARD_PAGE ? 2 * SLAB_STACKS : 1;
    if (slab_register(base, stride, SLAB_STACKS, guard) != 0) {
        munmap(m, len);
        return false;
    }
    atomic_fetch_add_explicit(&bytes_held, len, memory_order_relaxed);
    atomic_fetch_add_explicit(guard != STRAND__GUARD_CANARY ? &n_guarded : &n_canary, SLAB_STACKS,
                              memory_order_relaxed);
    /* Its stacks are handed out from the run, lowest first, and written (record, canary)
     * only then: mapping a slab touches none of its pages. */
    if (!fresh_push_locked((fresh_run){base, (uint32_t)stride, SLAB_STACKS, (uint8_t)guard})) {
        for (uint32_t i = SLAB_STACKS; i-- > 0;) { /* no room for the run: write them now */
            uintptr_t region = base + (uintptr_t)i * stride;
            if (guard == STRAND__GUARD_CANARY)
                write_canary(region);
            list_push(&clean, rec_setup(region, stride, guard, false));
        }
    }
    /* relaxed: a count only; the stacks themselves change hands under pool_lock */
    atomic_fetch_add_explicit(&spare, SLAB_STACKS, memory_order_relaxed);
    return true;
}

static void unpoison(strand__stack *st)
{
#if defined(STRAND_ASAN)
    /* A strand that ended was switched away from, so its frames never returned and left
     * their redzones poisoned; the next strand on this stack starts clean. */
    ASAN_UNPOISON_MEMORY_REGION(st->lo, strand__stack_usable(st));
#else
    (void)st;
#endif
}

static void vg_register(strand__stack *st)
{
#if defined(STRAND_VALGRIND)
    st->valgrind_id = VALGRIND_STACK_REGISTER(st->lo, (char *)st);
#else
    (void)st;
#endif
}

static void vg_deregister(strand__stack *st)
{
#if defined(STRAND_VALGRIND)
    VALGRIND_STACK_DEREGISTER(st->valgrind_id);
#else
    (void)st;
#endif
}

/* A stack handed to a new owner: fresh sanitizer state. */
static strand__stack *reuse(strand__stack *st)
{
    st->next = NULL;
    atomic_store_explicit(&st->owner, NULL, memory_order_relaxed);
    unpoison(st);
    vg_register(st);
    return st;
}

/* One pooled stack (the most recently freed first: its pages are still there), or a new
 * slab. Called under pool_lock. */
static strand__stack *pool_take_locked(void)
{
    strand__stack *s;
    for (int tries = 0; tries < 2; tries++) {
        if ((s = list_pop(&young)) || (s = list_pop(&old)) || (s = list_pop(&clean)) ||
            (s = fresh_take_locked()))
            return s;
        if (cold_count) {
            cold_stack c = cold[--cold_count];
            return rec_setup(c.region, c.stride, c.guard, false);
        }
        if (!slab_new())
            return NULL;
    }
    return NULL;
}

/* Refill an empty worker cache with up to CACHE_BATCH stacks under one lock, and return
 * one more for the caller (c may be NULL: a plain thread gets just the one). */
static strand__stack *pool_take(strand__stack_cache *c)
{
    pthread_mutex_lock(&pool_lock);
    strand__stack *s = pool_take_locked();
    for (int i = 0; c && s && i < CACHE_BATCH && (young.head || old.head || clean.head || nfresh);
         i++)
        c->v[c->n++] = pool_take_locked();
    pthread_mutex_unlock(&pool_lock);
    return s;
}

/* Give back every page below the top one (the record's); with `all`, the top page too
 * where it holds nothing else (a canaried top page also holds a neighbour's canary). */
static void trim(strand__stack *s, bool all)
{
    uintptr_t lo = ((uintptr_t)s->lo + page() - 1) & ~(uintptr_t)(page() - 1);
    uintptr_t top_page = (uintptr_t)s & ~(uintptr_t)(page() - 1);
    if (top_page > lo)
        madvise((void *)lo, top_page - lo, MADV_DONTNEED);
    if (all && s->guard != STRAND__GUARD_CANARY)
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
static void pool_give_batch(strand__stack **v, int n)
{
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < n; i++)
        list_push(&young, v[i]);
    bool flood = young.count + old.count > 4 * strand__cfg.pool_capacity + 4 * CACHE_BATCH;
    pthread_mutex_unlock(&pool_lock);
    atomic_store_explicit(&have_dirty, true, memory_order_relaxed);
    if (n)
        atomic_store_explicit(&starved, false, memory_order_relaxed);
    if (flood) /* a burst of exits and no idle moment: don't wait for one, but sweep at
                * most once a second (each sweep's madvise calls interrupt every CPU) */
        sweep_if_due(1000000000);
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
        strand__stack *s = aged.head;
        aged.head = s->next;
        bool keep = room > 0;
        room -= keep;
        /* Trim before publishing: a stack on a list may be handed out at once. The cold
         * record is taken first: dropping zeroes a guarded stack's record. */
        cold_stack rec = {st_region(s), (uint32_t)st_stride(s), s->guard};
        trim(s, !keep);
        pthread_mutex_lock(&pool_lock);
        if (!keep && !cold_push_locked(rec)) {
            s = rec_setup(rec.region, rec.stride, rec.guard, false); /* no room for the record */
            keep = true;
        }
        if (keep)
            list_push(&clean, s);
        pthread_mutex_unlock(&pool_lock);
    }
}

/* Called by a worker with nothing to run (c: its cache); sweeps at most every SWEEP_NS. */
void strand__stack_trim_idle(strand__stack_cache *c)
{
    /* relaxed: a binding elsewhere is starved; its retry sees this batch at the latest
     * after the lock of pool_give_batch */
    if (c && c->n && atomic_load_explicit(&starved, memory_order_relaxed))
        strand__stack_cache_drain(c);
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

static strand__stack *single_new(size_t size)
{
    pthread_mutex_lock(&pool_lock);
    budget_init();
    int guard = atomic_load_explicit(&guard_mode, memory_order_relaxed);
    if (guard == STRAND__GUARD_PAGE) {
        if (maps_spent + 2 <= map_budget)
            maps_spent += 2;
        else
            guard = STRAND__GUARD_CANARY;
    }
    pthread_mutex_unlock(&pool_lock);
    size_t len = guard == STRAND__GUARD_REGION ? size + GUARD_BYTES : size;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED)
        goto fail;
    uintptr_t base = (uintptr_t)m;
    if ((guard == STRAND__GUARD_PAGE && mprotect(m, page(), PROT_NONE) != 0) ||
        (guard == STRAND__GUARD_REGION && madvise(m, GUARD_BYTES, MADV_GUARD_INSTALL) != 0)) {
        munmap(m, len);
        goto fail;
    }
    if (guard == STRAND__GUARD_CANARY)
        write_canary(base);
    strand__stack *s = rec_setup(base, len, guard, true);
    atomic_fetch_add_explicit(&bytes_held, len, memory_order_relaxed);
    atomic_fetch_add_explicit(guard != STRAND__GUARD_CANARY ? &n_guarded : &n_canary, 1,
                              memory_order_relaxed);
    if (guard != STRAND__GUARD_CANARY) {
        pthread_mutex_lock(&pool_lock);
        (void)slab_register(base, len, 1, guard); /* full: still guarded, only the report is lost */
        pthread_mutex_unlock(&pool_lock);
    }
    return s;
fail:
    if (guard == STRAND__GUARD_PAGE) {
        pthread_mutex_lock(&pool_lock);
        maps_spent -= 2;
        pthread_mutex_unlock(&pool_lock);
    }
    return NULL;
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

static void single_free(strand__stack *s)
{
    uintptr_t base = st_region(s);
    size_t len = st_stride(s);
    int guard = s->guard;
    pthread_mutex_lock(&pool_lock);
    if (guard != STRAND__GUARD_CANARY)
        single_forget(base);
    if (guard == STRAND__GUARD_PAGE)
        maps_spent -= 2;
    pthread_mutex_unlock(&pool_lock);
    atomic_fetch_sub_explicit(&bytes_held, len, memory_order_relaxed);
    atomic_fetch_sub_explicit(guard != STRAND__GUARD_CANARY ? &n_guarded : &n_canary, 1,
                              memory_order_relaxed);
    munmap((void *)base, len);
}

/* ---- credits */

int strand__stack_reserve(strand__stack_cache *c)
{
    if (c && c->credits > 0) {
        c->credits--;
        return 0;
    }
    long want = c ? CREDIT_BATCH : 1;
    for (;;) {
        /* relaxed: credits are a count; no memory is handed over with them */
        long v = atomic_load_explicit(&spare, memory_order_relaxed);
        while (v > 0) {
            long take = v < want ? v : want;
            if (atomic_compare_exchange_weak_explicit(&spare, &v, v - take, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                if (c)
                    c->credits += (int)take - 1;
                return 0;
            }
        }
        pthread_mutex_lock(&pool_lock);
        bool ok = atomic_load_explicit(&spare, memory_order_relaxed) > 0 || slab_new();
        pthread_mutex_unlock(&pool_lock);
        if (!ok)
            return -ENOMEM;
    }
}

void strand__stack_unreserve(strand__stack_cache *c)
{
    if (c && c->credits < 2 * CREDIT_BATCH) {
        c->credits++;
        return;
    }
    long back = 1;
    if (c) { /* keep half, give the rest back */
        back += c->credits - CREDIT_BATCH;
        c->credits = CREDIT_BATCH;
    }
    atomic_fetch_add_explicit(&spare, back, memory_order_relaxed);
}

/* ---- the interface */

static size_t round_size(size_t size)
{
    return (size + page() - 1) & ~(page() - 1);
}

static bool is_default(size_t size)
{
    return !size || round_size(size) == strand__cfg.stack_size;
}

bool strand__stack_is_default(size_t size)
{
    return is_default(size);
}

strand__stack *strand__stack_get(size_t size, strand__stack_cache *c)
{
    strand__stack *s;
    if (!is_default(size)) {
        s = single_new(round_size(size));
        return s ? reuse(s) : NULL;
    }
    s = c && c->n ? c->v[--c->n] : NULL;
    if (!s)
        s = pool_take(c);
    if (!s) /* mappings ran out while free stacks sit in other caches: have them spilled */
        atomic_store_explicit(&starved, true, memory_order_relaxed);
    return s ? reuse(s) : NULL;
}

void strand__stack_put(strand__stack *s, strand__stack_cache *c)
{
    vg_deregister(s);
    if (s->single) {
        single_free(s);
        return;
    }
    strand__stack_unreserve(c); /* the credit the strand spent when it bound this stack */
    /* relaxed: a stale view only delays the spill to the next release or idle moment */
    if (!c || atomic_load_explicit(&starved, memory_order_relaxed)) {
        if (c)
            strand__stack_cache_drain(c);
        pool_give_batch(&s, 1);
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

strand__stack *strand__stack_alloc(size_t size)
{
    if (is_default(size) && strand__stack_reserve(NULL) != 0)
        return NULL;
    strand__stack *s = strand__stack_get(size, NULL);
    if (!s && is_default(size))
        strand__stack_unreserve(NULL);
    return s;
}

void strand__stack_free(strand__stack *s)
{
    strand__stack_put(s, NULL);
}

/* A worker going away (or asked to, while a binding is starved): its whole cache back to
 * the pool, in one lock; its credits back to `spare`. */
void strand__stack_cache_drain(strand__stack_cache *c)
{
    if (c->n)
        pool_give_batch(c->v, c->n);
    c->n = 0;
    if (c->credits)
        atomic_fetch_add_explicit(&spare, c->credits, memory_order_relaxed);
    c->credits = 0;
}

const void *strand__stack_canary(const strand__stack *s)
{
    return (const void *)st_region(s);
}

bool strand__stack_check(const strand__stack *s)
{
    if (s->guard != STRAND__GUARD_CANARY)
        return true;
    uintptr_t region = st_region(s);
    const uint64_t *w = (const uint64_t *)region;
    for (size_t i = 0; i < CANARY / sizeof(uint64_t); i++)
        if (w[i] != (CANARY_WORD ^ (region + i)))
            return false;
    return true;
}

strand__stack *strand__stack_find(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    unsigned n = atomic_load_explicit(&nslabs, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        const slab *sl = &slabs[i];
        if (!sl->count || a < sl->base || a >= sl->base + sl->count * sl->stride)
            continue;
        uint32_t k = (uint32_t)((a - sl->base) / sl->stride);
        uintptr_t region = sl->base + (uintptr_t)k * sl->stride;
        /* a fault in the guard, or in the lowest page of a canaried stack */
        size_t g = sl->guard == STRAND__GUARD_REGION ? GUARD_BYTES : page();
        if (a < region + g)
            return rec_of(sl, k);
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
