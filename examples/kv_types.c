/*
 * kv_types.c - lists, sets, hashes and sorted sets for examples/kv_server.c (see
 * kv_types.h for the contract: no locking, no I/O, the container owns its contents).
 *
 *  - kv_dict: chained hash table (FNV-1a), doubled when it holds as many nodes as buckets,
 *    never shrunk. Sets, hashes and sorted sets keep their members in one.
 *  - kv_list: a ring buffer of blob pointers, doubled when full: pushes and pops at both
 *    ends are O(1), LRANGE indexes it directly.
 *  - kv_zset: a dict (member -> node with its score) plus an array of the nodes in rank
 *    order (score, then member bytes, as Redis orders them). Insertion is a binary search
 *    and a memmove; ZPOPMIN only advances `head`. Fine for the small sets this is for.
 *
 * The commands on them are in kv_commands.c.
 */
#include "kv_types.h"

#include <stdlib.h>
#include <string.h>

kv_blob *kv_blob_new(const char *p, size_t n)
{
    kv_blob *b = malloc(sizeof *b + n);
    if (b == NULL)
        return NULL;
    b->len = (uint32_t)n;
    memcpy(b->p, p, n);
    return b;
}

uint64_t kv_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* ================================================================ dict */

bool kv_dict_init(kv_dict *d)
{
    d->nb = 8;
    d->count = 0;
    d->b = calloc(d->nb, sizeof *d->b);
    return d->b != NULL;
}

