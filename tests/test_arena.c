/*
 * test_arena.c - strand_arena_alloc(): NULL outside a strand and for size 0, 16-byte aligned
 * writable memory inside one, large blocks, and every byte freed when the strand ends (no heap
 * growth over 100,000 strands).
 *
 * The heap check uses mallinfo2 (glibc's own allocator); under ASan the allocator is ASan's
 * and LeakSanitizer checks the same thing at exit, so that one assertion is skipped there.
 */
// ctest-timeout: 120
#include "test_util.h"

#include <malloc.h>

static void test_outside_strand_is_null(void **state)
{
    (void)state;
    assert_null(strand_arena_alloc(16));
    assert_null(strand_arena_alloc(0));
}

static void *alloc_checks(void *arg)
{
    (void)arg;
    assert_null(strand_arena_alloc(0));
    assert_null(strand_arena_alloc(SIZE_MAX));
    assert_null(strand_arena_alloc(SIZE_MAX - 8));

    /* Many sizes: each block aligned, writable, and not overlapping the previous one. */
    unsigned char *prev = NULL;
    size_t prev_len = 0;
    for (size_t size = 1; size < 5000; size += 37) {
        unsigned char *p = strand_arena_alloc(size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xA5, size);
        if (prev != NULL) {
            assert_true(p >= prev + prev_len || p + size <= prev);
            for (size_t i = 0; i < prev_len; i++)
                assert_int_equal(prev[i], 0xA5);
        }
        prev = p;
        prev_len = size;
    }

    /* Big blocks get chunks of their own. */
    unsigned char *big = strand_arena_alloc(4 << 20);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 1, 4 << 20);
    unsigned char *small = strand_arena_alloc(24);
    assert_non_null(small);
    assert_int_equal((uintptr_t)small % 16, 0);
    assert_true(small + 24 <= big || small >= big + (4 << 20));
    return (void *)1;
}

static void test_alloc_in_strand(void **state)
{
    (void)state;
    assert_ptr_equal(test_run_strand(alloc_checks, NULL), (void *)1);
}

static void *arena_user(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < n; i++) {
        char *p = strand_arena_alloc(100 + i * 700);
        if (p == NULL)
            return (void *)0;
        p[0] = 1;
    }
    return (void *)1;
}

static void *spawn_many(void *arg)
{
    long total = (long)(intptr_t)arg;
    enum { BATCH = 500 };
    int64_t ids[BATCH];
    for (long done = 0; done < total; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            ids[i] = strand_spawn(arena_user, (void *)(uintptr_t)(1 + i % 4));
            assert_true(ids[i] > 0);
        }
        for (int i = 0; i < BATCH; i++) {
            void *r = NULL;
            assert_int_equal(strand_join(ids[i], &r), 0);
            assert_ptr_equal(r, (void *)1);
        }
    }
    return NULL;
}

static void test_no_growth_over_many_strands(void **state)
{
    (void)state;
    long total = test_scale(100000, 10000);
    /* Warm up: the runtime's own one-time allocations (stack pool, queues) happen here. */
    test_run_strand(spawn_many, (void *)(intptr_t)2000);
#if !defined(STRAND_ASAN) && !defined(STRAND_TSAN)
    struct mallinfo2 before = mallinfo2();
#endif
    test_run_strand(spawn_many, (void *)(intptr_t)total);
#if !defined(STRAND_ASAN) && !defined(STRAND_TSAN)
    struct mallinfo2 after = mallinfo2();
    /* Each strand held 1..4 blocks of up to ~2 KiB: leaking even one chunk per strand would
     * be > 100 MB over the run. Allow 1 MiB for the runtime's own bookkeeping. */
    long growth = (long)after.uordblks - (long)before.uordblks;
    print_message("heap in use: before %zu, after %zu bytes (growth %ld) over %ld strands\n",
                  before.uordblks, after.uordblks, growth, total);
    assert_true(growth < 1024 * 1024);
#endif
}

int main(void)
{
    test_deadline_named("test_arena", 100);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outside_strand_is_null),
        cmocka_unit_test(test_alloc_in_strand),
        cmocka_unit_test(test_no_growth_over_many_strands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
