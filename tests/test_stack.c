/*
 * test_stack.c - strand stacks (src/stack.c) and what rests on them: stack overflow reports
 * (guarded stacks and canaried ones), the usable size of default, small and large stacks,
 * the internal allocator (guard, canary, lookup of a fault address), stacks coming back
 * from the cold list, no growth in mappings or RSS over a million spawn/join cycles, and a
 * million strands alive at once on a stock kernel (vm.max_map_count 65,530).
 *
 * Structure: every test body runs in a forked child of a parent that never starts a
 * runtime, so each gets a pristine process (a fresh mapping budget above all: the guard
 * pages of one test must not decide whether the next one's stacks are guarded), and a
 * crash fails one test only. Bodies that are meant to crash (the overflow tests) are
 * checked from the parent: signal, and the words of the report on stderr. Inside a child
 * checks are CHECK/CHECK_EQ, never cmocka's assert_* (see test_child.h for why).
 *
 * Part of the `core` set (qemu-aarch64, Valgrind, ucontext): STRAND_TEST_SCALE=small turns
 * the million-strand tests into 100,000 cycles and 200,000 strands.
 */
// ctest-timeout: 300
/* print the child's stderr even when its body passes: runtime warnings stay visible */
#define TEST_CHILD_SHOW_STDERR 1
#include "test_child.h"

#include "internal.h"

#include <stdatomic.h>

/* ---------------------------------------------------------------- /proc figures */

static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* ---------------------------------------------------------------- stack overflow */

/* Recurses until something stops it; the frames are kept (not a tail call) and touched.
 * (`never` is never set: it only tells the compiler the recursion could end.) */
static volatile int never;

__attribute__((noinline)) static int recurse_forever(volatile char *up)
{
    volatile char frame[512];
    frame[0] = up ? up[0] : 1;
    frame[511] = frame[0];
    if (never)
        return 0;
    return recurse_forever(frame) + frame[511];
}

static void *overflow_strand(void *arg)
{
    (void)arg;
    strand__stack *st = strand__current()->stack;
    fprintf(stderr, "overflow-strand id=%lld size=%zu guarded=%d\n", (long long)strand_self(),
            st->size, st->guard != STRAND__GUARD_CANARY);
    fflush(stderr);
    return (void *)(intptr_t)recurse_forever(NULL);
}

static size_t overflow_attr_size;

static void body_overflow(void)
{
    strand_attr a = {.stack_size = overflow_attr_size, .name = "deep"};
    int64_t id = strand_spawn_attr(overflow_strand, NULL, &a);
    CHECK(id > 0);
    strand_join(id, NULL); /* never returns: the process must die */
    fprintf(stderr, "overflow: the strand returned\n");
    _exit(5);
}

/* Pull "id=<n> size=<n>" from what the child printed before it overflowed. */
static void parse_victim(const char *err, long long *id, size_t *size, int *guarded)
{
    const char *p = strstr(err, "overflow-strand id=");
    if (!p || sscanf(p, "overflow-strand id=%lld size=%zu guarded=%d", id, size, guarded) != 3)
        fail_msg("the child did not say which strand overflows:\n%s", err);
}

/* The report names the strand and its stack size, and the process dies by SIGABRT (the
 * report's abort()) or SIGSEGV, as docs say. */
static void check_overflow_report(const test_child *c, int want_guarded)
{
    long long id;
    size_t size;
    int guarded;
    parse_victim(c->err, &id, &size, &guarded);
    if (guarded != want_guarded)
        fail_msg("the overflowing strand's stack is %s, the test wanted %s:\n%s",
                 guarded ? "guarded" : "canaried", want_guarded ? "guarded" : "canaried", c->err);
    char id_text[64], size_text[64];
    snprintf(id_text, sizeof id_text, "strand %lld ", id);
    snprintf(size_text, sizeof size_text, "%zu", size);
    if (!c->signaled || (c->sig != SIGABRT && c->sig != SIGSEGV) ||
        !strstr(c->err, "stack overflow") || !strstr(c->err, id_text) ||
        !strstr(c->err, size_text)) {
        fail_msg("expected death by SIGABRT/SIGSEGV with a report naming \"stack overflow\", "
                 "\"%s\" and \"%s\"; got exited=%d status=%d signaled=%d sig=%d, stderr:\n%s",
                 id_text, size_text, c->exited, c->status, c->signaled, c->sig, c->err);
    }
    const char *line = strstr(c->err, "strand: stack overflow");
    if (line) {
        const char *end = strchr(line, '\n');
        print_message("    (%s) %.*s\n", strsignal(c->sig), end ? (int)(end - line) : 200, line);
    }
}

