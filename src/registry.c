/*
 * registry.c - the table of live strands that strand_dump(), the watchdog and
 * tools/strand-gdb.py read.
 *
 * Shape: a fixed array of STRAND_REGISTRY_SIZE slots, each NULL or a live strand. A spawner
 * claims a slot with one CAS, starting at a per-thread cursor (so workers spawning in
 * parallel write different cache lines) and probing at most REG_PROBES slots; when none is
 * free in that window the strand still runs, untracked, and the overflow is counted. The
 * strand's exit clears its own slot with a release store.
 *
 * Invariants:
 *  - A slot holding s was written (release) after s's id, name and created_ns: a reader that
 *    loads the slot with acquire sees them.
 *  - s->registry_index is written by the strand's spawner before s can run and by its exit
 *    path afterwards; nobody else. >= 0: the slot it holds; -1: never tracked (registry
 *    off); -2: left untracked by an overflow (counted in `untracked`).
 *  - The array is allocated once and never freed or resized (readers hold no lock); a later
 *    strand_init with another size keeps the first array.
 */
#include "diag.h"

#include <stdlib.h>

#define REG_PROBES 64

struct strand *_Atomic *_Atomic strand__registry_slots;
uint32_t strand__registry_cap;

static atomic_int reg_state;          /* 0 = not set up, 1 = ready, 2 = off */
static atomic_uint_fast64_t reg_overflow;
static atomic_int_fast64_t reg_untracked;
static atomic_uint reg_thread_seq;
static __thread uint32_t reg_cursor_plus1; /* 0 = this thread has no cursor yet */
/* After a full probe window found no free slot, this thread's next REG_BACKOFF spawns go
 * untracked without probing, as long as no slot was freed meanwhile (`reg_full` is set by
 * the failed probe and cleared by the next remove): with far more live strands than slots
 * (a million strands, a registry of 1024) probing would otherwise cost every spawn 64
 * loads, and a remove only writes the shared flag while the registry is full. */
#define REG_BACKOFF 64
static __thread uint32_t reg_skip;
static atomic_bool reg_full;

void strand__registry_setup(int size)
{
    if (atomic_load_explicit(&reg_state, memory_order_acquire) != 0)
        return;
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&once);
    if (atomic_load_explicit(&reg_state, memory_order_relaxed) == 0) {
        struct strand *_Atomic *slots = NULL;
        if (size > 0)
            slots = calloc((size_t)size, sizeof *slots);
        if (slots != NULL) {
            strand__registry_cap = (uint32_t)size;
            atomic_store_explicit(&strand__registry_slots, slots, memory_order_release);
            atomic_store_explicit(&reg_state, 1, memory_order_release);
        } else {
            atomic_store_explicit(&reg_state, 2, memory_order_release);
        }
    }
    pthread_mutex_unlock(&once);
}

/* Spread the threads' starting points a few cache lines apart. */
static uint32_t first_cursor(uint32_t cap)
{
    uint32_t k = atomic_fetch_add_explicit(&reg_thread_seq, 1, memory_order_relaxed);
    return (uint32_t)(((uint64_t)k * 136u) % cap);
}

static STRAND__NOINLINE void registry_slow_setup(void)
{
    strand__registry_setup(strand__cfg.registry_size > 0 ? strand__cfg.registry_size : 0);
}

void strand__registry_add(struct strand *s)
{
    int st = atomic_load_explicit(&reg_state, memory_order_acquire);
    if (STRAND__UNLIKELY(st == 0)) {
        registry_slow_setup();
        st = atomic_load_explicit(&reg_state, memory_order_acquire);
    }
    if (st != 1) {
        s->registry_index = -1;
        return;
    }
    if (reg_skip && atomic_load_explicit(&reg_full, memory_order_relaxed)) {
        reg_skip--;
        s->registry_index = -2;
        atomic_fetch_add_explicit(&reg_overflow, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&reg_untracked, 1, memory_order_relaxed);
        return;
    }
    struct strand *_Atomic *slots = atomic_load_explicit(&strand__registry_slots,
                                                         memory_order_relaxed);
    uint32_t cap = strand__registry_cap;
    uint32_t i = reg_cursor_plus1 == 0 ? first_cursor(cap) : reg_cursor_plus1 - 1;
    uint32_t probes = cap < REG_PROBES ? cap : REG_PROBES;
    for (uint32_t n = 0; n < probes; n++, i = i + 1 == cap ? 0 : i + 1) {
        if (atomic_load_explicit(&slots[i], memory_order_relaxed) != NULL)
            continue;
        struct strand *empty = NULL;
        /* release: publishes s's fields to the dump, which loads the slot with acquire */
        if (atomic_compare_exchange_strong_explicit(&slots[i], &empty, s, memory_order_release,
                                                    memory_order_relaxed)) {
            s->registry_index = (int32_t)i;
            reg_cursor_plus1 = (i + 1 == cap ? 0 : i + 1) + 1;
            return;
        }
    }
    reg_cursor_plus1 = i + 1;
    reg_skip = REG_BACKOFF;
    atomic_store_explicit(&reg_full, true, memory_order_relaxed);
    s->registry_index = -2;
    atomic_fetch_add_explicit(&reg_overflow, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&reg_untracked, 1, memory_order_relaxed);
}

void strand__registry_remove(struct strand *s)
{
    int32_t idx = s->registry_index;
    if (idx >= 0) {
        struct strand *_Atomic *slots = atomic_load_explicit(&strand__registry_slots,
                                                             memory_order_relaxed);
        /* release: the strand's last writes happen before its slot is seen free */
        atomic_store_explicit(&slots[idx], NULL, memory_order_release);
        if (atomic_load_explicit(&reg_full, memory_order_relaxed))
            atomic_store_explicit(&reg_full, false, memory_order_relaxed);
    } else if (idx == -2) {
        atomic_fetch_sub_explicit(&reg_untracked, 1, memory_order_relaxed);
    }
    s->registry_index = -1;
}

uint64_t strand__registry_overflow(void)
{
    return atomic_load_explicit(&reg_overflow, memory_order_relaxed);
}

uint64_t strand__registry_untracked(void)
{
    int64_t n = atomic_load_explicit(&reg_untracked, memory_order_relaxed);
    return n > 0 ? (uint64_t)n : 0;
}

void strand__registry_each(void (*fn)(struct strand *s, void *ctx), void *ctx)
{
    struct strand *_Atomic *slots = atomic_load_explicit(&strand__registry_slots,
                                                         memory_order_acquire);
    if (slots == NULL)
        return;
    uint32_t cap = strand__registry_cap;
    for (uint32_t i = 0; i < cap; i++) {
        struct strand *s = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (s != NULL)
            fn(s, ctx);
    }
}
