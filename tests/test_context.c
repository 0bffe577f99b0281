/*
 * test_context.c - the context switch on its own (src/context.h), without the runtime:
 * first entry, ping-pong, a ring of contexts, stack alignment of a new context, the
 * callee-saved registers of the ABI across a switch (checked from assembly, so the compiler
 * cannot hide a clobber), and the floating-point control state (rounding mode, MXCSR on
 * x86_64) being per context.
 *
 * Part of the `core` set: it also runs under qemu-aarch64 and with the ucontext back end,
 * so everything here is portable (the register test has an x86_64 and an aarch64 body) and
 * fast. Contexts live on mmap'ed stacks owned by each test; a context that never finishes
 * (an entry must not return) is simply dropped with its stack. Only the test's own thread
 * touches them.
 *
 * Sanitizers: with ASan or TSan built in (STRAND_ASAN / STRAND_TSAN), every switch here is
 * announced to the sanitizer exactly as the runtime does it, via tswitch().
 */
// ctest-timeout: 60
#include "test_util.h"
#if defined(STRAND_VALGRIND)
#include <valgrind/valgrind.h>
#endif

#include "context.h"

#include <fenv.h>
#include <stdatomic.h>
#include <sys/mman.h>

#if defined(STRAND_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(STRAND_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void  __tsan_destroy_fiber(void *fiber);
void  __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#define STACK_SIZE (128 * 1024)

/* ---------------------------------------------------------------- contexts with sanitizer notes */

typedef struct tctx {
    strand__ctx c;
    void       *lo;    /* stack bounds (NULL for the thread's own stack until learnt) */
    size_t      size;
    void       *fiber; /* TSan */
    void       *fake;  /* ASan fake stack */
    unsigned    vg_id; /* Valgrind's stack id */
} tctx;

static tctx t_main;

static void tctx_init_main(void)
{
    memset(&t_main, 0, sizeof t_main);
#if defined(STRAND_TSAN)
    t_main.fiber = __tsan_get_current_fiber();
#endif
}

static void tctx_make(tctx *t, strand__ctx_entry entry, void *arg)
{
    memset(t, 0, sizeof *t);
    t->size = STACK_SIZE;
    t->lo = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(t->lo != MAP_FAILED);
    strand__ctx_make(&t->c, t->lo, t->size, entry, arg);
#if defined(STRAND_TSAN)
    t->fiber = __tsan_create_fiber(0);
#endif
#if defined(STRAND_VALGRIND)
    t->vg_id = VALGRIND_STACK_REGISTER(t->lo, (char *)t->lo + t->size);
#endif
}

static void tctx_drop(tctx *t)
{
#if defined(STRAND_TSAN)
    if (t->fiber)
        __tsan_destroy_fiber(t->fiber);
#endif
#if defined(STRAND_VALGRIND)
    VALGRIND_STACK_DEREGISTER(t->vg_id);
#endif
    munmap(t->lo, t->size);
    t->lo = NULL;
}

/* Tell the sanitizers we are about to leave `from` for `to` (call right before a switch). */
static inline void tswitch_begin(tctx *from, tctx *to)
{
#if defined(STRAND_ASAN)
    __sanitizer_start_switch_fiber(&from->fake, to->lo, to->size);
#endif
#if defined(STRAND_TSAN)
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    (void)from;
    (void)to;
}

/* ...and that we are back in `self` (call right after a switch returns, or at first entry
 * with self->fake == NULL). Learns the bounds of the context we came from. */
static inline void tswitch_end(tctx *self, tctx *came_from)
{
#if defined(STRAND_ASAN)
    const void *lo = NULL;
    size_t size = 0;
    __sanitizer_finish_switch_fiber(self->fake, &lo, &size);
    if (came_from && !came_from->lo) {
        came_from->lo = (void *)lo;
        came_from->size = size;
    }
#endif
    (void)self;
    (void)came_from;
}