static void test_overflow_guarded(void **state)
{
    (void)state;
    overflow_attr_size = 0; /* the default stack, from a slab */
    body_spec b = {.body = body_overflow, .cfg = {.workers = 2, .no_signals = 1}, .init = 1};
    test_child c;
    run_body("overflow_guarded", &b, 60, &c);
    check_overflow_report(&c, 1);
}

/* The fallback's guard page (STRAND_GUARD_FALLBACK=1). */
static void test_overflow_guarded_fallback(void **state)
{
    (void)state;
    overflow_attr_size = 0;
    body_spec b = {.body = body_overflow,
                   .cfg = {.workers = 2, .no_signals = 1},
                   .init = 1,
                   .env = "STRAND_GUARD_FALLBACK=1"};
    test_child c;
    run_body("overflow_guarded_fallback", &b, 60, &c);
    check_overflow_report(&c, 1);
}

/* Frames far bigger than a page, written only at their lowest bytes (a big local buffer
 * used a little), as a compiler lays them out without -fstack-clash-protection: the first
 * write past the stack lands up to a frame below it, which a one-page guard would not stop.
 * The guard region is wider than such a frame, so the overflow is still reported. */
__attribute__((noinline)) static int recurse_sparse(volatile char *up)
{
    volatile char frame[16 * 1024];
    frame[0] = up ? up[0] : 1;
    if (never)
        return 0;
    return recurse_sparse(frame) + frame[0];
}

static void *sparse_strand(void *arg)
{
    (void)arg;
    strand__stack *st = strand__current()->stack;
    fprintf(stderr, "overflow-strand id=%lld size=%zu guarded=%d\n", (long long)strand_self(),
            st->size, st->guard != STRAND__GUARD_CANARY);
    fflush(stderr);
    return (void *)(intptr_t)recurse_sparse(NULL);
}

static void body_overflow_sparse(void)
{
    if (strand__stack_guard_mode() != STRAND__GUARD_REGION) {
        fprintf(stderr, "no guard regions on this kernel\n");
        _exit(7);
    }
    int64_t id = strand_spawn(sparse_strand, NULL);
    CHECK(id > 0);
    strand_join(id, NULL);
    fprintf(stderr, "overflow: the strand returned\n");
    _exit(5);
}

static void test_overflow_sparse_frames(void **state)
{
    (void)state;
    body_spec b = {.body = body_overflow_sparse, .cfg = {.workers = 2, .no_signals = 1}, .init = 1};
    test_child c;
    run_body("overflow_sparse_frames", &b, 60, &c);
    if (c.exited && c.status == 7)
        skip();
    check_overflow_report(&c, 1);
}

static void test_overflow_guarded_custom_size(void **state)
{
    (void)state;
    overflow_attr_size = 64 * 1024; /* a mapping of its own */
    body_spec b = {.body = body_overflow, .cfg = {.workers = 1, .no_signals = 1}, .init = 1};
    test_child c;
    run_body("overflow_guarded_custom_size", &b, 60, &c);
    check_overflow_report(&c, 1);
}

/* Canaried: first use up the guard budget with strands that stay alive, then overflow a
 * canaried stack by a few hundred bytes (a deep recursion that comes back): the canary
 * check at the next switch reports it. (A runaway recursion on a canaried stack would run
 * through its neighbours: canaries only catch what they see at a switch.) */
static strand_wg hold;
static atomic_long held_count;

static void *held(void *arg)
{
    (void)arg;
    atomic_fetch_add(&held_count, 1);
    CHECK_EQ(strand_wg_wait(&hold, STRAND_FOREVER), 0);
    return NULL;
}

__attribute__((noinline)) static int recurse_past(uintptr_t lo)
{
    volatile char frame[512];
    memset((char *)frame, 0xA5, sizeof frame);
    if ((uintptr_t)frame > lo - 128)
        return recurse_past(lo) + frame[7];
    return frame[3];
}

/* Spawned until one lands on a canaried stack (the caches and credits of the workers hand
 * out stacks in no particular slab order): a guarded one stays held, so its stack is not
 * reused; the canaried one overflows its canary and comes back. */
