/*
 * kv_commands.c - the list, set, hash and sorted-set commands of examples/kv_server.c
 * (kv_container_commands, declared in kv_types.h) and the RESP2 reply builder they use.
 *
 * Each command parses its own arguments and builds its reply byte for byte as
 * redis-server 7.0 does (tests/test_kv.c sends the same commands to both and compares):
 * the same error texts, argument errors reported before a WRONGTYPE (kv_server calls each
 * command once with obj == NULL to check them), a nil bulk or array or an empty array for
 * a missing key as Redis chooses per command. Nothing here locks or does I/O: kv_server
 * holds the key's shard lock around the second call and sends the reply after unlocking.
 */
#include "kv_types.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ replies */

void kv_reply_init(kv_reply *r)
{
    r->p = r->small;
    r->len = 0;
    r->cap = sizeof r->small;
    r->oom = false;
}

void kv_reply_free(kv_reply *r)
{
    if (r->p != r->small)
        free(r->p);
    kv_reply_init(r);
}

void kv_reply_raw(kv_reply *r, const void *p, size_t n)
{
    if (r->oom)
        return;
    if (r->len + n > r->cap) {
        size_t cap = r->cap * 2 > r->len + n ? r->cap * 2 : r->len + n;
        char *q = r->p == r->small ? malloc(cap) : realloc(r->p, cap);
        if (q == NULL) {
            r->oom = true;
            return;
        }
        if (r->p == r->small)
            memcpy(q, r->small, r->len);
        r->p = q;
        r->cap = cap;
    }
    memcpy(r->p + r->len, p, n);
    r->len += n;
}

void kv_reply_str(kv_reply *r, const char *s)
{
    kv_reply_raw(r, s, strlen(s));
}

static void reply_fmt(kv_reply *r, char kind, int64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%c%" PRId64 "\r\n", kind, v);
    kv_reply_raw(r, b, (size_t)n);
}

void kv_reply_bulk(kv_reply *r, const char *p, size_t n)
{
    reply_fmt(r, '$', (int64_t)n);
    kv_reply_raw(r, p, n);
    kv_reply_raw(r, "\r\n", 2);
}

void kv_reply_int(kv_reply *r, int64_t v)
{
    reply_fmt(r, ':', v);
}

void kv_reply_array(kv_reply *r, int64_t n)
{
    reply_fmt(r, '*', n);
}

/* A score as Redis 7.0 prints it in RESP2: "%.17g", and "inf"/"-inf". */
static void reply_double(kv_reply *r, double d)
{
    char b[40];
    int n = isinf(d) ? snprintf(b, sizeof b, "%s", d > 0 ? "inf" : "-inf")
                     : snprintf(b, sizeof b, "%.17g", d);
    kv_reply_bulk(r, b, (size_t)n);
}

/* ================================================================ argument parsing */

static const char ERR_INT[] = "-ERR value is not an integer or out of range\r\n";
static const char ERR_POSITIVE[] = "-ERR value is out of range, must be positive\r\n";
static const char ERR_FLOAT[] = "-ERR value is not a valid float\r\n";