static kv_dnode **dict_slot(const kv_dict *d, uint64_t h, const char *p, size_t n)
{
    kv_dnode **pp = &d->b[h & (d->nb - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->h == h && (*pp)->key->len == n && memcmp((*pp)->key->p, p, n) == 0)
            break;
    return pp;
}

kv_dnode *kv_dict_find(const kv_dict *d, const char *p, size_t n)
{
    return *dict_slot(d, kv_hash(p, n), p, n);
}

static void dict_grow(kv_dict *d)
{
    size_t nb = d->nb * 2;
    kv_dnode **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < d->nb; i++) {
        for (kv_dnode *e = d->b[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
        }
    }
    free(d->b);
    d->b = b;
    d->nb = nb;
}

kv_dnode *kv_dict_insert(kv_dict *d, const char *p, size_t n, bool *created)
{
    uint64_t h = kv_hash(p, n);
    kv_dnode **pp = dict_slot(d, h, p, n);
    *created = *pp == NULL;
    if (*pp)
        return *pp;
    kv_dnode *e = calloc(1, sizeof *e);
    if (e == NULL || (e->key = kv_blob_new(p, n)) == NULL) {
        free(e);
        return NULL;
    }
    e->h = h;
    *pp = e;
    if (++d->count >= d->nb)
        dict_grow(d);
    return e;
}

bool kv_dict_remove(kv_dict *d, const char *p, size_t n)
{
    kv_dnode **pp = dict_slot(d, kv_hash(p, n), p, n);
    kv_dnode *e = *pp;
    if (e == NULL)
        return false;
    *pp = e->next;
    free(e->key);
    free(e->val);
    free(e);
    d->count--;
    return true;
}

kv_dnode *kv_dict_any(const kv_dict *d, uint64_t rnd)
{
    for (size_t i = 0; i < d->nb; i++) {
        kv_dnode *e = d->b[(rnd + i) & (d->nb - 1)];
        if (e)
            return e;
    }
    return NULL;
}

void kv_dict_free(kv_dict *d)
{
    for (size_t i = 0; i < d->nb; i++) {
        for (kv_dnode *e = d->b[i], *next; e; e = next) {
            next = e->next;
            free(e->key);
            free(e->val);
            free(e);
        }
    }
    free(d->b);
    d->b = NULL;
    d->nb = d->count = 0;
}

/* ================================================================ list */

static bool list_room(kv_list *l)
{
    if (l->len < l->cap)
        return true;
    size_t cap = l->cap ? l->cap * 2 : 8;
    kv_blob **a = malloc(cap * sizeof *a);
    if (a == NULL)
        return false;
    for (size_t i = 0; i < l->len; i++)
        a[i] = l->a[(l->head + i) % l->cap];
    free(l->a);
    l->a = a;
    l->cap = cap;
    l->head = 0;
    return true;
}

bool kv_list_push(kv_list *l, bool left, const char *p, size_t n)
{
    kv_blob *b = list_room(l) ? kv_blob_new(p, n) : NULL;
    if (b == NULL)
        return false;
    if (left) {
        l->head = (l->head + l->cap - 1) % l->cap;
        l->a[l->head] = b;
    } else {
        l->a[(l->head + l->len) % l->cap] = b;
    }
    l->len++;
    return true;
}

kv_blob *kv_list_pop(kv_list *l, bool left)
{
    if (l->len == 0)
        return NULL;
    kv_blob *b;
    if (left) {
        b = l->a[l->head];
        l->head = (l->head + 1) % l->cap;
    } else {
        b = l->a[(l->head + l->len - 1) % l->cap];
    }
    l->len--;
    return b;
}

kv_blob *kv_list_at(const kv_list *l, size_t i)
{
    return i < l->len ? l->a[(l->head + i) % l->cap] : NULL;
}

void kv_list_free(kv_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(kv_list_at(l, i));
    free(l->a);
    memset(l, 0, sizeof *l);
}

/* ================================================================ sorted set */

bool kv_zset_init(kv_zset *z)
{
    memset(z, 0, sizeof *z);
    return kv_dict_init(&z->members);
}

/* Rank order: score, then member bytes (a prefix sorts first). */
static int zcmp(double s, const char *p, size_t n, const kv_dnode *e)
{
    if (s != e->score)
        return s < e->score ? -1 : 1;
    size_t m = n < e->key->len ? n : e->key->len;
    int c = memcmp(p, e->key->p, m);
    return c ? c : (n > e->key->len) - (n < e->key->len);
}

/* The first position in order[] whose node ranks at or after (s, p). */
static size_t zfind(const kv_zset *z, double s, const char *p, size_t n)
{
    size_t lo = 0, hi = z->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (zcmp(s, p, n, z->order[z->head + mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool zroom(kv_zset *z)
{
    if (z->head + z->len < z->cap)
        return true;
    if (z->head > 0) { /* room at the front: slide down */
        memmove(z->order, z->order + z->head, z->len * sizeof *z->order);
        z->head = 0;
        return true;
    }
    size_t cap = z->cap ? z->cap * 2 : 8;
    kv_dnode **o = realloc(z->order, cap * sizeof *o);
    if (o == NULL)
        return false;
    z->order = o;
    z->cap = cap;
    return true;
}

static void zinsert(kv_zset *z, kv_dnode *e)
{
    size_t i = zfind(z, e->score, e->key->p, e->key->len);
    kv_dnode **base = z->order + z->head;
    memmove(base + i + 1, base + i, (z->len - i) * sizeof *base);
    base[i] = e;
    z->len++;
}

static void zunlink(kv_zset *z, kv_dnode *e)
{
    size_t i = zfind(z, e->score, e->key->p, e->key->len);
    kv_dnode **base = z->order + z->head;
    memmove(base + i, base + i + 1, (z->len - i - 1) * sizeof *base);
    z->len--;
}

int kv_zset_add(kv_zset *z, double score, const char *p, size_t n)
{
    if (!zroom(z))
        return -1;
    bool created;
    kv_dnode *e = kv_dict_insert(&z->members, p, n, &created);
    if (e == NULL)
        return -1;
    if (!created) {
        if (e->score == score)
            return 0;
        zunlink(z, e);
    }
    e->score = score;
    zinsert(z, e);
    return created ? 1 : 0;
}

kv_dnode *kv_zset_min(const kv_zset *z)
{
    return z->len ? z->order[z->head] : NULL;
}

void kv_zset_pop_min(kv_zset *z)
{
    kv_dnode *e = kv_zset_min(z);
    if (e == NULL)
        return;
    z->head++;
    z->len--;
    kv_dict_remove(&z->members, e->key->p, e->key->len);
}

void kv_zset_free(kv_zset *z)
{
    kv_dict_free(&z->members);
    free(z->order);
    memset(z, 0, sizeof *z);
}