static void *canary_overflow_strand(void *arg)
{
    (void)arg;
    strand__stack *st = strand__current()->stack;
    if (st->guard != STRAND__GUARD_CANARY)
        return held(NULL);
    fprintf(stderr, "overflow-strand id=%lld size=%zu guarded=%d\n", (long long)strand_self(),
            st->size, st->guard != STRAND__GUARD_CANARY);
    fflush(stderr);
    recurse_past((uintptr_t)st->lo);
    strand_yield(); /* the switch out checks the canary */
    fprintf(stderr, "canary overflow went unnoticed\n");
    return NULL;
}

static void body_overflow_canary(void)
{
    CHECK_EQ(strand_wg_init(&hold), 0);
    CHECK_EQ(strand_wg_add(&hold, 1), 0);
    struct strand_stats st = {0};
    long spawned = 0;
    /* Until the runtime had to go past its guard budget, plus one slab's worth. */
    while (spawned < 200000) {
        CHECK(strand_spawn(held, NULL) > 0);
        spawned++;
        if (spawned % 64 == 0) {
            strand_stats(&st);
            if (st.stacks_canary > 64)
                break;
        }
    }
    while (atomic_load(&held_count) < spawned)
        usleep(1000);
    fprintf(stderr, "held %ld strands: %llu guarded stacks, %llu canaried\n", spawned,
            (unsigned long long)st.stacks_guarded, (unsigned long long)st.stacks_canary);
    CHECK(st.stacks_canary > 0);
    for (int i = 0; i < 20000; i++) {
        CHECK(strand_spawn(canary_overflow_strand, NULL) > 0);
        usleep(100);
    }
    fprintf(stderr, "overflow: the process survived\n");
    _exit(5);
}

static void test_overflow_canary(void **state)
{
    (void)state;
    if (test_under_valgrind()) /* thousands of stacks, and Valgrind owns SIGSEGV */
        skip();
#if defined(STRAND_TSAN)
    /* TSan counts every strand's fiber as a thread and dies past 8,128 of them, far below
     * the ~16,000 live strands needed to use up the guard budget. */
    skip();
#endif
    body_spec b = {.body = body_overflow_canary,
                   .cfg = {.workers = 2, .no_signals = 1},
                   .init = 1,
                   .env = "STRAND_GUARD_FALLBACK=1"};
    test_child c;
    run_body("overflow_canary", &b, 120, &c);
    check_overflow_report(&c, 0);
}

/* ---------------------------------------------------------------- usable stack */

/* Recurse until `bytes` of stack below `top` are in use (measured by address, so frames
 * made bigger by a sanitizer do not overshoot), touching every frame. */
__attribute__((noinline)) static long use_stack_from(uintptr_t top, long bytes)
{
    volatile char frame[1024];
    frame[0] = 1;
    frame[1023] = 2;
    if ((long)(top - (uintptr_t)frame) + 2048 >= bytes)
        return frame[0] + frame[1023];
    return use_stack_from(top, bytes) + frame[0];
}

__attribute__((noinline)) static long use_stack(long bytes)
{
    volatile char here = 0;
    return use_stack_from((uintptr_t)&here, bytes) + here;
}

static void *use_strand(void *arg)
{
    long bytes = (long)(intptr_t)arg;
    size_t usable = strand__stack_usable(strand__current()->stack);
    CHECK(usable + 4096 >= (size_t)bytes);
    return (void *)(intptr_t)use_stack(bytes);
}

static void *usage_main(void *arg)
{
    (void)arg;
    struct {
        size_t attr;
        long   use;
    } cases[] = {
        {0, 100 * 1024},              /* default 128 KiB */
        {16 * 1024, 8 * 1024},        /* the minimum */
        {64 * 1024, 48 * 1024},
        {1024 * 1024, 900 * 1024},
        {8 * 1024 * 1024, 7 * 1024 * 1024},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strand_attr a = {.stack_size = cases[i].attr};
        int64_t id = strand_spawn_attr(use_strand, (void *)(intptr_t)cases[i].use, &a);
        CHECK(id > 0);
        void *r = NULL;
        CHECK_EQ(strand_join(id, &r), 0);
        CHECK((intptr_t)r > 0);
    }
    return NULL;
}

static void body_stack_usage(void)
{
    run_main(usage_main, NULL);
}

/* ---------------------------------------------------------------- the allocator, directly */