/* A strict signed 64-bit decimal (no spaces, no '+'), as Redis's string2ll. */
static bool arg_i64(const kv_arg *a, int64_t *out)
{
    if (a->len == 0 || a->len > 20)
        return false;
    char b[24];
    memcpy(b, a->p, a->len);
    b[a->len] = '\0';
    if (!(b[0] == '-' || isdigit((unsigned char)b[0])) || (b[0] == '-' && a->len == 1))
        return false;
    if ((b[0] == '0' && a->len > 1) || (b[0] == '-' && b[1] == '0'))
        return false; /* no leading zeros, no "-0" */
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool arg_double(const kv_arg *a, double *out)
{
    if (a->len == 0 || a->len > 64 || isspace((unsigned char)a->p[0]))
        return false;
    char b[72];
    memcpy(b, a->p, a->len);
    b[a->len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(b, &end);
    if (*end != '\0' || isnan(v) || (errno == ERANGE && !isinf(v) && v != 0))
        return false;
    *out = v;
    return true;
}

/* The optional count of LPOP/RPOP/SPOP/ZPOPMIN: *has false without one. */
static bool arg_count(const kv_arg *argv, int argc, bool *has, int64_t *count, kv_reply *r)
{
    *has = argc > 2;
    *count = 1;
    if (!*has)
        return true;
    if (!arg_i64(&argv[2], count) || *count < 0) { /* Redis says the same for both */
        kv_reply_str(r, ERR_POSITIVE);
        return false;
    }
    return true;
}

static void *obj_new(int type)
{
    switch (type) {
    case KV_LIST: return calloc(1, sizeof(kv_list));
    case KV_SET:
    case KV_HASH: {
        kv_dict *d = malloc(sizeof *d);
        if (d && !kv_dict_init(d)) {
            free(d);
            return NULL;
        }
        return d;
    }
    case KV_ZSET: {
        kv_zset *z = malloc(sizeof *z);
        if (z && !kv_zset_init(z)) {
            free(z);
            return NULL;
        }
        return z;
    }
    default: return NULL;
    }
}

/* *obj, made if absent; NULL (and r->oom) when out of memory. */
static void *obj_get(void **obj, int type, kv_reply *r)
{
    if (*obj == NULL && (*obj = obj_new(type)) == NULL)
        r->oom = true;
    return *obj;
}

bool kv_container_empty(int type, const void *obj)
{
    switch (type) {
    case KV_LIST: return ((const kv_list *)obj)->len == 0;
    case KV_SET:
    case KV_HASH: return ((const kv_dict *)obj)->count == 0;
    case KV_ZSET: return ((const kv_zset *)obj)->len == 0;
    default: return false;
    }
}

void kv_container_free(int type, void *obj)
{
    if (obj == NULL)
        return;
    if (type == KV_LIST)
        kv_list_free(obj);
    else if (type == KV_SET || type == KV_HASH)
        kv_dict_free(obj);
    else if (type == KV_ZSET)
        kv_zset_free(obj);
    free(obj);
}

/* ================================================================ list commands */

static bool cmd_push(void **obj, const kv_arg *argv, int argc, kv_reply *r, bool left)
{
    if (obj == NULL)
        return true;
    kv_list *l = obj_get(obj, KV_LIST, r);
    for (int i = 2; l && i < argc; i++)
        if (!kv_list_push(l, left, argv[i].p, argv[i].len))
            r->oom = true;
    if (l)
        kv_reply_int(r, (int64_t)l->len);
    return true;
}

static bool cmd_lpush(void **o, const kv_arg *a, int n, kv_reply *r) { return cmd_push(o, a, n, r, true); }
static bool cmd_rpush(void **o, const kv_arg *a, int n, kv_reply *r) { return cmd_push(o, a, n, r, false); }

static bool cmd_pop(void **obj, const kv_arg *argv, int argc, kv_reply *r, bool left)
{
    bool has;
    int64_t count;
    if (!arg_count(argv, argc, &has, &count, r))
        return false;
    if (obj == NULL)
        return true;
    kv_list *l = *obj;
    if (l == NULL) {
        kv_reply_str(r, has ? "*-1\r\n" : "$-1\r\n");
        return true;
    }
    if (has)
        kv_reply_array(r, count < (int64_t)l->len ? count : (int64_t)l->len);
    for (int64_t i = 0; i < count && l->len > 0; i++) {
        kv_blob *b = kv_list_pop(l, left);
        kv_reply_bulk(r, b->p, b->len);
        free(b);
    }
    return true;
}

static bool cmd_lpop(void **o, const kv_arg *a, int n, kv_reply *r) { return cmd_pop(o, a, n, r, true); }
static bool cmd_rpop(void **o, const kv_arg *a, int n, kv_reply *r) { return cmd_pop(o, a, n, r, false); }

static bool cmd_lrange(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    (void)argc;
    int64_t start, stop;
    if (!arg_i64(&argv[2], &start) || !arg_i64(&argv[3], &stop)) {
        kv_reply_str(r, ERR_INT);
        return false;
    }
    if (obj == NULL)
        return true;
    const kv_list *l = *obj;
    int64_t len = l ? (int64_t)l->len : 0;
    if (start < 0)
        start += len;
    if (stop < 0)
        stop += len;
    if (start < 0)
        start = 0;
    if (stop >= len)
        stop = len - 1;
    if (start > stop || start >= len) {
        kv_reply_str(r, "*0\r\n");
        return true;
    }
    kv_reply_array(r, stop - start + 1);
    for (int64_t i = start; i <= stop; i++) {
        const kv_blob *b = kv_list_at(l, (size_t)i);
        kv_reply_bulk(r, b->p, b->len);
    }
    return true;
}

static bool cmd_llen(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    (void)argv, (void)argc;
    if (obj)
        kv_reply_int(r, *obj ? (int64_t)((kv_list *)*obj)->len : 0);
    return true;
}

/* ================================================================ set and hash commands */

static bool cmd_sadd(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    if (obj == NULL)
        return true;
    kv_dict *d = obj_get(obj, KV_SET, r);
    int64_t added = 0;
    for (int i = 2; d && i < argc; i++) {
        bool created;
        if (kv_dict_insert(d, argv[i].p, argv[i].len, &created) == NULL)
            r->oom = true;
        else
            added += created;
    }
    kv_reply_int(r, added);
    return true;
}

static _Atomic uint64_t spop_seq; /* only has to differ between calls: relaxed is enough */

static bool cmd_spop(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    bool has;
    int64_t count;
    if (!arg_count(argv, argc, &has, &count, r))
        return false;
    if (obj == NULL)
        return true;
    kv_dict *d = *obj;
    if (d == NULL) {
        kv_reply_str(r, has ? "*0\r\n" : "$-1\r\n");
        return true;
    }
    if (has)
        kv_reply_array(r, count < (int64_t)d->count ? count : (int64_t)d->count);
    for (int64_t i = 0; i < count && d->count > 0; i++) {
        uint64_t rnd = atomic_fetch_add_explicit(&spop_seq, 1, memory_order_relaxed);
        kv_dnode *e = kv_dict_any(d, kv_hash((const char *)&rnd, sizeof rnd));
        kv_reply_bulk(r, e->key->p, e->key->len);
        kv_dict_remove(d, e->key->p, e->key->len);
    }
    return true;
}

static bool cmd_card(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    (void)argv, (void)argc;
    if (obj)
        kv_reply_int(r, *obj ? (int64_t)((kv_dict *)*obj)->count : 0);
    return true;
}

static bool cmd_sismember(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    (void)argc;
    if (obj)
        kv_reply_int(r, *obj && kv_dict_find(*obj, argv[2].p, argv[2].len) != NULL);
    return true;
}

static bool cmd_hset(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    if (argc % 2 != 0) {
        kv_reply_str(r, "-ERR wrong number of arguments for 'hset' command\r\n");
        return false;
    }
    if (obj == NULL)
        return true;
    kv_dict *d = obj_get(obj, KV_HASH, r);
    int64_t added = 0;
    for (int i = 2; d && i + 1 < argc; i += 2) {
        bool created;
        kv_dnode *e = kv_dict_insert(d, argv[i].p, argv[i].len, &created);
        kv_blob *v = e ? kv_blob_new(argv[i + 1].p, argv[i + 1].len) : NULL;
        if (v == NULL) {
            r->oom = true;
            if (e && created)
                kv_dict_remove(d, argv[i].p, argv[i].len);
            continue;
        }
        free(e->val);
        e->val = v;
        added += created;
    }
    kv_reply_int(r, added);
    return true;
}

static bool cmd_hget(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    (void)argc;
    if (obj == NULL)
        return true;
    kv_dnode *e = *obj ? kv_dict_find(*obj, argv[2].p, argv[2].len) : NULL;
    if (e)
        kv_reply_bulk(r, e->val->p, e->val->len);
    else
        kv_reply_str(r, "$-1\r\n");
    return true;
}

/* ================================================================ sorted set commands */

static bool cmd_zadd(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    if (argc % 2 != 0) {
        kv_reply_str(r, "-ERR syntax error\r\n");
        return false;
    }
    for (int i = 2; i < argc; i += 2) {
        double s;
        if (!arg_double(&argv[i], &s)) {
            kv_reply_str(r, ERR_FLOAT);
            return false;
        }
    }
    if (obj == NULL)
        return true;
    kv_zset *z = obj_get(obj, KV_ZSET, r);
    int64_t added = 0;
    for (int i = 2; z && i < argc; i += 2) {
        double s = 0;
        arg_double(&argv[i], &s);
        int rc = kv_zset_add(z, s, argv[i + 1].p, argv[i + 1].len);
        if (rc < 0)
            r->oom = true;
        else
            added += rc;
    }
    kv_reply_int(r, added);
    return true;
}

static bool cmd_zpopmin(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    bool has;
    int64_t count;
    if (!arg_count(argv, argc, &has, &count, r))
        return false;
    if (obj == NULL)
        return true;
    kv_zset *z = *obj;
    int64_t n = z == NULL ? 0 : count < (int64_t)z->len ? count : (int64_t)z->len;
    kv_reply_array(r, 2 * n);
    for (int64_t i = 0; i < n; i++) {
        kv_dnode *e = kv_zset_min(z);
        kv_reply_bulk(r, e->key->p, e->key->len);
        reply_double(r, e->score);
        kv_zset_pop_min(z);
    }
    return true;
}

static bool cmd_zcard(void **obj, const kv_arg *argv, int argc, kv_reply *r)
{
    (void)argv, (void)argc;
    if (obj)
        kv_reply_int(r, *obj ? (int64_t)((kv_zset *)*obj)->len : 0);
    return true;
}

const kv_command kv_container_commands[] = {
    { "LPUSH", 3, -1, KV_LIST, cmd_lpush },   { "RPUSH", 3, -1, KV_LIST, cmd_rpush },
    { "LPOP", 2, 3, KV_LIST, cmd_lpop },      { "RPOP", 2, 3, KV_LIST, cmd_rpop },
    { "LRANGE", 4, 4, KV_LIST, cmd_lrange },  { "LLEN", 2, 2, KV_LIST, cmd_llen },
    { "SADD", 3, -1, KV_SET, cmd_sadd },      { "SPOP", 2, 3, KV_SET, cmd_spop },
    { "SCARD", 2, 2, KV_SET, cmd_card },      { "SISMEMBER", 3, 3, KV_SET, cmd_sismember },
    { "HSET", 4, -1, KV_HASH, cmd_hset },     { "HGET", 3, 3, KV_HASH, cmd_hget },
    { "HLEN", 2, 2, KV_HASH, cmd_card },      { "ZADD", 4, -1, KV_ZSET, cmd_zadd },
    { "ZPOPMIN", 2, 3, KV_ZSET, cmd_zpopmin }, { "ZCARD", 2, 2, KV_ZSET, cmd_zcard },
    { NULL, 0, 0, 0, NULL },
};