static void tswitch(tctx *from, tctx *to)
{
    tswitch_begin(from, to);
    strand__ctx_switch(&from->c, &to->c);
    tswitch_end(from, NULL);
}

/* ---------------------------------------------------------------- ping-pong */

static tctx t_a, t_b;
static volatile long counter;
static void *entry_arg_seen;

static void pingpong_entry(void *arg)
{
    tswitch_end(&t_a, &t_main);
    entry_arg_seen = arg;
    for (;;) {
        counter++;
        tswitch(&t_a, &t_main);
    }
}

static void test_pingpong(void **state)
{
    (void)state;
    test_deadline(30);
    tctx_init_main();
    counter = 0;
    entry_arg_seen = NULL;
    tctx_make(&t_a, pingpong_entry, (void *)&t_a);
    long n = test_scale(100000, 10000);
    for (long i = 0; i < n; i++) {
        tswitch(&t_main, &t_a);
        assert_int_equal(counter, i + 1);
    }
    assert_ptr_equal(entry_arg_seen, &t_a);
    tctx_drop(&t_a);
}

/* ---------------------------------------------------------------- a ring of contexts */

#define RING 16
static tctx ring[RING];
static char ring_log[RING * 4 + 1];
static int ring_pos;
static int ring_rounds;

static void ring_entry(void *arg)
{
    int me = (int)(intptr_t)arg;
    tswitch_end(&ring[me], me == 0 ? &t_main : &ring[me - 1]);
    for (int r = 0; r < ring_rounds; r++) {
        ring_log[ring_pos++] = (char)('a' + me);
        tctx *next = me == RING - 1 ? (r == ring_rounds - 1 ? &t_main : &ring[0]) : &ring[me + 1];
        tswitch(&ring[me], next);
    }
    /* the last round of the last context went back to main: nobody resumes us */
    for (;;)
        tswitch(&ring[me], &t_main);
}

static void test_ring(void **state)
{
    (void)state;
    test_deadline(30);
    tctx_init_main();
    ring_pos = 0;
    ring_rounds = 4;
    memset(ring_log, 0, sizeof ring_log);
    for (int i = 0; i < RING; i++)
        tctx_make(&ring[i], ring_entry, (void *)(intptr_t)i);
    tswitch(&t_main, &ring[0]);
    char want[RING * 4 + 1];
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < RING; i++)
            want[r * RING + i] = (char)('a' + i);
    want[RING * 4] = '\0';
    assert_string_equal(ring_log, want);
    for (int i = 0; i < RING; i++)
        tctx_drop(&ring[i]);
}

/* ---------------------------------------------------------------- a fresh context's stack */

static uintptr_t frame_seen;
static char fmt_seen[64];
static int deep_sum_seen;

__attribute__((noinline)) static int deep_use(int depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[1023] = (char)depth;
    if (depth == 0)
        return buf[0] + buf[1023];
    return deep_use(depth - 1) + buf[0] - buf[1023] + 1;
}

static void align_entry(void *arg)
{
    (void)arg;
    tswitch_end(&t_a, &t_main);
    frame_seen = (uintptr_t)__builtin_frame_address(0);
    /* varargs with doubles: glibc's printf uses aligned SSE stores on x86_64 and crashes on
     * a misaligned stack */
    volatile double d = 2.5;
    snprintf(fmt_seen, sizeof fmt_seen, "%.3f %Lf", d, (long double)d);
    deep_sum_seen = deep_use(80); /* ~90 KiB of a 128 KiB stack */
    for (;;)
        tswitch(&t_a, &t_main);
}

