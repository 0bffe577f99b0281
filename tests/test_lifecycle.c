/*
 * test_lifecycle.c - a strand's life through the public API: spawn and join at volume, ids
 * (positive, unique, never reused), yield order on one worker, strand_exit from deep in a
 * call chain, every join error (several joiners, unknown / consumed / own / detached ids,
 * deadlines), spawn argument checks, the counters of strand_stats (and spawned == completed +
 * active in every sample taken during churn), restarting the runtime,
 * and the lazy start of the runtime by a spawn from a plain thread.
 *
 * Structure: every test body runs in a forked child with a runtime of its own shape (see
 * test_child.h); the parent never starts a runtime. Inside a child, checks use
 * CHECK/CHECK_EQ, never cmocka's assert_*: cmocka fails by longjmp to the test's thread,
 * which must not happen from a worker thread on a strand stack, nor inside a forked child.
 * A failed CHECK prints where and makes the child exit 1.
 *
 * Part of the `core` set (also run under qemu-aarch64, Valgrind, the ucontext switch):
 * STRAND_TEST_SCALE=small shrinks every loop.
 */
// ctest-timeout: 240
/* print the child's stderr even when its body passes: runtime warnings stay visible */
#define TEST_CHILD_SHOW_STDERR 1
#include "test_child.h"

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---------------------------------------------------------------- spawn / join at volume */

static void *times_three(void *arg)
{
    return (void *)((uintptr_t)arg * 3);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Spawn n strands, keep their ids in ids[], join them all checking the results. */
static void spawn_join_batch(int64_t *ids, long n)
{
    for (long i = 0; i < n; i++) {
        ids[i] = strand_spawn(times_three, (void *)(uintptr_t)(i + 1));
        CHECK(ids[i] > 0);
    }
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        CHECK_EQ(strand_join(ids[i], &r), 0);
        CHECK_EQ((uintptr_t)r, (uintptr_t)(i + 1) * 3);
    }
    /* a consumed id is gone */
    for (long i = 0; i < n; i += 97)
        CHECK_EQ(strand_join(ids[i], NULL), -ESRCH);
}

static void *many_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t *a = malloc((size_t)n * sizeof *a);
    int64_t *b = malloc((size_t)n * sizeof *b);
    int64_t *all = malloc((size_t)n * 2 * sizeof *all);
    CHECK(a && b && all);
    if (!a || !b || !all)
        return NULL;
    spawn_join_batch(a, n);
    spawn_join_batch(b, n); /* after a's slots were freed: ids must still be new */
    memcpy(all, a, (size_t)n * sizeof *a);
    memcpy(all + n, b, (size_t)n * sizeof *b);
    qsort(all, (size_t)n * 2, sizeof *all, cmp_i64);
    long dups = 0;
    for (long i = 1; i < 2 * n; i++)
        dups += all[i] == all[i - 1];
    CHECK_EQ(dups, 0);
    CHECK(all[0] > 0);
    free(a);
    free(b);
    free(all);
    return NULL;
}

static void body_spawn_join_many(void)
{
    long n = test_scale(100000, 20000);
    int64_t t0 = strand_now();
    run_main(many_main, (void *)(intptr_t)n);
    int64_t ns = strand_now() - t0;
    printf("    %ld strands spawned and joined twice: %.1f ns per spawn+join\n", n,
                  (double)ns / (double)(2 * n));
}

/* ---------------------------------------------------------------- yield order, one worker */

static char order_log[64];
static atomic_int order_pos;

static void *order_strand(void *arg)
{
    char me = (char)(intptr_t)arg;
    for (int i = 0; i < 5; i++) {
        int p = atomic_fetch_add(&order_pos, 1);
        if (p < (int)sizeof order_log - 1)
            order_log[p] = me;
        strand_yield();
    }
    return NULL;
}