/* The geometry every stack has, whatever guards it: an aligned usable range below its
 * record, writable from bottom to record, and a fault address in its guard naming it. */
static void check_one_stack(strand__stack *s, size_t size, int guard, size_t guard_bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    CHECK_EQ(s->guard, guard);
    CHECK_EQ(s->size, size);
    CHECK_EQ((uintptr_t)s->lo % 16, 0);
    CHECK(strand__stack_usable(s) >= size - 2 * page);
    CHECK(strand__stack_check(s));
    if (guard != STRAND__GUARD_CANARY) {
        CHECK(strand__stack_find((char *)s->lo - 1) == s);
        CHECK(strand__stack_find((char *)s->lo - guard_bytes) == s);
    }
    CHECK(strand__stack_find((char *)s->lo + 8 * page) == NULL);
    CHECK(strand__stack_find(&page) == NULL);
    memset(s->lo, 0x5a, strand__stack_usable(s));
}

/* The guard really stops a write: in a child, write just below the usable range. */
static void check_guard_faults(strand__stack *s, size_t below)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile char *)s->lo)[-(ptrdiff_t)below] = 1;
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
}

/* Guard regions (the default on this kernel): every stack guarded, GUARD_REGION_BYTES wide,
 * at one mapping per slab of 64. */
static void body_stack_alloc(void)
{
    int mode = strand__stack_guard_mode();
    printf("    guard mode: %s\n", mode == STRAND__GUARD_REGION ? "guard regions" : "guard pages");
    if (mode != STRAND__GUARD_REGION) {
        printf("    (this kernel has no MADV_GUARD_INSTALL: only the fallback is tested)\n");
        return;
    }
    strand__stack *s = strand__stack_alloc(0);
    CHECK(s != NULL);
    if (!s)
        return;
    check_one_stack(s, STRAND__STACK_DEFAULT, STRAND__GUARD_REGION, STRAND__GUARD_REGION_BYTES);
    check_guard_faults(s, 1);
    check_guard_faults(s, STRAND__GUARD_REGION_BYTES - 8);
    strand__stack *big = strand__stack_alloc(1024 * 1024);
    CHECK(big != NULL);
    if (big) {
        check_one_stack(big, 1024 * 1024, STRAND__GUARD_REGION, STRAND__GUARD_REGION_BYTES);
        check_guard_faults(big, STRAND__GUARD_REGION_BYTES / 2);
        strand__stack_free(big);
    }
    strand__stack_free(s);
    /* Far past the old guard-page budget: still all guarded, few mappings. */
    enum { MAX = 40000 };
    strand__stack **all = calloc(MAX, sizeof *all);
    CHECK(all != NULL);
    long maps0 = count_maps();
    int n = 0;
    while (n < MAX && (all[n] = strand__stack_alloc(0)) != NULL)
        CHECK_EQ(all[n++]->guard, STRAND__GUARD_REGION);
    CHECK_EQ(n, MAX);
    long maps1 = count_maps();
    struct strand_stats st;
    strand_stats(&st);
    printf("    %d stacks: %llu guarded, %llu canaried, mappings %ld -> %ld\n", n,
           (unsigned long long)st.stacks_guarded, (unsigned long long)st.stacks_canary, maps0,
           maps1);
    CHECK_EQ(st.stacks_canary, 0);
#if !defined(STRAND_TSAN) /* TSan maps shadow memory of its own beside every new mapping */
    CHECK(maps1 <= maps0 + MAX / 64 + 16);
#endif
    for (int i = 0; i < n; i++)
        strand__stack_free(all[i]);
    free(all);
}

/* The fallback (STRAND_GUARD_FALLBACK=1, or a kernel without guard regions): guard pages
 * while the mapping budget lasts, then canaries the check sees overwritten. */