static void test_new_context_stack(void **state)
{
    (void)state;
    test_deadline(30);
    tctx_init_main();
    frame_seen = 1;
    tctx_make(&t_a, align_entry, NULL);
    tswitch(&t_main, &t_a);
    /* With frame pointers (always on in this build) the frame address is the saved frame
     * pointer slot, 16-aligned when the ABI's call alignment was kept. */
    assert_int_equal(frame_seen % 16, 0);
    assert_true(frame_seen > (uintptr_t)t_a.lo && frame_seen < (uintptr_t)t_a.lo + t_a.size);
    assert_string_equal(fmt_seen, "2.500 2.500000");
    assert_int_equal(deep_sum_seen, 80);
#if !defined(STRAND_CTX_UCONTEXT)
    /* a switched-out context tells where a backtrace would start */
    assert_true(strand__ctx_pc(&t_a.c) != 0);
    uintptr_t fp = strand__ctx_fp(&t_a.c);
    assert_true(fp > (uintptr_t)t_a.lo && fp < (uintptr_t)t_a.lo + t_a.size);
#endif
    tctx_drop(&t_a);
}

/* ---------------------------------------------------------------- callee-saved registers */

/*
 * test_regs_switch(from, to, vals, out): load the callee-saved registers from vals[], call
 * strand__ctx_switch(from, to), and when something switches back, store the same registers
 * into out[]. It preserves them for its own C caller (pushed on entry), so the compiler
 * sees an ordinary function. Written in assembly: inline asm could not stop the compiler
 * from using those registers between our "set" and our "check".
 */
#if defined(__x86_64__)
#define NREGS 6 /* rbx rbp r12 r13 r14 r15 */
__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "    .type test_regs_switch, @function\n"
    "test_regs_switch:\n"
    "    pushq %rbx\n"
    "    pushq %rbp\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    pushq %rcx\n" /* out; rsp is now 16-aligned, as the call needs */
    "    movq 0(%rdx), %rbx\n"
    "    movq 8(%rdx), %rbp\n"
    "    movq 16(%rdx), %r12\n"
    "    movq 24(%rdx), %r13\n"
    "    movq 32(%rdx), %r14\n"
    "    movq 40(%rdx), %r15\n"
    "    call strand__ctx_switch@PLT\n"
    "    popq %rcx\n"
    "    movq %rbx, 0(%rcx)\n"
    "    movq %rbp, 8(%rcx)\n"
    "    movq %r12, 16(%rcx)\n"
    "    movq %r13, 24(%rcx)\n"
    "    movq %r14, 32(%rcx)\n"
    "    movq %r15, 40(%rcx)\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbp\n"
    "    popq %rbx\n"
    "    ret\n"
    "    .size test_regs_switch, .-test_regs_switch\n");
#define HAVE_REGS_TEST 1
#elif defined(__aarch64__)
#define NREGS 18 /* x19-x28, then d8-d15 as raw bits */
__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "    .type test_regs_switch, %function\n"
    "test_regs_switch:\n"
    "    stp x29, x30, [sp, #-176]!\n"
    "    mov x29, sp\n"
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    str x3, [sp, #160]\n"
    "    ldp x19, x20, [x2, #0]\n"
    "    ldp x21, x22, [x2, #16]\n"
    "    ldp x23, x24, [x2, #32]\n"
    "    ldp x25, x26, [x2, #48]\n"
    "    ldp x27, x28, [x2, #64]\n"
    "    ldp d8, d9, [x2, #80]\n"
    "    ldp d10, d11, [x2, #96]\n"
    "    ldp d12, d13, [x2, #112]\n"
    "    ldp d14, d15, [x2, #128]\n"
    "    bl strand__ctx_switch\n"
    "    ldr x3, [sp, #160]\n"
    "    stp x19, x20, [x3, #0]\n"
    "    stp x21, x22, [x3, #16]\n"
    "    stp x23, x24, [x3, #32]\n"
    "    stp x25, x26, [x3, #48]\n"
    "    stp x27, x28, [x3, #64]\n"
    "    stp d8, d9, [x3, #80]\n"
    "    stp d10, d11, [x3, #96]\n"
    "    stp d12, d13, [x3, #112]\n"
    "    stp d14, d15, [x3, #128]\n"
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    ret\n"
    "    .size test_regs_switch, .-test_regs_switch\n");
#define HAVE_REGS_TEST 1
#endif