static void *order_main(void *arg)
{
    (void)arg;
    int64_t ids[3];
    for (int i = 0; i < 3; i++)
        CHECK((ids[i] = strand_spawn(order_strand, (void *)(intptr_t)('A' + i))) > 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(strand_join(ids[i], NULL), 0);
    return NULL;
}

static void run_order(char *out)
{
    memset(order_log, 0, sizeof order_log);
    atomic_store(&order_pos, 0);
    run_main(order_main, NULL);
    memcpy(out, order_log, sizeof order_log);
}

static void body_yield_round_robin(void)
{
    char first[64], second[64];
    run_order(first);
    run_order(second);
    CHECK_EQ(strlen(first), 15);
    /* round robin: every round of three is the same permutation of A, B, C */
    CHECK(first[0] != first[1] && first[1] != first[2] && first[0] != first[2]);
    for (int i = 3; i < 15; i++)
        if (first[i] != first[i - 3]) {
            CHECK(!"round robin");
            fprintf(stderr, "not round robin: %s\n", first);
            break;
        }
    CHECK(strcmp(first, second) == 0); /* and deterministic */
    printf("    order on one worker: %s\n", first);
}

/* ---------------------------------------------------------------- strand_exit deep down */

static atomic_int after_exit_ran;

static void nested(int depth)
{
    volatile char pad[128];
    pad[0] = (char)depth;
    if (depth < 0)
        return;
    if (depth == 0)
        strand_exit((void *)(uintptr_t)0xabcdef);
    nested(depth - 1);
    atomic_fetch_add(&after_exit_ran, 1 + pad[0]); /* never reached */
}

static void *exit_strand(void *arg)
{
    nested((int)(intptr_t)arg);
    atomic_fetch_add(&after_exit_ran, 1);
    return (void *)1;
}

static void *exit_main(void *arg)
{
    (void)arg;
    for (int depth = 0; depth < 60; depth += 7) {
        int64_t id = strand_spawn(exit_strand, (void *)(intptr_t)depth);
        CHECK(id > 0);
        void *r = NULL;
        CHECK_EQ(strand_join(id, &r), 0);
        CHECK_EQ((uintptr_t)r, 0xabcdef);
    }
    return NULL;
}

static void body_exit_nested(void)
{
    atomic_store(&after_exit_ran, 0);
    run_main(exit_main, NULL);
    CHECK_EQ(atomic_load(&after_exit_ran), 0);
}

/* ---------------------------------------------------------------- several joiners */

typedef struct joiner {
    int64_t target;
    int     rc;
    void   *result;
} joiner;

static strand_sem gate;

static void *gated_target(void *arg)
{
    CHECK_EQ(strand_sem_wait(&gate, STRAND_FOREVER), 0);
    return arg;
}

static void *join_it(void *arg)
{
    joiner *j = arg;
    j->result = NULL;
    j->rc = strand_join(j->target, &j->result);
    return NULL;
}

static void *multi_join_main(void *arg)
{
    (void)arg;
    CHECK_EQ(strand_sem_init(&gate, 0), 0);
    int64_t t = strand_spawn(gated_target, (void *)(uintptr_t)0x5151);
    CHECK(t > 0);
    joiner j1 = {.target = t, .rc = 99};
    int64_t id1 = strand_spawn(join_it, &j1);
    CHECK(id1 > 0);
    /* wait until j1 is the registered joiner: then a try-join reports the pending join */
    int64_t limit = strand_now() + 5000000000LL;
    int rc;
    while ((rc = strand_join_until(t, NULL, 0)) == -EAGAIN && strand_now() < limit)
        strand_sleep(100000);
    CHECK_EQ(rc, -EINVAL);
    joiner more[3];
    int64_t mids[3];
    for (int i = 0; i < 3; i++) {
        more[i] = (joiner){.target = t, .rc = 99};
        CHECK((mids[i] = strand_spawn(join_it, &more[i])) > 0);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(strand_join(mids[i], NULL), 0);
        CHECK_EQ(more[i].rc, -EINVAL); /* a join is pending */
    }
    CHECK_EQ(strand_sem_post(&gate), 0);
    CHECK_EQ(strand_join(id1, NULL), 0);
    CHECK_EQ(j1.rc, 0);
    CHECK_EQ((uintptr_t)j1.result, 0x5151);
    /* consumed */
    joiner late = {.target = t, .rc = 99};
    int64_t lid = strand_spawn(join_it, &late);
    CHECK_EQ(strand_join(lid, NULL), 0);
    CHECK_EQ(late.rc, -ESRCH);
    CHECK_EQ(strand_join(t, NULL), -ESRCH);
    return NULL;
}

static void body_join_several_joiners(void)
{
    run_main(multi_join_main, NULL);
}

/* Many joiners racing on a target that ends while they arrive: exactly one wins. */
static void *short_sleeper(void *arg)
{
    strand_sleep(200000);
    return arg;
}

static void *join_race_main(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    enum { J = 8 };
    for (long r = 0; r < rounds; r++) {
        int64_t t = strand_spawn(short_sleeper, (void *)(uintptr_t)(r + 1));
        CHECK(t > 0);
        joiner js[J];
        int64_t ids[J];
        for (int i = 0; i < J; i++) {
            js[i] = (joiner){.target = t, .rc = 99};
            ids[i] = strand_spawn(join_it, &js[i]);
            CHECK(ids[i] > 0);
        }
        int winners = 0;
        for (int i = 0; i < J; i++) {
            CHECK_EQ(strand_join(ids[i], NULL), 0);
            if (js[i].rc == 0) {
                winners++;
                CHECK_EQ((uintptr_t)js[i].result, (uintptr_t)(r + 1));
            } else {
                CHECK(js[i].rc == -EINVAL || js[i].rc == -ESRCH);
            }
        }
        CHECK_EQ(winners, 1);
        CHECK_EQ(strand_join(t, NULL), -ESRCH);
    }
    return NULL;
}

static void body_join_race(void)
{
    run_main(join_race_main, (void *)(intptr_t)test_scale(200, 40));
}

/* ---------------------------------------------------------------- join errors */

static void *return_self(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)strand_self();
}

