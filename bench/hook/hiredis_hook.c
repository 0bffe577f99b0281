/*
 * hiredis_hook.c - hiredis's synchronous API through libstrand_hook: 50 strands, each with
 * its own connection, alternate SET and GET against a redis-server on 127.0.0.1:PORT.
 *
 *   hiredis_hook PORT [REQUESTS]     (default 200,000 requests in all, SETs and GETs)
 *
 * Prints RESULT hiredis_hook <requests per second> req/s; bench/run.sh sets it beside
 * redis-benchmark -c 50 -t set,get on the same server in the same run. Every reply is
 * checked (a wrong one fails the run).
 */
#include "bench_util.h"

#include <hiredis/hiredis.h>
#include <strand.h>

#define CLIENTS 50

static int port;
static long per_client;

static void *client(void *arg)
{
    int id = (int)(intptr_t)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err)
        return (void *)1;
    for (long i = 0; i < per_client / 2; i++) {
        redisReply *r = redisCommand(c, "SET key:%d:%ld xxxxxxxxxx", id, i % 100);
        if (r == NULL || r->type != REDIS_REPLY_STATUS)
            return (void *)2;
        freeReplyObject(r);
        r = redisCommand(c, "GET key:%d:%ld", id, i % 100);
        if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 10)
            return (void *)3;
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static void *run(void *arg)
{
    (void)arg;
    int64_t ids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        ids[i] = strand_spawn(client, (void *)(intptr_t)i);
    void *bad = NULL;
    for (int i = 0; i < CLIENTS; i++) {
        void *r = NULL;
        strand_join(ids[i], &r);
        if (r != NULL)
            bad = r;
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    port = atoi(argv[1]);
    long total = argc > 2 ? atol(argv[2]) : 200000;
    per_client = total / CLIENTS;
    int64_t t0 = bench_now_ns();
    void *bad = (void *)-1;
    if (strand_run(run, NULL, &bad) != 0 || bad != NULL) {
        fprintf(stderr, "hiredis_hook: failed (%p)\n", bad);
        return 1;
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    printf("RESULT hiredis_hook %.0f req/s\n", (double)(per_client * CLIENTS) / s);
    return 0;
}