#if defined(HAVE_REGS_TEST)
void test_regs_switch(strand__ctx *from, strand__ctx *to, const uint64_t *vals, uint64_t *out);

#define REG_ROUNDS 8
static uint64_t vals_a[REG_ROUNDS][NREGS], vals_b[REG_ROUNDS][NREGS];
static uint64_t out_a[REG_ROUNDS][NREGS], out_b[REG_ROUNDS][NREGS];

/* A and B each load their own values, switch to the other (which loads different values),
 * and check theirs on return: a register the switch fails to save shows B's value in A. */
static void regs_a_entry(void *arg)
{
    (void)arg;
    tswitch_end(&t_a, &t_main);
    for (int r = 0; r < REG_ROUNDS; r++) {
        tswitch_begin(&t_a, &t_b);
        test_regs_switch(&t_a.c, &t_b.c, vals_a[r], out_a[r]);
        tswitch_end(&t_a, NULL);
        tswitch(&t_a, &t_b); /* let B finish its round */
    }
    for (;;)
        tswitch(&t_a, &t_main);
}

static void regs_b_entry(void *arg)
{
    (void)arg;
    tswitch_end(&t_b, &t_a);
    for (int r = 0; r < REG_ROUNDS; r++) {
        tswitch_begin(&t_b, &t_a);
        test_regs_switch(&t_b.c, &t_a.c, vals_b[r], out_b[r]);
        tswitch_end(&t_b, NULL);
        if (r == REG_ROUNDS - 1)
            break;
        tswitch(&t_b, &t_a); /* A starts its next round by switching to us */
    }
    for (;;)
        tswitch(&t_b, &t_main);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    return x;
}
#endif

static void test_callee_saved_registers(void **state)
{
    (void)state;
#if !defined(HAVE_REGS_TEST)
    skip();
#else
    test_deadline(30);
    tctx_init_main();
    for (int r = 0; r < REG_ROUNDS; r++)
        for (int i = 0; i < NREGS; i++) {
            vals_a[r][i] = mix(0xA000 + (uint64_t)(r * 64 + i));
            vals_b[r][i] = mix(0xB000 + (uint64_t)(r * 64 + i));
        }
    memset(out_a, 0, sizeof out_a);
    memset(out_b, 0, sizeof out_b);
    tctx_make(&t_a, regs_a_entry, NULL);
    tctx_make(&t_b, regs_b_entry, NULL);
    tswitch(&t_main, &t_a);
    for (int r = 0; r < REG_ROUNDS; r++)
        for (int i = 0; i < NREGS; i++) {
            if (out_a[r][i] != vals_a[r][i] || out_b[r][i] != vals_b[r][i])
                fail_msg("round %d register #%d: A wrote %#llx read %#llx; B wrote %#llx read "
                         "%#llx", r, i, (unsigned long long)vals_a[r][i],
                         (unsigned long long)out_a[r][i], (unsigned long long)vals_b[r][i],
                         (unsigned long long)out_b[r][i]);
        }
    tctx_drop(&t_a);
    tctx_drop(&t_b);
#endif
}

/* ---------------------------------------------------------------- floating-point control */

static int fp_a_mode_after, fp_b_mode_first, fp_b_mode_after;
static double fp_a_rint_after, fp_b_rint_after;
static unsigned fp_a_mxcsr_after, fp_b_mxcsr_after;

static unsigned read_mxcsr(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_stmxcsr();
#else
    return 0;
#endif
}