static void body_stack_alloc_fallback(void)
{
    CHECK_EQ(strand__stack_guard_mode(), STRAND__GUARD_PAGE);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    strand__stack *s = strand__stack_alloc(0);
    CHECK(s != NULL);
    if (!s)
        return;
    check_one_stack(s, STRAND__STACK_DEFAULT, STRAND__GUARD_PAGE, page);
    check_guard_faults(s, 1);
    strand__stack *big = strand__stack_alloc(1024 * 1024);
    CHECK(big != NULL);
    if (big) {
        check_one_stack(big, 1024 * 1024, STRAND__GUARD_PAGE, page);
        strand__stack_free(big);
    }
    strand__stack_free(s);

    /* Exhaust the guard budget: past it stacks are canaried, and the canary check sees a
     * write below the usable stack. */
    enum { MAX = 60000 };
    strand__stack **all = calloc(MAX, sizeof *all);
    CHECK(all != NULL);
    strand__stack *canaried = NULL;
    int n = 0;
    while (n < MAX && !canaried) {
        strand__stack *t = strand__stack_alloc(0);
        if (!t)
            break;
        all[n++] = t;
        if (t->guard == STRAND__GUARD_CANARY)
            canaried = t;
    }
    CHECK(canaried != NULL);
    if (canaried) {
        CHECK(strand__stack_check(canaried));
        volatile char *below = (volatile char *)canaried->lo - 5;
        char keep = *below;
        *below = (char)(keep ^ 0x40);
        CHECK(!strand__stack_check(canaried));
        *below = keep;
        CHECK(strand__stack_check(canaried));
        memset(canaried->lo, 0x5a, strand__stack_usable(canaried));
        CHECK(strand__stack_check(canaried)); /* using the whole stack is fine */
        struct strand_stats st;
        strand_stats(&st);
        CHECK(st.stacks_canary > 0);
        CHECK(st.stacks_guarded > 1000);
        printf("    guard budget: %llu guarded stacks before the first canaried one\n",
               (unsigned long long)st.stacks_guarded);
    }
    for (int i = 0; i < n; i++)
        strand__stack_free(all[i]);
    free(all);
}

/* ---------------------------------------------------------------- cold stacks come back */

/*
 * Past pool_capacity a freed stack is dropped to the cold list (its pages handed back);
 * the next spawns reuse it. Its control block must still describe the stack then.
 * With pool_capacity = 1 almost every stack goes cold.
 */
static void *check_own_stack(void *arg)
{
    strand__stack *s = strand__current()->stack;
    CHECK(s->lo != NULL);
    CHECK_EQ(s->size, STRAND__STACK_DEFAULT);
    CHECK((uintptr_t)&s > (uintptr_t)s->lo && (uintptr_t)&s < (uintptr_t)s);
    CHECK(atomic_load(&s->owner) == strand__current());
    CHECK(s->guard != STRAND__GUARD_CANARY || strand__stack_check(s));
    use_stack(32 * 1024);
    return arg;
}

static void *cold_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    CHECK_EQ(strand_wg_init(&hold), 0);
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(strand_wg_add(&hold, 1), 0);
        atomic_store(&held_count, 0);
        for (long i = 0; i < n; i++)
            CHECK((ids[i] = strand_spawn(held, NULL)) > 0);
        while (atomic_load(&held_count) < n)
            strand_sleep(1000000);
        CHECK_EQ(strand_wg_done(&hold), 0);
        for (long i = 0; i < n; i++)
            CHECK_EQ(strand_join(ids[i], NULL), 0);
        for (long i = 0; i < n; i++)
            CHECK((ids[i] = strand_spawn(check_own_stack, (void *)(intptr_t)i)) > 0);
        for (long i = 0; i < n; i++) {
            void *r = NULL;
            CHECK_EQ(strand_join(ids[i], &r), 0);
            CHECK_EQ((intptr_t)r, i);
        }
    }
    free(ids);
    return NULL;
}

static void body_cold_stacks(void)
{
    run_main(cold_main, (void *)(intptr_t)test_scale(2000, 500));
}

static void test_cold_stacks(void **state)
{
    (void)state;
    body_spec b = {.body = body_cold_stacks,
                   .cfg = {.workers = 2, .no_signals = 1, .pool_capacity = 1},
                   .init = 1};
    test_child c;
    run_spec("cold_stacks", &b, 180, &c);
}

/* ---------------------------------------------------------------- a million cycles, no growth */

static void *nothing(void *arg)
{
    return arg;
}

static void cycles(long n)
{
    enum { BATCH = 64 };
    int64_t ids[BATCH];
    for (long done = 0; done < n; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            CHECK((ids[i] = strand_spawn(nothing, (void *)(intptr_t)i)) > 0);
        for (int i = 0; i < BATCH; i++) {
            void *r = NULL;
            CHECK_EQ(strand_join(ids[i], &r), 0);
            CHECK_EQ((intptr_t)r, i);
        }
    }
}

static int growth_checked = 1;