static void *join_self(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)strand_join(strand_self(), NULL);
}

static void *join_errors_main(void *arg)
{
    (void)arg;
    /* ids never handed out */
    CHECK_EQ(strand_join(0, NULL), -ESRCH);
    CHECK_EQ(strand_join(-5, NULL), -ESRCH);
    CHECK_EQ(strand_join((int64_t)1 << 55, NULL), -ESRCH);
    CHECK_EQ(strand_join(INT64_MAX, NULL), -ESRCH);
    /* own id */
    CHECK_EQ(strand_join(strand_self(), NULL), -EDEADLK);
    int64_t js = strand_spawn(join_self, NULL);
    void *r = NULL;
    CHECK_EQ(strand_join(js, &r), 0);
    CHECK_EQ((intptr_t)r, -EDEADLK);
    /* strand_self inside equals the id spawn gave */
    int64_t s = strand_spawn(return_self, NULL);
    CHECK_EQ(strand_join(s, &r), 0);
    CHECK_EQ((intptr_t)r, s);
    /* joined twice */
    CHECK_EQ(strand_join(s, NULL), -ESRCH);
    CHECK_EQ(strand_detach(s), -ESRCH);

    /* detached at spawn, still alive: -EINVAL; gone after it ends: -ESRCH */
    CHECK_EQ(strand_sem_init(&gate, 0), 0);
    strand_attr da = {.detached = 1};
    int64_t d = strand_spawn_attr(gated_target, NULL, &da);
    CHECK(d > 0);
    CHECK_EQ(strand_join(d, NULL), -EINVAL);
    CHECK_EQ(strand_detach(d), -EINVAL);
    /* detached later */
    int64_t d2 = strand_spawn(gated_target, NULL);
    CHECK(d2 > 0);
    CHECK_EQ(strand_detach(d2), 0);
    CHECK_EQ(strand_join(d2, NULL), -EINVAL);
    /* deadlines: try, then a timed join that expires and leaves the strand joinable */
    int64_t g = strand_spawn(gated_target, (void *)(uintptr_t)77);
    CHECK_EQ(strand_join_until(g, NULL, 0), -EAGAIN);
    CHECK_EQ(strand_join_until(g, NULL, strand_now() + 5000000), -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(strand_sem_post(&gate), 0);
    CHECK_EQ(strand_join_until(g, &r, strand_now() + 5000000000LL), 0);
    CHECK_EQ((uintptr_t)r, 77);
    int64_t limit = strand_now() + 5000000000LL;
    while ((strand_join(d, NULL) != -ESRCH || strand_join(d2, NULL) != -ESRCH) &&
           strand_now() < limit)
        strand_sleep(1000000);
    CHECK_EQ(strand_join(d, NULL), -ESRCH);
    CHECK_EQ(strand_join(d2, NULL), -ESRCH);
    /* a finished joinable strand can be detached (that frees it) */
    int64_t z = strand_spawn(return_self, NULL);
    strand_sleep(2000000);
    CHECK_EQ(strand_detach(z), 0);
    limit = strand_now() + 5000000000LL;
    while (strand_join(z, NULL) == -EINVAL && strand_now() < limit)
        strand_sleep(1000000);
    CHECK_EQ(strand_join(z, NULL), -ESRCH);
    return NULL;
}

static void body_join_errors(void)
{
    run_main(join_errors_main, NULL);
    /* and from a plain thread */
    CHECK_EQ(strand_join(1234567, NULL), -ESRCH);
    int64_t id = strand_spawn(times_three, (void *)(uintptr_t)5);
    CHECK(id > 0);
    void *r = NULL;
    CHECK_EQ(strand_join(id, &r), 0);
    CHECK_EQ((uintptr_t)r, 15);
    CHECK_EQ(strand_join(id, &r), -ESRCH);
    CHECK_EQ(strand_self(), 0);
}

/* ---------------------------------------------------------------- spawn argument checks */

static void *spawn_errors_main(void *arg)
{
    (void)arg;
    CHECK_EQ(strand_spawn(NULL, NULL), -EINVAL);
    strand_attr a = {.stack_size = 1};
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a.stack_size = (size_t)1 << 40;
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a.stack_size = 16 * 1024 - 1;
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a = (strand_attr){.priority = 4};
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a = (strand_attr){.priority = -1};
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a = (strand_attr){.worker = -1};
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a = (strand_attr){.worker = 3}; /* two workers */
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    /* the limits themselves are fine; a NULL attr is the default */
    a = (strand_attr){.stack_size = 16 * 1024, .name = "a-rather-long-name-that-gets-cut-at-31"};
    int64_t id = strand_spawn_attr(times_three, (void *)(uintptr_t)2, &a);
    CHECK(id > 0);
    void *r = NULL;
    CHECK_EQ(strand_join(id, &r), 0);
    CHECK_EQ((uintptr_t)r, 6);
    id = strand_spawn_attr(times_three, (void *)(uintptr_t)3, NULL);
    CHECK_EQ(strand_join(id, &r), 0);
    CHECK_EQ((uintptr_t)r, 9);
    return NULL;
}

static void body_spawn_errors(void)
{
    run_main(spawn_errors_main, NULL);
    /* the same from a plain thread */
    CHECK_EQ(strand_spawn(NULL, NULL), -EINVAL);
    strand_attr a = {.stack_size = 1};
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
    a.stack_size = (size_t)1 << 40;
    CHECK_EQ(strand_spawn_attr(times_three, NULL, &a), -EINVAL);
}

static void *name_strand(void *arg)
{
    char *out = arg;
    snprintf(out, 64, "%s", strand_name());
    return NULL;
}

static void body_names(void)
{
    char got[64] = "x", got2[64] = "x";
    strand_attr a = {.name = "a-rather-long-name-that-gets-cut-at-31"};
    int64_t id = strand_spawn_attr(name_strand, got, &a);
    CHECK(id > 0);
    CHECK_EQ(strand_join(id, NULL), 0);
    CHECK(strcmp(got, "a-rather-long-name-that-gets-cu") == 0); /* 31 bytes */
    id = strand_spawn(name_strand, got2);
    CHECK_EQ(strand_join(id, NULL), 0);
    CHECK(strcmp(got2, "") == 0);
    CHECK(strcmp(strand_name(), "") == 0); /* a plain thread */
}

/* ---------------------------------------------------------------- strand_stats */

static strand_wg hold;
static struct strand_stats stats_before, inside;

static void *held(void *arg)
{
    (void)arg;
    CHECK_EQ(strand_wg_wait(&hold, STRAND_FOREVER), 0);
    return NULL;
}

static void *stats_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    CHECK(ids != NULL);
    CHECK_EQ(strand_wg_init(&hold), 0);
    CHECK_EQ(strand_wg_add(&hold, 1), 0);
    for (long i = 0; i < n; i++)
        CHECK((ids[i] = strand_spawn(held, NULL)) > 0);
    /* wait until every held strand has parked on the wait group */
    int64_t limit = strand_now() + 10000000000LL;
    do {
        strand_sleep(1000000);
        CHECK_EQ(strand_stats(&inside), 0);
    } while (inside.parks - stats_before.parks < (uint64_t)n && strand_now() < limit);
    CHECK(inside.parks - stats_before.parks >= (uint64_t)n);
    CHECK_EQ(strand_wg_done(&hold), 0);
    for (long i = 0; i < n; i++)
        CHECK_EQ(strand_join(ids[i], NULL), 0);
    free(ids);
    return NULL;
}

