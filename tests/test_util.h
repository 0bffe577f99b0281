/*
 * test_util.h - small helpers shared by the cmocka tests in tests/test_*.c.
 *
 * Include this instead of <cmocka.h>: it pulls in the headers cmocka needs first.
 *
 *   test_run_strand(fn, arg)     run fn as the first strand (strand_run), assert it returned 0,
 *                                give back fn's result.
 *   test_deadline(seconds)       watchdog: if the process is still running after `seconds`
 *                                (times STRAND_TEST_TIMEOUT_FACTOR, set under valgrind/qemu),
 *                                print which test hung and _exit(1), so a deadlock fails fast
 *                                instead of waiting for the CTest timeout. 0 cancels it.
 *   test_scale(full, small)      `small` when STRAND_TEST_SCALE=small (sanitizer, valgrind and
 *                                emulator runs), else `full`.
 *   test_under_valgrind()        1 when running under Valgrind (the memcheck_* CTest twins),
 *                                for tests that cannot run there (Valgrind's address-space
 *                                manager allows only a few thousand mappings: guard-page and
 *                                million-strand tests) and should call cmocka's skip().
 *   test_child_run(fn, arg, ...) run fn(arg) in a forked child with its stderr captured; gives
 *                                the exit status or the signal and the stderr text, for tests
 *                                that expect a crash (stack overflow, abort) or an exit code.
 *
 * Invariants: the watchdog's handler only calls async-signal-safe functions (write, _exit).
 * test_child_run must be called from a plain thread before this process started the runtime's
 * worker threads (after fork only the calling thread exists); the child starts its own runtime
 * if fn needs one. Everything is static inline: a test that uses none of it gets no warnings.
 */
#ifndef STRAND_TEST_UTIL_H
#define STRAND_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "strand.h"

#if defined(STRAND_VALGRIND)
#include <valgrind/valgrind.h>
#endif

/* ---------------------------------------------------------------- scale */

static inline int test_is_small(void)
{
    const char *s = getenv("STRAND_TEST_SCALE");
    return s != NULL && strcmp(s, "small") == 0;
}

static inline long test_scale(long full, long small)
{
    return test_is_small() ? small : full;
}

/* Under Valgrind: asked of Valgrind itself in STRAND_VALGRIND builds; the memcheck_* tests
 * also set STRAND_TEST_VALGRIND=1, which covers builds without the annotations. */
static inline int test_under_valgrind(void)
{
#if defined(STRAND_VALGRIND)
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    const char *s = getenv("STRAND_TEST_VALGRIND");
    return s != NULL && strcmp(s, "1") == 0;
}

/* How many times slower than native this run is expected to be (valgrind, qemu). */
static inline unsigned test_time_factor(void)
{
    const char *s = getenv("STRAND_TEST_TIMEOUT_FACTOR");
    if (s == NULL || *s == '\0')
        return 1;
    char *end;
    long f = strtol(s, &end, 10);
    return (*end == '\0' && f >= 1 && f <= 1000) ? (unsigned)f : 1;
}

/* ---------------------------------------------------------------- watchdog */

static const char *test_deadline_name_ = "test";

static inline void test_deadline_handler_(int sig)
{
    (void)sig;
    static const char a[] = "\n*** test_deadline: ";
    static const char b[] = " still running at its deadline (deadlock?); failing\n";
    ssize_t r;
    r = write(2, a, sizeof a - 1);
    r = write(2, test_deadline_name_, strlen(test_deadline_name_));
    r = write(2, b, sizeof b - 1);
    (void)r;
    _exit(1);
}

/* Arm (or with 0, cancel) the watchdog; `name` (may be NULL) is printed if it fires. */
static inline void test_deadline_named(const char *name, unsigned seconds)
{
    if (name != NULL)
        test_deadline_name_ = name;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = test_deadline_handler_;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds == 0 ? 0 : seconds * test_time_factor());
}

#define test_deadline(seconds) test_deadline_named(__func__, (seconds))

/* ---------------------------------------------------------------- strands */

/* Run fn(arg) as the first strand; the runtime must report success. Returns fn's result. */
static inline void *test_run_strand(strand_fn fn, void *arg)
{
    void *result = NULL;
    int rc = strand_run(fn, arg, &result);
    assert_int_equal(rc, 0);
    return result;
}

/* ---------------------------------------------------------------- forked children */

typedef struct test_child {
    int  exited;      /* 1: exited normally, with `status` */
    int  status;      /* exit code when exited */
    int  signaled;    /* 1: killed by signal `sig` */
    int  sig;
    int  timed_out;   /* 1: still running at the deadline, killed with SIGKILL */
    char err[16384];  /* captured stderr, NUL terminated (truncated if longer) */
    size_t err_len;
} test_child;

typedef void (*test_child_fn)(void *arg);

/* Fork; in the child run fn(arg) with stderr going to a pipe, then exit(0) (fn may exit or
 * crash itself). The parent collects stderr and the status into *out, killing the child if
 * it is still running after `timeout_s` seconds (times the time factor). Returns 0, or -1 if
 * the child could not be started. */
static inline int test_child_run(test_child_fn fn, void *arg, unsigned timeout_s, test_child *out)
{
    memset(out, 0, sizeof *out);
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        alarm(0);
        fn(arg);
        fflush(stdout);
        fflush(stderr);
        exit(0);
    }
    close(p[1]);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long limit_ms = (long)timeout_s * 1000L * (long)test_time_factor();
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000L + (now.tv_nsec - t0.tv_nsec) / 1000000L;
        if (timeout_s > 0 && spent >= limit_ms) {
            out->timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        int n = poll(&pfd, 1, timeout_s > 0 ? (int)(limit_ms - spent) : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char buf[1024];
        ssize_t got = read(p[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* EOF: the child (and anything it forked) closed stderr */
        size_t room = sizeof out->err - 1 - out->err_len;
        size_t keep = (size_t)got < room ? (size_t)got : room;
        memcpy(out->err + out->err_len, buf, keep);
        out->err_len += keep;
    }
    close(p[0]);
    out->err[out->err_len] = '\0';

    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (WIFEXITED(st)) {
        out->exited = 1;
        out->status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        out->signaled = 1;
        out->sig = WTERMSIG(st);
    }
    return 0;
}

/* The child died of a signal (e.g. SIGABRT, SIGSEGV) and its stderr contains `needle`. */
#define assert_child_crashed_with(child, needle)                                   \
    do {                                                                           \
        if (!(child)->signaled || strstr((child)->err, (needle)) == NULL) {        \
            print_error("child: exited=%d status=%d signaled=%d sig=%d\n"          \
                        "stderr:\n%s\n", (child)->exited, (child)->status,         \
                        (child)->signaled, (child)->sig, (child)->err);            \
            fail_msg("expected a crash whose stderr contains \"%s\"", (needle));   \
        }                                                                          \
    } while (0)

#endif /* STRAND_TEST_UTIL_H */
