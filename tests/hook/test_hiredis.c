/*
 * test_hiredis.c - hiredis (Debian's libhiredis, unmodified), synchronous API, through
 * libstrand_hook, against a redis-server this test starts on a free loopback port:
 *  - 1,000 strands on ONE worker each BLPOP their own key with a 5 s timeout while another
 *    strand RPUSHes to every key: all 1,000 get their value (without the hook the first
 *    BLPOP holds the only worker, and the pusher never runs);
 *  - 200 strands x 1,000 SET/GET pairs (STRAND_TEST_SCALE=small: 100), every reply checked.
 */
// ctest-timeout: 300
// ctest-label: serial
#include "test_util.h"
#include "server_util.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>

#define MS 1000000LL

static int port;

#define BLOCKERS 1000

static atomic_int waiting, got;

static void *blocker(void *arg)
{
    int i = (int)(intptr_t)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        print_error("connect %d: %s\n", i, c ? c->errstr : "no memory");
        return (void *)1;
    }
    atomic_fetch_add(&waiting, 1);
    redisReply *r = redisCommand(c, "BLPOP strand:key:%d 5", i);
    void *res = (void *)2;
    char want[32];
    snprintf(want, sizeof want, "value %d", i);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, want) == 0) {
        atomic_fetch_add(&got, 1);
        res = NULL;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return res;
}

static void *pusher(void *arg)
{
    (void)arg;
    /* Let the blockers get into BLPOP first (they need not all be: a value pushed before
     * its BLPOP is taken at once). strand_sleep, not usleep: the pusher must let the
     * blockers run whether or not the hook works, so that without it the first BLPOP
     * holds the worker and the test fails. */
    for (int i = 0; i < 400 && atomic_load(&waiting) < BLOCKERS; i++)
        strand_sleep(20 * MS);
    strand_sleep(100 * MS);
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err)
        return (void *)1;
    for (int i = 0; i < BLOCKERS; i++) {
        redisReply *r = redisCommand(c, "RPUSH strand:key:%d %s%d", i, "value ", i);
        if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
            redisFree(c);
            return (void *)2;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static void *blpop_main(void *arg)
{
    (void)arg;
    static int64_t ids[BLOCKERS];
    int64_t t0 = strand_now();
    for (int i = 0; i < BLOCKERS; i++) {
        ids[i] = strand_spawn(blocker, (void *)(intptr_t)i);
        assert_true(ids[i] > 0);
    }
    int64_t p = strand_spawn(pusher, NULL);
    void *res = (void *)-1;
    assert_int_equal(strand_join(p, &res), 0);
    assert_null(res);
    int bad = 0;
    for (int i = 0; i < BLOCKERS; i++) {
        res = (void *)-1;
        assert_int_equal(strand_join(ids[i], &res), 0);
        bad += res != NULL;
    }
    print_message("hiredis BLPOP: %d of %d strands got their value on one worker in %.2f s\n",
                  atomic_load(&got), BLOCKERS, (strand_now() - t0) / 1e9);
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&got), BLOCKERS);
    return NULL;
}

static void test_blpop_thousand(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(blpop_main, NULL);
}

#define SETTERS 200

static long pairs_per_strand;
static atomic_long checked;

static void *setter(void *arg)
{
    int i = (int)(intptr_t)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err)
        return (void *)1;
    void *res = NULL;
    for (long j = 0; j < pairs_per_strand && res == NULL; j++) {
        char val[64];
        snprintf(val, sizeof val, "v-%d-%ld", i, j);
        redisReply *r = redisCommand(c, "SET k:%d:%ld %s", i, j % 16, val);
        if (r == NULL || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
            res = (void *)2;
        if (r != NULL)
            freeReplyObject(r);
        if (res != NULL)
            break;
        r = redisCommand(c, "GET k:%d:%ld", i, j % 16);
        if (r == NULL || r->type != REDIS_REPLY_STRING || strcmp(r->str, val) != 0)
            res = (void *)3;
        else
            atomic_fetch_add(&checked, 1);
        if (r != NULL)
            freeReplyObject(r);
    }
    redisFree(c);
    return res;
}

static void *setget_main(void *arg)
{
    (void)arg;
    int64_t ids[SETTERS];
    int64_t t0 = strand_now();
    for (int i = 0; i < SETTERS; i++)
        ids[i] = strand_spawn(setter, (void *)(intptr_t)i);
    int bad = 0;
    for (int i = 0; i < SETTERS; i++) {
        void *res = (void *)-1;
        assert_int_equal(strand_join(ids[i], &res), 0);
        bad += res != NULL;
    }
    double s = (strand_now() - t0) / 1e9;
    print_message("hiredis SET/GET: %d strands x %ld pairs, %ld replies checked, %.0f req/s\n",
                  SETTERS, pairs_per_strand, atomic_load(&checked),
                  2.0 * (double)atomic_load(&checked) / s);
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&checked), SETTERS * pairs_per_strand);
    return NULL;
}

static void test_setget(void **state)
{
    (void)state;
    test_deadline(240);
    test_run_strand(setget_main, NULL);
}

int main(void)
{
    raise_nofile();
    port = server_free_port();
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    char *argv[] = { REDIS_SERVER, "--port", portstr, "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--maxclients", "4000", "--loglevel", "warning",
                     "--protected-mode", "no", "--logfile", "/dev/null", NULL };
    if (port <= 0 || server_start(argv, port) != 0) {
        fprintf(stderr, "test_hiredis: could not start %s\n", REDIS_SERVER);
        return 1;
    }
    pairs_per_strand = test_scale(1000, 100);
    strand_config cfg = { .workers = 1 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blpop_thousand),
        cmocka_unit_test(test_setget),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    server_stop();
    return rc;
}