static void body_stats_counters(void)
{
    long n = test_scale(5000, 1000);
    struct strand_stats a, b;
    CHECK_EQ(strand_stats(&a), 0);
    stats_before = a;
    CHECK_EQ(a.workers, 2);
    CHECK_EQ(a.active, 0);
    run_main(stats_main, (void *)(intptr_t)n);
    CHECK_EQ(strand_stats(&b), 0);
    /* n held strands plus the main one */
    CHECK_EQ(b.spawned - a.spawned, (uint64_t)n + 1);
    CHECK_EQ(b.completed - a.completed, (uint64_t)n + 1);
    CHECK_EQ(b.active, 0);
    CHECK_EQ(b.spawned - b.completed, 0);
    CHECK(b.peak >= (uint64_t)n + 1);
    CHECK(b.switches - a.switches >= (uint64_t)n + 1);
    CHECK(b.parks - a.parks >= (uint64_t)n); /* each held strand parked on the wg */
    /* while they were all alive */
    CHECK_EQ(inside.active, (uint64_t)n + 1 + a.active);
    CHECK(inside.peak >= (uint64_t)n + 1);
    CHECK(inside.stack_bytes > 0);
    CHECK(inside.stacks_guarded + inside.stacks_canary >= (uint64_t)n + 1);
    CHECK_EQ(strand_stats(NULL), -EINVAL);
}