static void *growth_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    cycles(n / 10); /* warm-up: pools, caches, id table */
    long maps0 = count_maps(), rss0 = rss_kib();
    int64_t t0 = strand_now();
    cycles(n / 2);
    long maps1 = count_maps(), rss1 = rss_kib();
    cycles(n - n / 2);
    int64_t ns = strand_now() - t0;
    long maps2 = count_maps(), rss2 = rss_kib();
    printf("    %ld spawn/join cycles: %.1f ns each; mappings %ld -> %ld -> %ld, "
           "RSS %ld -> %ld -> %ld KiB\n",
           n, (double)ns / (double)n, maps0, maps1, maps2, rss0, rss1, rss2);
    CHECK(maps0 > 0 && rss0 > 0);
    if (!growth_checked)
        return NULL;
    /* Small slack: one more guarded slab (64 stacks, 2 mappings each) may be mapped, once,
     * while the two workers' stack caches settle (which of the two phases it falls in is
     * timing); a leak of anything per cycle would show a million times over. */
    CHECK(maps2 <= maps0 + 2 * 64 + 4);
    CHECK(maps1 <= maps0 + 2 * 64 + 4);
    CHECK(rss2 <= rss0 + 4096);
    CHECK(rss1 <= rss0 + 4096);
    return NULL;
}

static void body_no_growth(void)
{
#if defined(STRAND_TSAN)
    /* TSan: a fiber per strand makes a cycle ~1000x slower, and TSan's own allocator
     * grows mappings and RSS; only the cycles themselves are checked. */
    growth_checked = 0;
    run_main(growth_main, (void *)(intptr_t)10000);
#else
    run_main(growth_main, (void *)(intptr_t)test_scale(1000000, 100000));
#endif
}

/* ---------------------------------------------------------------- spawned, not run */

/* Strands spawned but not run yet hold a descriptor and no stack: on one worker, a strand
 * that spawns 100,000 children without yielding grows RSS by about a descriptor and an id
 * slot each (a stack page each would be 400 MiB). */
static void *unrun_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    CHECK(ids != NULL);
    if (!ids)
        return NULL;
    memset(ids, 0, (size_t)n * sizeof *ids); /* its own pages are in rss0 */
    long rss0 = rss_kib();
    for (long i = 0; i < n; i++)
        CHECK((ids[i] = strand_spawn(nothing, NULL)) > 0);
    long rss1 = rss_kib();
    double per = (double)(rss1 - rss0) * 1024.0 / (double)n;
    printf("    %ld strands spawned, none run: RSS +%ld KiB (%.0f bytes each)\n", n, rss1 - rss0,
           per);
#if !defined(STRAND_TSAN) /* TSan's shadow of each descriptor is counted in RSS too */
    if (!test_under_valgrind()) /* so is Valgrind's, and its own bookkeeping per strand */
        CHECK(per < 1024);
#endif
    for (long i = 0; i < n; i++)
        CHECK_EQ(strand_join(ids[i], NULL), 0);
    free(ids);
    return NULL;
}

static void body_unrun_hold_no_stack(void)
{
#if defined(STRAND_TSAN)
    run_main(unrun_main, (void *)(intptr_t)2000); /* a TSan fiber per strand: slow */
#else
    run_main(unrun_main, (void *)(intptr_t)(test_under_valgrind() ? 2000
                                                                   : test_scale(100000, 20000)));
#endif
}

/* ---------------------------------------------------------------- a million alive */

/* 1: the fallback, which must go past its guard budget; 0: guard regions, where every
 * stack must be guarded. */
static int million_needs_canary = 0;

