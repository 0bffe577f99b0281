/*
 * kv_server.c - a key-value server speaking RESP2 (the Redis protocol), one strand per
 * connection, on 127.0.0.1:PORT. redis-cli and redis-benchmark can talk to it.
 *
 *   ./kv_server 6380          (PORT 0 picks a free port; the chosen one is printed)
 *   redis-cli -p 6380 set greeting hello
 *   redis-benchmark -p 6380 -t set,get -P 16 -q
 *
 * Commands: PING [msg], ECHO msg, SET key value, GET key, MSET key value..., DEL key...,
 * INCR key, EXISTS key..., TYPE key, plus QUIT, and CONFIG GET / COMMAND answered with just
 * enough for the Redis tools; on lists LPUSH RPUSH LPOP RPOP [count] LRANGE LLEN, sets SADD
 * SPOP [count] SCARD SISMEMBER, hashes HSET HGET HLEN, sorted sets ZADD (no flags) ZPOPMIN
 * [count] ZCARD (kv_commands.c; the containers are in kv_types.c), with Redis's replies
 * and errors (WRONGTYPE included) byte for byte: all of redis-benchmark's default tests.
 * Unknown commands and wrong arities get an error reply; malformed input (bad lengths, a
 * missing CRLF, a bulk longer than MAX_BULK, a request longer than MAX_REQUEST: the parser
 * is resp_parse.c) gets "-ERR Protocol error: ..." and the connection is closed, as Redis
 * does.
 *
 * How a connection works (serve_client): read into `in`; execute every complete request
 * in it (pipelining), appending replies to `out`; when `in` has no complete request left,
 * write `out` and read again. Memory per client is bounded: `in` grows only up to one
 * request (MAX_REQUEST) and `out` is OUT_CAP bytes; when `out` is full the strand writes
 * it with strand_write_all, which parks the strand while the client is not reading: that
 * client stops being read (back-pressure) and nobody else notices.
 *
 * The store: SHARDS hash tables, each behind a strand_mutex (which parks a strand, never
 * a worker). An entry is a string (value bytes inline) or owns one container; a container
 * emptied by a command is deleted with its key. No lock is held across I/O: a value read by
 * GET is copied out first, a container command's reply is built under the lock in a
 * kv_reply and sent after it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv_types.h"
#include "resp_parse.h"
#include "strand.h"

#define IN_START      16384
#define OUT_CAP       65536
#define SHARDS        64
#define WRONGTYPE     "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"

/* ================================================================ the store */

typedef struct entry {
    struct entry *next;
    uint64_t      hash;
    uint32_t      klen, vlen;
    uint8_t       type;                        /* enum kv_type */
    void         *obj;                         /* the container (kv_types.h), or NULL */
    char          data[];                      /* key bytes, then a string's value bytes */
} entry;

typedef struct shard {
    strand_mutex lock;
    entry      **buckets;
    size_t       nbuckets, count;
} shard;

static shard store[SHARDS];

static uint64_t hash_bytes(const char *p, size_t n)
{
    return kv_hash(p, n);
}

static shard *shard_of(uint64_t h)
{
    return &store[(h >> 58) % SHARDS];
}

static void store_init(void)
{
    for (int i = 0; i < SHARDS; i++) {
        strand_mutex_init(&store[i].lock);
        store[i].nbuckets = 1024;
        store[i].buckets = calloc(store[i].nbuckets, sizeof(entry *));
        if (store[i].buckets == NULL)
            abort();
    }
}