/* 1/3 computed at run time, rounded in the current mode (inexact, so each mode differs) */
static double third(void)
{
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static void fp_a_entry(void *arg)
{
    (void)arg;
    tswitch_end(&t_a, &t_main);
    fesetround(FE_UPWARD);
    tswitch(&t_a, &t_b); /* B sets a different mode, then comes back */
    fp_a_mode_after = fegetround();
    fp_a_rint_after = third();
    fp_a_mxcsr_after = read_mxcsr();
    tswitch(&t_a, &t_b);
    for (;;)
        tswitch(&t_a, &t_main);
}

static void fp_b_entry(void *arg)
{
    (void)arg;
    tswitch_end(&t_b, &t_a);
    fp_b_mode_first = fegetround();
    fesetround(FE_DOWNWARD);
    tswitch(&t_b, &t_a);
    fp_b_mode_after = fegetround();
    fp_b_rint_after = third();
    fp_b_mxcsr_after = read_mxcsr();
    for (;;)
        tswitch(&t_b, &t_main);
}

static void test_fp_control_state(void **state)
{
    (void)state;
    if (test_under_valgrind()) /* Valgrind does not model rounding modes */
        skip();
    test_deadline(30);
    tctx_init_main();
    fesetround(FE_UPWARD);
    double third_up = third();
    fesetround(FE_DOWNWARD);
    double third_down = third();
    fesetround(FE_TONEAREST);
    assert_true(third_up != third_down);
    tctx_make(&t_a, fp_a_entry, NULL);
    tctx_make(&t_b, fp_b_entry, NULL);
    tswitch(&t_main, &t_a);
    int main_mode = fegetround();
    fesetround(FE_TONEAREST);
    tctx_drop(&t_a);
    tctx_drop(&t_b);

    /* A new context starts in round-to-nearest here because main was in it; it must not
     * have inherited A's FE_UPWARD (B was first entered from A). */
#if defined(__x86_64__) && !defined(STRAND_CTX_UCONTEXT)
    assert_int_equal(fp_b_mode_first, FE_TONEAREST);
#endif
    assert_int_equal(fp_a_mode_after, FE_UPWARD);
    assert_true(fp_a_rint_after == third_up);
    assert_int_equal(fp_b_mode_after, FE_DOWNWARD);
    assert_true(fp_b_rint_after == third_down);
#if defined(__x86_64__)
    assert_int_equal(fp_a_mxcsr_after & 0x6000, 0x4000); /* RC = up */
    assert_int_equal(fp_b_mxcsr_after & 0x6000, 0x2000); /* RC = down */
#endif
    /* main got its own state back when B switched to it */
    assert_int_equal(main_mode, FE_TONEAREST);
}

/* The same through real strands on one worker: two strands set different rounding modes
 * and yield to each other many times. */
static atomic_int fp_strand_bad;

static void *fp_strand(void *arg)
{
    int mode = (int)(intptr_t)arg;
    fesetround(mode);
    for (int i = 0; i < 200; i++) {
        strand_yield();
        if (fegetround() != mode)
            atomic_fetch_add(&fp_strand_bad, 1);
    }
    return NULL;
}

static void *fp_strands_main(void *arg)
{
    (void)arg;
    int64_t a = strand_spawn(fp_strand, (void *)(intptr_t)FE_UPWARD);
    int64_t b = strand_spawn(fp_strand, (void *)(intptr_t)FE_TOWARDZERO);
    int64_t c = strand_spawn(fp_strand, (void *)(intptr_t)FE_DOWNWARD);
    if (a <= 0 || b <= 0 || c <= 0 || strand_join(a, NULL) || strand_join(b, NULL) ||
        strand_join(c, NULL))
        atomic_fetch_add(&fp_strand_bad, 1000);
    return NULL;
}

static void test_fp_control_strands(void **state)
{
    (void)state;
    if (test_under_valgrind()) /* Valgrind does not model rounding modes */
        skip();
    test_deadline(30);
    strand_config cfg = {.workers = 1, .no_signals = 1};
    assert_int_equal(strand_init(&cfg), 0);
    atomic_store(&fp_strand_bad, 0);
    test_run_strand(fp_strands_main, NULL);
    strand_shutdown();
    assert_int_equal(atomic_load(&fp_strand_bad), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_new_context_stack),
        cmocka_unit_test(test_callee_saved_registers),
        cmocka_unit_test(test_fp_control_state),
        cmocka_unit_test(test_fp_control_strands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
