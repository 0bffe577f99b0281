/*
 * arena.c - strand_arena_alloc(): memory that lives until the calling strand ends.
 *
 * Each strand's arena is a singly linked list of malloc'd chunks hung off s->arena, newest
 * first. Allocation bumps a cursor in the newest chunk; when it does not fit, a new chunk
 * twice the size of the last (from 1 KiB up to 64 KiB) is pushed, or, for a large request,
 * a chunk of exactly that size is put *behind* the newest so the newest's free room is not
 * wasted. strand__arena_release frees the whole list when the strand ends.
 *
 * Invariants: only the strand itself touches its arena (alloc runs on the strand; release
 * runs on its exit path, after which nothing of it runs), so no locks. Every returned
 * pointer is 16-byte aligned (the chunk header is 16-byte sized and malloc gives 16).
 */
#include "internal.h"

#include <stdlib.h>

#define ARENA_ALIGN 16
#define ARENA_FIRST 1024
#define ARENA_MAX_CHUNK (64 * 1024)
/* Refuse sizes whose rounding or header would overflow (and absurd ones). */
#define ARENA_MAX_REQ ((size_t)1 << 40)

typedef struct arena_chunk {
    struct arena_chunk *next;
    uint32_t used;            /* bytes of data[] handed out */
    uint32_t cap;             /* bytes of data[]; 0 for an oversized chunk (all used) */
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_chunk;

_Static_assert(sizeof(arena_chunk) % ARENA_ALIGN == 0, "chunk header keeps data aligned");

static arena_chunk *chunk_new(size_t cap)
{
    arena_chunk *c = malloc(sizeof *c + cap);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->used = 0;
    c->cap = (uint32_t)cap;
    return c;
}

void *strand_arena_alloc(size_t size)
{
    struct strand *s = strand__current();
    if (s == NULL || size == 0 || size > ARENA_MAX_REQ)
        return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

    arena_chunk *head = s->arena;
    if (head != NULL && head->cap - head->used >= size) {
        void *p = head->data + head->used;
        head->used += (uint32_t)size;
        return p;
    }
    size_t next_cap = head == NULL ? ARENA_FIRST : (size_t)head->cap * 2;
    if (next_cap > ARENA_MAX_CHUNK)
        next_cap = ARENA_MAX_CHUNK;
    if (next_cap < ARENA_FIRST)
        next_cap = ARENA_FIRST;

    if (size > next_cap / 4) {
        /* Large: a chunk of its own, kept behind the head so the head's room stays usable. */
        arena_chunk *c = malloc(sizeof *c + size);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = 0;
        if (head != NULL) {
            c->next = head->next;
            head->next = c;
        } else {
            c->next = NULL;
            s->arena = c;
        }
        return c->data;
    }
    arena_chunk *c = chunk_new(next_cap);
    if (c == NULL)
        return NULL;
    c->next = head;
    s->arena = c;
    c->used = (uint32_t)size;
    return c->data;
}

void strand__arena_release(struct strand *s)
{
    arena_chunk *c = s->arena;
    s->arena = NULL;
    while (c != NULL) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}
