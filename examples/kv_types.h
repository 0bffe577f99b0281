/*
 * kv_types.h - the container values of examples/kv_server.c (lists, sets, hashes, sorted
 * sets): plain single-threaded data structures (kv_types.c). They do no locking and no
 * I/O: kv_server holds the shard lock of the key that owns a container while it calls
 * these, and copies out what it replies before unlocking.
 *
 * Ownership: a container owns every blob and node in it; whatever a pop returns belongs to
 * the caller (free() it). Functions that allocate return false/NULL/-1 when out of memory
 * and leave the container as it was.
 */
#ifndef KV_TYPES_H
#define KV_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kv_type { KV_STRING, KV_LIST, KV_SET, KV_HASH, KV_ZSET };

typedef struct kv_arg {
    const char *p;
    size_t      len;
} kv_arg;

/* A reply being built (RESP2), in `small` until it outgrows it. oom: an allocation failed
 * (the reply is then incomplete: send "-ERR out of memory" instead). */
typedef struct kv_reply {
    char  *p;
    size_t len, cap;
    bool   oom;
    char   small[256];
} kv_reply;

void kv_reply_init(kv_reply *r);
void kv_reply_free(kv_reply *r);
void kv_reply_raw(kv_reply *r, const void *p, size_t n);
void kv_reply_str(kv_reply *r, const char *s);
void kv_reply_bulk(kv_reply *r, const char *p, size_t n);
void kv_reply_int(kv_reply *r, int64_t v);
void kv_reply_array(kv_reply *r, int64_t n);

/* A command on a container value. argv[0] is the command name, argv[1] the key, argc within
 * the command's arity. Called first with obj == NULL: check the other arguments only
 * (reply the error and return false, as Redis checks them before the key's type). Then
 * with obj pointing at the key's container (*obj NULL if the key does not exist; the
 * command may create it): do it and append the reply. */
typedef bool (*kv_cmd_fn)(void **obj, const kv_arg *argv, int argc, kv_reply *r);

typedef struct kv_command {
    const char *name;
    int         min, max; /* arity, command name included; max -1: no limit */
    int         type;     /* enum kv_type of the key's value */
    kv_cmd_fn   fn;
} kv_command;

/* LPUSH RPUSH LPOP RPOP LRANGE LLEN SADD SPOP SCARD SISMEMBER HSET HGET HLEN ZADD ZPOPMIN
 * ZCARD; ended by a NULL name. */
extern const kv_command kv_container_commands[];
bool kv_container_empty(int type, const void *obj);
void kv_container_free(int type, void *obj); /* the container and all it holds */

typedef struct kv_blob {
    uint32_t len;
    char     p[];
} kv_blob;

kv_blob *kv_blob_new(const char *p, size_t n);
uint64_t kv_hash(const char *p, size_t n);

/* ---------------------------------------------------------------- dict: set, hash, zset members */

typedef struct kv_dnode {
    struct kv_dnode *next;
    uint64_t         h;
    kv_blob         *key;
    kv_blob         *val;   /* a hash's value; NULL in sets and sorted sets */
    double           score; /* a sorted set's score */
} kv_dnode;

typedef struct kv_dict {
    kv_dnode **b;
    size_t     nb, count;
} kv_dict;

bool      kv_dict_init(kv_dict *d);
kv_dnode *kv_dict_find(const kv_dict *d, const char *p, size_t n);
/* The node for key p (made if absent: *created says so; its val NULL, score 0). */
kv_dnode *kv_dict_insert(kv_dict *d, const char *p, size_t n, bool *created);
/* Remove and free the node for key p (and its key and value); false if absent. */
bool      kv_dict_remove(kv_dict *d, const char *p, size_t n);
/* Some member, chosen from `rnd` (the dict must not be empty). */
kv_dnode *kv_dict_any(const kv_dict *d, uint64_t rnd);
void      kv_dict_free(kv_dict *d);

/* ---------------------------------------------------------------- list: a deque of blobs */

typedef struct kv_list {
    kv_blob **a;
    size_t    cap, head, len; /* elements a[(head + i) % cap], i < len */
} kv_list;

bool     kv_list_push(kv_list *l, bool left, const char *p, size_t n);
kv_blob *kv_list_pop(kv_list *l, bool left); /* NULL when empty */
kv_blob *kv_list_at(const kv_list *l, size_t i);
void     kv_list_free(kv_list *l);

/* ---------------------------------------------------------------- sorted set */

typedef struct kv_zset {
    kv_dict    members;  /* member -> node (score in the node) */
    kv_dnode **order;    /* order[head .. head+len): by score, then member bytes */
    size_t     cap, head, len;
} kv_zset;

bool kv_zset_init(kv_zset *z);
/* 1 added, 0 score updated (or unchanged), -1 out of memory. */
int  kv_zset_add(kv_zset *z, double score, const char *p, size_t n);
/* The lowest-ranked member (NULL when empty); pop_min removes and frees it. */
kv_dnode *kv_zset_min(const kv_zset *z);
void      kv_zset_pop_min(kv_zset *z);
void      kv_zset_free(kv_zset *z);

#endif /* KV_TYPES_H */