/* ---------------------------------------------------------------- restart */

static void *count_workers(void *arg)
{
    (void)arg;
    struct strand_stats st;
    strand_stats(&st);
    return (void *)(intptr_t)st.workers;
}

/* strand_shutdown then strand_init starts a runtime of another shape, which runs strands
 * and finishes strand_run (runtime.c promises restarts; tests elsewhere rely on them). */
static void body_restart(void)
{
    for (int round = 0; round < 6; round++) {
        int w = 1 + round % 2;
        strand_config cfg = {.workers = w, .no_signals = 1};
        CHECK_EQ(strand_init(&cfg), 0);
        CHECK_EQ(strand_init(&cfg), -EALREADY);
        CHECK_EQ((intptr_t)run_main(count_workers, NULL), w);
        int64_t id = strand_spawn(times_three, (void *)(uintptr_t)round);
        void *r = NULL;
        CHECK_EQ(strand_join(id, &r), 0);
        CHECK_EQ((uintptr_t)r, (uintptr_t)round * 3);
        struct strand_stats st;
        strand_stats(&st);
        CHECK_EQ(st.active, 0);
        strand_shutdown();
        printf("    restart round %d (%d workers): ok\n", round, w);
        fflush(stdout);
    }
    strand_shutdown(); /* twice is harmless */
}

/* ---------------------------------------------------------------- lazy start */

static void *lazy_thread(void *arg)
{
    (void)arg;
    int64_t id = strand_spawn(times_three, (void *)(uintptr_t)14);
    CHECK(id > 0);
    void *r = NULL;
    CHECK_EQ(strand_join(id, &r), 0);
    CHECK_EQ((uintptr_t)r, 42);
    struct strand_stats st;
    CHECK_EQ(strand_stats(&st), 0);
    CHECK(st.workers >= 1);
    CHECK(st.spawned >= 1);
    CHECK_EQ(strand_self(), 0);
    return NULL;
}

/* Nothing has started a runtime in this child: a spawn from a plain thread must. */
static void body_lazy_start(void)
{
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, lazy_thread, NULL), 0);
    pthread_join(t, NULL);
}

/* ---------------------------------------------------------------- a consistent snapshot */

/* Every strand_stats taken during churn on two workers (strands spawning children that
 * spawn and join their own, from strands and from a plain thread) must show
 * spawned == completed + active, with active never above spawned; samplers run both on a
 * plain thread and in a strand. */