static void *million_main(void *arg)
{
    long n = (long)(intptr_t)arg;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    CHECK(ids != NULL);
    if (!ids)
        return NULL;
    CHECK_EQ(strand_wg_init(&hold), 0);
    CHECK_EQ(strand_wg_add(&hold, 1), 0);
    atomic_store(&held_count, 0);
    long rss0 = rss_kib();
    int64_t t0 = strand_now();
    for (long i = 0; i < n; i++) {
        ids[i] = strand_spawn(held, NULL);
        if (ids[i] <= 0) {
            CHECK(ids[i] > 0);
            fprintf(stderr, "spawn #%ld failed: %lld\n", i, (long long)ids[i]);
            n = i;
            break;
        }
    }
    int64_t limit = strand_now() + 120000000000LL;
    while (atomic_load(&held_count) < n && strand_now() < limit)
        strand_sleep(2000000);
    int64_t t1 = strand_now();
    CHECK_EQ(atomic_load(&held_count), n);
    struct strand_stats st;
    strand_stats(&st);
    long rss1 = rss_kib();
    printf("    %ld strands alive at once: %.0f ns per spawn (to parked), RSS +%ld MiB "
           "(%.0f bytes per strand); %llu guarded stacks, %llu canaried; %ld mappings\n",
           n, (double)(t1 - t0) / (double)n, (rss1 - rss0) / 1024,
           (double)(rss1 - rss0) * 1024.0 / (double)n, (unsigned long long)st.stacks_guarded,
           (unsigned long long)st.stacks_canary, count_maps());
    CHECK(st.peak >= (uint64_t)n);
    CHECK(st.active >= (uint64_t)n);
    if (million_needs_canary)
        CHECK(st.stacks_canary > 0); /* past the guard budget */
    else if (strand__stack_guard_mode() == STRAND__GUARD_REGION)
        CHECK_EQ(st.stacks_canary, 0); /* every stack guarded */
    CHECK_EQ(strand_wg_done(&hold), 0);
    for (long i = 0; i < n; i++)
        CHECK_EQ(strand_join(ids[i], NULL), 0);
    printf("    released and joined them in %.2f s\n", (double)(strand_now() - t1) / 1e9);
    free(ids);
    return NULL;
}

static void body_million_alive(void)
{
#if defined(STRAND_TSAN)
    run_main(million_main, (void *)(intptr_t)4000); /* TSan: at most 8,128 fibers at once */
#else
    run_main(million_main, (void *)(intptr_t)test_scale(1000000, 200000));
#endif
}

/* The fallback past its guard budget: 200,000 strands, most of them canaried. */
static void body_million_alive_fallback(void)
{
#if defined(STRAND_TSAN)
    run_main(million_main, (void *)(intptr_t)4000);
#else
    million_needs_canary = 1;
    run_main(million_main, (void *)(intptr_t)test_scale(200000, 100000));
#endif
}

#define FALLBACK_TEST(name, timeout_s, cond)                                              \
    static void test_##name(void **state)                                                \
    {                                                                                    \
        (void)state;                                                                     \
        if (cond)                                                                        \
            skip();                                                                      \
        body_spec b = {.body = body_##name,                                              \
                       .cfg = {.workers = 2, .no_signals = 1},                           \
                       .init = 1,                                                        \
                       .env = "STRAND_GUARD_FALLBACK=1"};                                \
        test_child c;                                                                    \
        run_spec(#name, &b, (timeout_s), &c);                                            \
    }

BODY_TEST(stack_usage, 2, 60)
BODY_TEST_UNLESS(stack_alloc, 2, 120, test_under_valgrind()) /* too many mappings */
/* Hand-off off: on a loaded machine a worker stalled 10 ms by the OS is handed off, and the
 * spare thread brings a stack of its own and an empty stack cache (a fresh slab), which
 * this mapping count would take for a leak. */
static void test_no_growth(void **state)
{
    (void)state;
    body_spec b = {.body = body_no_growth, .init = 1,
                   .cfg = {.workers = 2, .no_signals = 1, .handoff_ms = -1}};
    test_child c;
    run_spec("no_growth", &b, 240, &c);
}
BODY_TEST(unrun_hold_no_stack, 1, 120)
BODY_TEST_UNLESS(million_alive, 2, 280, test_under_valgrind())
FALLBACK_TEST(stack_alloc_fallback, 120, test_under_valgrind())
FALLBACK_TEST(million_alive_fallback, 200, test_under_valgrind())

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow_guarded),
        cmocka_unit_test(test_overflow_guarded_fallback),
        cmocka_unit_test(test_overflow_sparse_frames),
        cmocka_unit_test(test_overflow_guarded_custom_size),
        cmocka_unit_test(test_overflow_canary),
        cmocka_unit_test(test_stack_usage),
        cmocka_unit_test(test_stack_alloc),
        cmocka_unit_test(test_stack_alloc_fallback),
        cmocka_unit_test(test_cold_stacks),
        cmocka_unit_test(test_no_growth),
        cmocka_unit_test(test_unrun_hold_no_stack),
        cmocka_unit_test(test_million_alive),
        cmocka_unit_test(test_million_alive_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
