/*
 * desc.c - strand descriptors (struct strand): small fixed-size blocks carved from slabs,
 * handed out LIFO from a per-worker cache over one global free list.
 *
 * A descriptor is apart from any stack (stack.c binds one when the strand first runs), so a
 * strand that is queued but has not run, or has ended, costs one descriptor: DESC_SIZE
 * bytes, and spawning touches no stack page. Slabs are mapped SLAB_BYTES at a time and never
 * unmapped: a stale pointer (the dump, the watchdog reading a worker's current strand as it
 * exits) always reads mapped memory, and descriptors are reused, never returned.
 *
 * Threads. A worker's cache is touched by its own thread only (it is handed in by the caller:
 * this file knows nothing of workers). The global list, linked through `next`, and the slab
 * carving are under `lock`; a cache moves DESC_BATCH descriptors per acquisition, so a
 * worker spawning and reaping steadily takes the lock once per DESC_BATCH strands, and a
 * plain thread takes it for each descriptor.
 */
#include "internal.h"

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#if defined(STRAND_ASAN)
#include <sanitizer/asan_interface.h>
#endif

/* A descriptor's block: the struct rounded up to 16 bytes (the context's alignment). On
 * x86_64, 320 bytes in release and 328 in the sanitizer builds, 72 of them cancellation,
 * exit reason, links and monitors (fate.h); aarch64's context is larger (d8-d15, FPCR).
 * The aim was 256; fate's lists could move to a block allocated on a strand's first link
 * or monitor (a follow-up). */
#define DESC_SIZE  ((sizeof(struct strand) + 15) & ~(size_t)15)
#if defined(__x86_64__) && !defined(STRAND_CTX_UCONTEXT)
_Static_assert(sizeof(struct strand) <= 336, "the x86_64 descriptor stays within 336 bytes");
#endif
#define SLAB_BYTES ((size_t)256 * 1024)
#define DESC_BATCH (STRAND__DESC_CACHE / 2)

_Static_assert(offsetof(struct strand, ctx) == 0, "the context comes first (not zeroed here)");

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct strand *free_head;

/* A fresh slab onto the free list. Called under lock. */
static bool slab_new(void)
{
    void *m = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    /* The range may have been a strand's stack, unmapped with ASan's poison still in its
     * shadow (a redzone of a frame that never returned): a descriptor is plain memory. */
#if defined(STRAND_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(m, SLAB_BYTES);
#endif
    /* Linked lowest first: consecutive spawns get neighbouring descriptors. */
    for (size_t off = SLAB_BYTES; off >= DESC_SIZE; off -= DESC_SIZE) {
        struct strand *s = (struct strand *)((char *)m + off - DESC_SIZE);
        s->next = free_head;
        free_head = s;
    }
    return true;
}

static struct strand *pop_locked(void)
{
    if (!free_head && !slab_new())
        return NULL;
    struct strand *s = free_head;
    free_head = s->next;
    return s;
}

static struct strand *refill(strand__desc_cache *c)
{
    pthread_mutex_lock(&lock);
    struct strand *s = pop_locked();
    while (c && s && c->n < DESC_BATCH && (free_head || slab_new()))
        c->v[c->n++] = pop_locked();
    pthread_mutex_unlock(&lock);
    return s;
}

struct strand *strand__desc_get(strand__desc_cache *c)
{
    struct strand *s = c && c->n ? c->v[--c->n] : refill(c);
    if (!s)
        return NULL;
    /* Everything between the context (which the spawner prepares whole) and the name (a
     * string, the last field: its first byte is enough) is zeroed: a third fewer stores per
     * spawn. */
    memset(&s->state, 0, offsetof(struct strand, name) - offsetof(struct strand, state));
    s->name[0] = '\0';
    return s;
}

static void give_locked(struct strand **v, int n)
{
    for (int i = 0; i < n; i++) {
        v[i]->next = free_head;
        free_head = v[i];
    }
}

void strand__desc_put(struct strand *s, strand__desc_cache *c)
{
    if (c && c->n < STRAND__DESC_CACHE) {
        c->v[c->n++] = s;
        return;
    }
    pthread_mutex_lock(&lock);
    if (c) { /* full: the older half goes back along with s */
        give_locked(c->v, DESC_BATCH);
        memmove(c->v, c->v + DESC_BATCH, (size_t)(c->n - DESC_BATCH) * sizeof *c->v);
        c->n -= DESC_BATCH;
    }
    give_locked(&s, 1);
    pthread_mutex_unlock(&lock);
}

void strand__desc_cache_drain(strand__desc_cache *c)
{
    pthread_mutex_lock(&lock);
    give_locked(c->v, c->n);
    c->n = 0;
    pthread_mutex_unlock(&lock);
}