static atomic_int churn_stop;
static atomic_long bad_samples, samples;

static void *churn_leaf(void *arg)
{
    return arg;
}

static void *churn_node(void *arg)
{
    int64_t kids[4];
    for (int i = 0; i < 4; i++)
        CHECK((kids[i] = strand_spawn(churn_leaf, arg)) > 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(strand_join(kids[i], NULL), 0);
    return arg;
}

static void *churner(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        int64_t ids[16];
        for (int i = 0; i < 16; i++)
            CHECK((ids[i] = strand_spawn(i % 2 ? churn_node : churn_leaf, NULL)) > 0);
        for (int i = 0; i < 16; i++)
            CHECK_EQ(strand_join(ids[i], NULL), 0);
    }
    return NULL;
}

static void sample_once(void)
{
    struct strand_stats st;
    CHECK_EQ(strand_stats(&st), 0);
    atomic_fetch_add(&samples, 1);
    if (st.spawned != st.completed + st.active || st.active > st.spawned ||
        st.peak < st.active) {
        if (atomic_fetch_add(&bad_samples, 1) < 5)
            fprintf(stderr, "inconsistent: spawned %llu completed %llu active %llu peak %llu\n",
                    (unsigned long long)st.spawned, (unsigned long long)st.completed,
                    (unsigned long long)st.active, (unsigned long long)st.peak);
    }
}

static void *strand_sampler(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        sample_once();
        if (i % 64 == 0)
            strand_yield();
    }
    return NULL;
}

static void *thread_sampler(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        sample_once();
    return NULL;
}

static void *thread_spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        int64_t id = strand_spawn(churn_node, NULL);
        CHECK(id > 0);
        CHECK_EQ(strand_join(id, NULL), 0);
    }
    return NULL;
}

static void *consistent_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t churn[3];
    for (int i = 0; i < 3; i++)
        CHECK((churn[i] = strand_spawn(churner, NULL)) > 0);
    pthread_t th[2];
    CHECK_EQ(pthread_create(&th[0], NULL, thread_sampler, (void *)(intptr_t)n), 0);
    CHECK_EQ(pthread_create(&th[1], NULL, thread_spawner, NULL), 0);
    int64_t sid = strand_spawn(strand_sampler, (void *)(intptr_t)(n / 4));
    CHECK(sid > 0);
    CHECK_EQ(strand_join(sid, NULL), 0);
    pthread_join(th[0], NULL);
    atomic_store(&churn_stop, 1);
    pthread_join(th[1], NULL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(strand_join(churn[i], NULL), 0);
    return NULL;
}

static void body_stats_consistent(void)
{
    run_main(consistent_main, (void *)(intptr_t)test_scale(200000, 20000));
    struct strand_stats st;
    CHECK_EQ(strand_stats(&st), 0);
    printf("    %ld samples during churn (%llu strands spawned), %ld inconsistent\n",
           atomic_load(&samples), (unsigned long long)st.spawned, atomic_load(&bad_samples));
    CHECK_EQ(atomic_load(&bad_samples), 0);
    CHECK(st.spawned > 1000);
    CHECK_EQ(st.active, 0);
}

BODY_TEST(lazy_start, 0, 60)
BODY_TEST(spawn_join_many, 2, 180)
BODY_TEST(yield_round_robin, 1, 30)
BODY_TEST(exit_nested, 2, 30)
BODY_TEST(join_several_joiners, 2, 30)
BODY_TEST(join_race, 2, 60)
BODY_TEST(join_errors, 2, 30)
BODY_TEST(spawn_errors, 2, 30)
BODY_TEST(names, 2, 30)
BODY_TEST(stats_counters, 2, 60)
BODY_TEST(stats_consistent, 2, 120)
BODY_TEST(restart, 0, 20)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_start),
        cmocka_unit_test(test_spawn_join_many),
        cmocka_unit_test(test_yield_round_robin),
        cmocka_unit_test(test_exit_nested),
        cmocka_unit_test(test_join_several_joiners),
        cmocka_unit_test(test_join_race),
        cmocka_unit_test(test_join_errors),
        cmocka_unit_test(test_spawn_errors),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_stats_counters),
        cmocka_unit_test(test_stats_consistent),
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