/* The slot that points at the entry for key (or at the NULL ending its chain). */
static entry **find_slot(shard *s, uint64_t h, const char *key, size_t klen)
{
    entry **pp = &s->buckets[h & (s->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        entry *e = *pp;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            break;
    }
    return pp;
}

static void maybe_grow(shard *s)
{
    if (s->count < s->nbuckets)
        return;
    size_t n = s->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (entry *e = s->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static entry *entry_new(uint64_t h, const char *k, size_t kl, const char *v, size_t vl)
{
    entry *e = malloc(sizeof *e + kl + vl);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->klen = (uint32_t)kl;
    e->vlen = (uint32_t)vl;
    e->type = KV_STRING;
    e->obj = NULL;
    memcpy(e->data, k, kl);
    memcpy(e->data + kl, v, vl);
    return e;
}

static void entry_free(entry *e)
{
    kv_container_free(e->type, e->obj);
    free(e);
}

/* Insert or replace; false when out of memory. Caller holds s->lock. */
static bool put_locked(shard *s, uint64_t h, const char *k, size_t kl, const char *v, size_t vl)
{
    entry *e = entry_new(h, k, kl, v, vl);
    if (e == NULL)
        return false;
    entry **pp = find_slot(s, h, k, kl);
    if (*pp) {
        e->next = (*pp)->next;
        entry_free(*pp);
        *pp = e;
        return true;
    }
    e->next = NULL;
    *pp = e;
    s->count++;
    maybe_grow(s);
    return true;
}

/* ================================================================ a connection */

typedef kv_arg arg; /* one argument: bytes in the input buffer */

typedef struct client {
    int    fd;
    char  *in;
    size_t in_len, in_cap;
    char   out[OUT_CAP];
    size_t out_len;
    bool   dead;         /* a write failed: stop */
    const char *perr;    /* what the parser found wrong */
    arg    argv[MAX_ARGS];
    int    argc;
} client;

static void flush_out(client *c)
{
    if (c->out_len == 0 || c->dead)
        return;
    /* Parks this strand while the client does not read: back-pressure. */
    if (strand_write_all(c->fd, c->out, c->out_len, STRAND_FOREVER) < 0)
        c->dead = true;
    c->out_len = 0;
}

static void out_add(client *c, const void *p, size_t n)
{
    if (c->out_len + n > OUT_CAP)
        flush_out(c);
    if (n > OUT_CAP) { /* a big value: straight to the socket */
        if (!c->dead && strand_write_all(c->fd, p, n, STRAND_FOREVER) < 0)
            c->dead = true;
        return;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void out_str(client *c, const char *s)
{
    out_add(c, s, strlen(s));
}

static void out_int(client *c, int64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, ":%" PRId64 "\r\n", v);
    out_add(c, b, (size_t)n);
}

static void out_bulk(client *c, const char *p, size_t n)
{
    char b[32];
    int h = snprintf(b, sizeof b, "$%zu\r\n", n);
    out_add(c, b, (size_t)h);
    out_add(c, p, n);
    out_add(c, "\r\n", 2);
}

/* An error reply quoting (part of) a client-supplied name, made safe for one line. */
static void out_err_name(client *c, const char *fmt, const arg *a)
{
    char name[65];
    size_t n = a->len < 64 ? a->len : 64;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)a->p[i];
        name[i] = (isprint(ch) && ch != '\'') ? (char)ch : '?';
    }
    name[n] = '\0';
    char msg[160];
    int len = snprintf(msg, sizeof msg, fmt, name);
    out_add(c, msg, (size_t)len);
}

/* ---------------------------------------------------------------- commands */

static bool is_cmd(const arg *a, const char *name)
{
    return a->len == strlen(name) && strncasecmp(a->p, name, a->len) == 0;
}

static void arity_error(client *c)
{
    char name[65]; /* Redis names the command in lower case */
    arg lower = { name, c->argv[0].len < 64 ? c->argv[0].len : 64 };
    for (size_t i = 0; i < lower.len; i++)
        name[i] = (char)tolower((unsigned char)c->argv[0].p[i]);
    out_err_name(c, "-ERR wrong number of arguments for '%s' command\r\n", &lower);
}

static bool arity(client *c, int min, int max)
{
    if (c->argc >= min && (max < 0 || c->argc <= max))
        return true;
    arity_error(c);
    return false;
}

static void cmd_get(client *c)
{
    const arg *k = &c->argv[1];
    uint64_t h = hash_bytes(k->p, k->len);
    shard *s = shard_of(h);
    char small[512];
    char *copy = NULL;
    size_t vlen = 0;
    bool found = false;
    strand_mutex_lock(&s->lock, STRAND_FOREVER);
    entry *e = *find_slot(s, h, k->p, k->len);
    bool wrong = e != NULL && e->type != KV_STRING;
    if (e != NULL && !wrong) {
        found = true;
        vlen = e->vlen;
        copy = vlen <= sizeof small ? small : malloc(vlen);
        if (copy != NULL)
            memcpy(copy, e->data + e->klen, vlen);
    }
    strand_mutex_unlock(&s->lock);
    if (wrong)
        out_str(c, WRONGTYPE);
    else if (!found)
        out_str(c, "$-1\r\n");
    else if (copy == NULL)
        out_str(c, "-ERR out of memory\r\n");
    else
        out_bulk(c, copy, vlen);
    if (copy != small)
        free(copy);
}

static void cmd_set(client *c)
{
    if (c->argc != 3) {
        out_str(c, "-ERR syntax error\r\n");
        return;
    }
    const arg *k = &c->argv[1], *v = &c->argv[2];
    uint64_t h = hash_bytes(k->p, k->len);
    shard *s = shard_of(h);
    strand_mutex_lock(&s->lock, STRAND_FOREVER);
    bool ok = put_locked(s, h, k->p, k->len, v->p, v->len);
    strand_mutex_unlock(&s->lock);
    out_str(c, ok ? "+OK\r\n" : "-ERR out of memory\r\n");
}

/* DEL (remove = true) or EXISTS: how many of the keys were there. */
static void cmd_del_exists(client *c, bool remove)
{
    int64_t n = 0;
    for (int i = 1; i < c->argc; i++) {
        const arg *k = &c->argv[i];
        uint64_t h = hash_bytes(k->p, k->len);
        shard *s = shard_of(h);
        strand_mutex_lock(&s->lock, STRAND_FOREVER);
        entry **pp = find_slot(s, h, k->p, k->len);
        if (*pp != NULL) {
            n++;
            if (remove) {
                entry *e = *pp;
                *pp = e->next;
                entry_free(e);
                s->count--;
            }
        }
        strand_mutex_unlock(&s->lock);
    }
    out_int(c, n);
}

/* A value as a strict signed 64-bit decimal (Redis rules: no spaces, no '+'). */
static bool parse_i64(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    char b[24];
    memcpy(b, p, n);
    b[n] = '\0';
    if (!(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(b, &end, 10);
    if (errno != 0 || *end != '\0' || (b[0] == '-' && n == 1))
        return false;
    *out = v;
    return true;
}

static void cmd_incr(client *c)
{
    const arg *k = &c->argv[1];
    uint64_t h = hash_bytes(k->p, k->len);
    shard *s = shard_of(h);
    const char *err = NULL;
    int64_t v = 0;
    strand_mutex_lock(&s->lock, STRAND_FOREVER);
    entry *e = *find_slot(s, h, k->p, k->len);
    if (e != NULL && e->type != KV_STRING)
        err = WRONGTYPE;
    else if (e != NULL && !parse_i64(e->data + e->klen, e->vlen, &v))
        err = "-ERR value is not an integer or out of range\r\n";
    else if (v == INT64_MAX)
        err = "-ERR increment or decrement would overflow\r\n";
    else {
        char num[24];
        int n = snprintf(num, sizeof num, "%" PRId64, ++v);
        if (!put_locked(s, h, k->p, k->len, num, (size_t)n))
            err = "-ERR out of memory\r\n";
    }
    strand_mutex_unlock(&s->lock);
    if (err)
        out_str(c, err);
    else
        out_int(c, v);
}

static void cmd_config(client *c)
{
    if (c->argc == 3 && is_cmd(&c->argv[1], "GET")) {
        /* redis-benchmark asks for "save" and "appendonly": we do neither. */
        const arg *p = &c->argv[2];
        out_str(c, "*2\r\n");
        out_bulk(c, p->p, p->len);
        if (is_cmd(p, "appendonly"))
            out_bulk(c, "no", 2);
        else
            out_bulk(c, "", 0);
        return;
    }
    out_str(c, "-ERR only CONFIG GET is supported\r\n");
}

/* MSET k v [k v ...]: each pair under its own shard lock (not atomic across shards). */
static void cmd_mset(client *c)
{
    for (int i = 1; i + 1 < c->argc; i += 2) {
        const arg *k = &c->argv[i], *v = &c->argv[i + 1];
        uint64_t h = hash_bytes(k->p, k->len);
        shard *s = shard_of(h);
        strand_mutex_lock(&s->lock, STRAND_FOREVER);
        bool ok = put_locked(s, h, k->p, k->len, v->p, v->len);
        strand_mutex_unlock(&s->lock);
        if (!ok) {
            out_str(c, "-ERR out of memory\r\n");
            return;
        }
    }
    out_str(c, "+OK\r\n");
}

static void cmd_type(client *c)
{
    static const char *const names[] = { "+string\r\n", "+list\r\n", "+set\r\n",
                                         "+hash\r\n", "+zset\r\n" };
    const arg *k = &c->argv[1];
    uint64_t h = hash_bytes(k->p, k->len);
    shard *s = shard_of(h);
    strand_mutex_lock(&s->lock, STRAND_FOREVER);
    entry *e = *find_slot(s, h, k->p, k->len);
    const char *t = e ? names[e->type] : "+none\r\n";
    strand_mutex_unlock(&s->lock);
    out_str(c, t);
}

static const kv_command *container_command(const arg *name)
{
    for (const kv_command *k = kv_container_commands; k->name; k++)
        if (is_cmd(name, k->name))
            return k;
    return NULL;
}

/* A list/set/hash/zset command (kv_types.h): arguments checked first, then the key's type;
 * the reply is built under the shard lock and sent after it. A container left empty is
 * deleted with its key, as Redis does. */
static void cmd_container(client *c, const kv_command *k)
{
    kv_reply r;
    kv_reply_init(&r);
    const kv_arg *argv = (const kv_arg *)c->argv;
    if (!k->fn(NULL, argv, c->argc, &r)) {
        out_add(c, r.p, r.len);
        kv_reply_free(&r);
        return;
    }
    const arg *key = &c->argv[1];
    uint64_t h = hash_bytes(key->p, key->len);
    shard *s = shard_of(h);
    strand_mutex_lock(&s->lock, STRAND_FOREVER);
    entry **pp = find_slot(s, h, key->p, key->len);
    entry *e = *pp;
    if (e != NULL && e->type != k->type) {
        strand_mutex_unlock(&s->lock);
        out_str(c, WRONGTYPE);
        return;
    }
    void *obj = e ? e->obj : NULL;
    k->fn(&obj, argv, c->argc, &r);
    if (e == NULL && obj != NULL) { /* the command made the container: a new key */
        e = kv_container_empty(k->type, obj) ? NULL : entry_new(h, key->p, key->len, "", 0);
        if (e == NULL) {
            r.oom |= !kv_container_empty(k->type, obj);
            kv_container_free(k->type, obj);
        } else {
            e->type = (uint8_t)k->type;
            e->obj = obj;
            e->next = NULL;
            *pp = e;
            s->count++;
            maybe_grow(s);
        }
    } else if (e != NULL && kv_container_empty(k->type, obj)) {
        *pp = e->next;
        entry_free(e);
        s->count--;
    }
    strand_mutex_unlock(&s->lock);
    if (r.oom)
        out_str(c, "-ERR out of memory\r\n");
    else
        out_add(c, r.p, r.len);
    kv_reply_free(&r);
}

/* Execute argv; false when the connection should close (QUIT). */
static bool execute(client *c)
{
    if (c->argc == 0)
        return true; /* an empty inline line or *0: nothing to do */
    const arg *cmd = &c->argv[0];
    if (is_cmd(cmd, "PING")) {
        if (arity(c, 1, 2)) {
            if (c->argc == 1)
                out_str(c, "+PONG\r\n");
            else
                out_bulk(c, c->argv[1].p, c->argv[1].len);
        }
    } else if (is_cmd(cmd, "ECHO")) {
        if (arity(c, 2, 2))
            out_bulk(c, c->argv[1].p, c->argv[1].len);
    } else if (is_cmd(cmd, "GET")) {
        if (arity(c, 2, 2))
            cmd_get(c);
    } else if (is_cmd(cmd, "SET")) {
        if (arity(c, 3, -1))
            cmd_set(c);
    } else if (is_cmd(cmd, "DEL")) {
        if (arity(c, 2, -1))
            cmd_del_exists(c, true);
    } else if (is_cmd(cmd, "EXISTS")) {
        if (arity(c, 2, -1))
            cmd_del_exists(c, false);
    } else if (is_cmd(cmd, "INCR")) {
        if (arity(c, 2, 2))
            cmd_incr(c);
    } else if (is_cmd(cmd, "MSET")) {
        if (c->argc >= 3 && c->argc % 2 == 1)
            cmd_mset(c);
        else
            arity_error(c);
    } else if (is_cmd(cmd, "TYPE")) {
        if (arity(c, 2, 2))
            cmd_type(c);
    } else if (is_cmd(cmd, "CONFIG")) {
        cmd_config(c);
    } else if (is_cmd(cmd, "COMMAND")) {
        out_str(c, "*0\r\n");
    } else if (is_cmd(cmd, "QUIT")) {
        out_str(c, "+OK\r\n");
        return false;
    } else {
        const kv_command *k = container_command(cmd);
        if (k == NULL)
            out_err_name(c, "-ERR unknown command '%s'\r\n", cmd);
        else if (arity(c, k->min, k->max))
            cmd_container(c, k);
    }
    return true;
}

/* ---------------------------------------------------------------- the connection's strand */

/* Make room to read more; false if one request would exceed MAX_REQUEST. */
static bool in_room(client *c)
{
    if (c->in_len < c->in_cap)
        return true;
    if (c->in_cap >= MAX_REQUEST)
        return false;
    size_t cap = c->in_cap * 2 > MAX_REQUEST ? MAX_REQUEST : c->in_cap * 2;
    char *p = realloc(c->in, cap);
    if (p == NULL)
        return false;
    c->in = p;
    c->in_cap = cap;
    return true;
}

/* Run every complete request in `in`; false when the connection must close. */
static bool run_requests(client *c)
{
    size_t pos = 0;
    bool keep = true;
    while (keep && pos < c->in_len && !c->dead) {
        size_t used = 0;
        int r = resp_parse(c->argv, &c->argc, &c->perr, c->in + pos, c->in_len - pos, &used);
        if (r == PARSE_MORE)
            break;
        if (r == PARSE_ERR) {
            char msg[96];
            int n = snprintf(msg, sizeof msg, "-ERR Protocol error: %s\r\n", c->perr);
            out_add(c, msg, (size_t)n);
            keep = false;
            break;
        }
        keep = execute(c);
        pos += used;
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    if (c->in_cap > 4 * IN_START && c->in_len < IN_START) { /* give back a big buffer */
        char *p = realloc(c->in, IN_START);
        if (p != NULL) {
            c->in = p;
            c->in_cap = IN_START;
        }
    }
    return keep && !c->dead;
}

static void *serve_client(void *argp)
{
    client *c = calloc(1, sizeof *c);
    int fd = (int)(intptr_t)argp;
    if (c == NULL || (c->in = malloc(IN_START)) == NULL) {
        free(c);
        strand_fd_close(fd);
        return NULL;
    }
    c->fd = fd;
    c->in_cap = IN_START;
    for (;;) {
        if (!run_requests(c))
            break;
        if (!in_room(c)) {
            out_str(c, "-ERR Protocol error: request too large\r\n");
            break;
        }
        flush_out(c); /* every reply to what was read so far, before waiting for more */
        if (c->dead)
            break;
        ssize_t n = strand_read(fd, c->in + c->in_len, c->in_cap - c->in_len, STRAND_FOREVER);
        if (n <= 0)
            break;
        c->in_len += (size_t)n;
    }
    flush_out(c);
    strand_fd_close(fd);
    free(c->in);
    free(c);
    return NULL;
}

static void *accept_loop(void *argp)
{
    int lfd = *(int *)argp;
    strand_attr attr = { .detached = 1, .stack_size = 64 * 1024 };
    for (;;) {
        int fd = strand_accept(lfd, NULL, NULL, STRAND_FOREVER);
        if (fd < 0) {
            if (fd == -ECANCELED || fd == -EBADF)
                break;
            continue; /* strand_accept already backs off when out of descriptors */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (strand_spawn_attr(serve_client, (void *)(intptr_t)fd, &attr) < 0)
            strand_fd_close(fd);
    }
    return NULL;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    printf("kv_server listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s PORT\n"
            "A Redis-protocol (RESP2) key-value server on 127.0.0.1:PORT, one strand per\n"
            "connection; redis-cli and redis-benchmark can talk to it.\n"
            "PORT 0 picks a free port; the one chosen is printed. Stop it with Ctrl-C.\n",
            prog);
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, argv[0]);
        return 0;
    }
    if (argc != 2 || (argv[1][0] == '-' && argv[1][1] != '\0')) {
        if (argc == 2)
            fprintf(stderr, "kv_server: unknown option '%s'\n", argv[1]);
        usage(stderr, argv[0]);
        return 2;
    }
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "kv_server: bad port '%s' (a number from 0 to 65535)\n", argv[1]);
        usage(stderr, argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    store_init();
    int lfd = listen_on((int)port);
    if (lfd < 0) {
        perror("kv_server: listen");
        return 1;
    }
    int rc = strand_run(accept_loop, &lfd, NULL);
    return rc < 0 ? 1 : 0;
}
