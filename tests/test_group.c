/*
 * test_group.c - groups: members parked in assorted waits are cancelled together and
 * waited for (deadline 0, a deadline that passes, then 0 once all ended); a member spawned
 * after the cancel is cancelled at once; spawns racing a cancel from two workers; release
 * with members still running; waiting from a plain thread; bad input.
 */
// ctest-timeout: 300
#include "test_util.h"

#include <stdatomic.h>

#define MS 1000000LL

typedef struct shared {
    strand_chan *ch;
    strand_mutex mx;
    atomic_int cancelled, started;
} shared;

static void *member(void *arg)
{
    shared *sh = arg;
    atomic_fetch_add(&sh->started, 1);
    int rc = 0, v;
    char b[4];
    switch (strand_self() % 4) {
    case 0: rc = strand_sleep(100000 * MS); break;
    case 1: rc = strand_chan_recv(sh->ch, &v, STRAND_FOREVER); break;
    case 2: rc = (int)strand_recv(b, sizeof b, NULL, STRAND_FOREVER); break;
    case 3: rc = strand_mutex_lock(&sh->mx, STRAND_FOREVER); break;
    }
    if (rc == -ECANCELED)
        atomic_fetch_add(&sh->cancelled, 1);
    return NULL;
}

static void *group_main(void *arg)
{
    (void)arg;
    shared sh = { 0 };
    assert_int_equal(strand_chan_create(&sh.ch, sizeof(int), 0), 0);
    strand_mutex_init(&sh.mx);
    assert_int_equal(strand_mutex_lock(&sh.mx, STRAND_FOREVER), 0);
    strand_group *g;
    assert_int_equal(strand_group_create(&g), 0);
    assert_int_equal(strand_group_wait(g, 0), 0); /* empty */
    int n = (int)test_scale(1000, 100);
    for (int i = 0; i < n; i++)
        assert_true(strand_group_spawn(g, member, &sh, NULL) > 0);
    while (atomic_load(&sh.started) < n)
        strand_sleep(1 * MS);
    strand_sleep(2 * MS);
    assert_int_equal(strand_group_wait(g, 0), -EAGAIN);
    assert_int_equal(strand_group_wait(g, strand_deadline_in(5 * MS)), -ETIMEDOUT);
    assert_int_equal(strand_group_cancel(g), 0);
    assert_int_equal(strand_group_wait(g, strand_deadline_in(10000 * MS)), 0);
    assert_int_equal(atomic_load(&sh.cancelled), n);
    /* after the cancel, a new member is cancelled at once */
    assert_true(strand_group_spawn(g, member, &sh, NULL) > 0);
    assert_int_equal(strand_group_wait(g, strand_deadline_in(10000 * MS)), 0);
    assert_int_equal(atomic_load(&sh.cancelled), n + 1);
    strand_group_release(g);
    strand_mutex_unlock(&sh.mx);
    strand_chan_release(sh.ch);
    return NULL;
}

static void test_group_cancel_wait(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(group_main, NULL);
}

/* Spawners on both workers race a cancel; every member still ends cancelled. */
typedef struct race {
    strand_group *g;
    shared *sh;
    atomic_int spawned;
} race;

static void *spawner(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 200; i++) {
        if (strand_group_spawn(r->g, member, r->sh, NULL) > 0)
            atomic_fetch_add(&r->spawned, 1);
        if (i % 16 == 0)
            strand_yield();
    }
    return NULL;
}

static void *race_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < test_scale(20, 4); round++) {
        shared sh = { 0 };
        assert_int_equal(strand_chan_create(&sh.ch, sizeof(int), 0), 0);
        strand_mutex_init(&sh.mx);
        assert_int_equal(strand_mutex_lock(&sh.mx, STRAND_FOREVER), 0);
        race r = { .sh = &sh };
        assert_int_equal(strand_group_create(&r.g), 0);
        int64_t a = strand_spawn(spawner, &r), b = strand_spawn(spawner, &r);
        strand_yield();
        assert_int_equal(strand_group_cancel(r.g), 0);
        assert_int_equal(strand_join(a, NULL), 0);
        assert_int_equal(strand_join(b, NULL), 0);
        assert_int_equal(strand_group_wait(r.g, strand_deadline_in(20000 * MS)), 0);
        assert_int_equal(atomic_load(&sh.cancelled), atomic_load(&r.spawned));
        strand_group_release(r.g);
        strand_mutex_unlock(&sh.mx);
        strand_chan_release(sh.ch);
    }
    return NULL;
}

static void test_group_spawn_races_cancel(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(race_main, NULL);
}

static void *sleeper(void *arg)
{
    atomic_int *n = arg;
    if (strand_sleep(100000 * MS) == -ECANCELED)
        atomic_fetch_add(n, 1);
    return NULL;
}

static void test_group_plain_thread(void **state)
{
    (void)state;
    test_deadline(60);
    strand_group *g;
    atomic_int n = 0;
    assert_int_equal(strand_group_create(&g), 0);
    for (int i = 0; i < 50; i++)
        assert_true(strand_group_spawn(g, sleeper, &n, NULL) > 0);
    assert_int_equal(strand_group_wait(g, strand_deadline_in(5 * MS)), -ETIMEDOUT);
    strand_group_release(g); /* cancels and waits */
    assert_int_equal(atomic_load(&n), 50);
    assert_int_equal(strand_wait_all(), 0);
}

static void test_group_bad_input(void **state)
{
    (void)state;
    strand_group *g;
    assert_int_equal(strand_group_create(NULL), -EINVAL);
    assert_int_equal(strand_group_create(&g), 0);
    assert_int_equal(strand_group_spawn(NULL, sleeper, NULL, NULL), -EINVAL);
    assert_int_equal(strand_group_spawn(g, NULL, NULL, NULL), -EINVAL);
    strand_attr bad = { .priority = 99 };
    assert_int_equal(strand_group_spawn(g, sleeper, NULL, &bad), -EINVAL);
    assert_int_equal(strand_group_cancel(NULL), -EINVAL);
    assert_int_equal(strand_group_wait(NULL, 0), -EINVAL);
    assert_int_equal(strand_group_wait(g, 0), 0);
    strand_group_release(NULL);
    strand_group_release(g);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_bad_input),
        cmocka_unit_test(test_group_cancel_wait),
        cmocka_unit_test(test_group_spawn_races_cancel),
        cmocka_unit_test(test_group_plain_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
