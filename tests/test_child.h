/*
 * test_child.h - one forked child process per test body, and the checks used inside it.
 * Shared by the tests that need a pristine process per test (test_lifecycle.c, test_sched.c,
 * test_stack.c, test_embed.c). Include it instead of test_util.h (it includes that).
 *
 * Why a child per test: the parent never starts a runtime, so each body gets a pristine
 * process (its own runtime of the shape it asks for, a fresh mapping budget), a crash or hang
 * fails only that test, and nothing depends on strand_shutdown/strand_init restarting cleanly.
 * The child reports through its exit status and stderr; cmocka asserts are only used in the
 * parent.
 *
 * Why CHECK/CHECK_EQ and not cmocka's assert_* inside a child: cmocka fails by longjmp to the
 * test's thread, which must not happen from a worker thread on a strand stack, nor inside a
 * forked child. A failed CHECK prints where (on stderr) and counts; the child then exits 1.
 *
 *   CHECK(c), CHECK_EQ(a, b)      checks usable on any thread or strand of the child.
 *   body_spec                     what a child runs: body, and optionally an environment entry
 *                                 and a strand_init(&cfg) before it.
 *   run_body(name, b, t, c)       run b in a child; fail only if it was still running after t s
 *                                 (for bodies meant to crash: the caller judges *c).
 *   run_spec(name, b, t, c)       run b in a child; fail unless it exited 0. The child's stderr
 *                                 stays in c->err for the caller.
 *   BODY_TEST(name, workers, t)   defines test_<name> running body_<name> under a runtime of
 *                                 `workers` workers (no_signals); 0 workers: no strand_init, the
 *                                 body starts (or lazily gets) its own runtime.
 *   run_main(fn, arg)             strand_run(fn) inside a child, CHECKing that it succeeded.
 *
 * A file that wants the child's stderr printed even when the body passed defines
 * TEST_CHILD_SHOW_STDERR to 1 before including this; by default it is printed only on failure.
 *
 * Invariants: check_failures is per test file (static) and only ever counted in a child, which
 * exits right after its body; run_body/run_spec are called from the parent's main thread, which
 * never started a runtime (see test_child_run in test_util.h).
 */
#ifndef STRAND_TEST_CHILD_H
#define STRAND_TEST_CHILD_H

#include "test_util.h"

#include <stdatomic.h>

#ifndef TEST_CHILD_SHOW_STDERR
#define TEST_CHILD_SHOW_STDERR 0
#endif

/* ---------------------------------------------------------------- checks inside children */

static atomic_int check_failures;

static inline void check_failed(const char *file, int line, const char *what, long long a,
                                long long b)
{
    atomic_fetch_add(&check_failures, 1);
    fprintf(stderr, "%s:%d: CHECK(%s) failed (%lld vs %lld)\n", file, line, what, a, b);
}

#define CHECK(c)                                                                         \
    do {                                                                                 \
        if (!(c))                                                                        \
            check_failed(__FILE__, __LINE__, #c, 0, 0);                                  \
    } while (0)
#define CHECK_EQ(a, b)                                                                   \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_)                                                                    \
            check_failed(__FILE__, __LINE__, #a " == " #b, a_, b_);                      \
    } while (0)

/* ---------------------------------------------------------------- one child process per test */

typedef struct body_spec {
    void (*body)(void);
    strand_config cfg;
    int           init; /* strand_init(&cfg) before the body */
    const char   *env;  /* "NAME=value" put in the child's environment before init, or NULL */
} body_spec;

/* The child: environment, runtime, body; exit 1 if any CHECK failed, 2 if init failed. */
static inline void body_run(void *arg)
{
    const body_spec *b = arg;
    if (b->env)
        putenv((char *)b->env);
    if (b->init) {
        int rc = strand_init(&b->cfg);
        if (rc != 0) {
            fprintf(stderr, "strand_init(workers=%d) = %d\n", b->cfg.workers, rc);
            _exit(2);
        }
    }
    b->body();
    fflush(stdout);
    fflush(stderr);
    _exit(atomic_load(&check_failures) ? 1 : 0);
}

/* Run the body in a child; fail the test only if it hung (then its stderr is printed). */
static inline void run_body(const char *name, const body_spec *b, unsigned timeout_s,
                            test_child *c)
{
    assert_int_equal(test_child_run(body_run, (void *)b, timeout_s, c), 0);
    if (c->timed_out) {
        if (c->err_len)
            print_message("%s", c->err);
        fail_msg("%s: still running after %u s (deadlock?)", name, timeout_s);
    }
}

/* Run the body in a child; fail the test unless it exited 0 (its stderr is printed then, or
 * always with TEST_CHILD_SHOW_STDERR). The child's stderr stays in c->err for the caller. */
static inline void run_spec(const char *name, const body_spec *b, unsigned timeout_s,
                            test_child *c)
{
    run_body(name, b, timeout_s, c);
    int failed = c->signaled || !c->exited || c->status != 0;
    if (c->err_len && (failed || TEST_CHILD_SHOW_STDERR))
        print_message("%s", c->err);
    if (c->signaled)
        fail_msg("%s: killed by signal %d (%s)", name, c->sig, strsignal(c->sig));
    if (!c->exited || c->status != 0)
        fail_msg("%s: failed (exit status %d)", name, c->status);
}

#define BODY_TEST(name, nworkers, timeout_s) BODY_TEST_UNLESS(name, nworkers, timeout_s, 0)

/* The same, skipped (in the parent, where cmocka can see it) when `cond` holds. */
#define BODY_TEST_UNLESS(name, nworkers, timeout_s, cond)                                \
    static void test_##name(void **state)                                                \
    {                                                                                    \
        (void)state;                                                                     \
        if (cond)                                                                        \
            skip();                                                                      \
        body_spec b = {.body = body_##name,                                              \
                       .cfg = {.workers = (nworkers), .no_signals = 1},                  \
                       .init = (nworkers) > 0};                                          \
        test_child c;                                                                    \
        run_spec(#name, &b, (timeout_s), &c);                                            \
    }

/* Run fn as the first strand and give its result (CHECKs that strand_run succeeded). */
static inline void *run_main(strand_fn fn, void *arg)
{
    void *r = NULL;
    CHECK_EQ(strand_run(fn, arg, &r), 0);
    return r;
}

#endif /* STRAND_TEST_CHILD_H */
