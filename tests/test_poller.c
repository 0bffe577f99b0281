/*
 * test_poller.c - the readiness backends behind src/poller.h and their choice: STRAND_POLLER
 * parsing, the run-time fallback to epoll when io_uring is denied (a seccomp filter in a
 * forked child, as a container would have), and the contract itself (edges on many fds, a
 * wake seen by a non-consuming wait is not lost, a plain close(2) and reuse of a number, an
 * fd armed by a thread that has exited). Runs once per backend (tests/CMakeLists.txt).
 */
#include "test_util.h"
#include "poller.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define MS 1000000LL

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The settings as the runtime loads them, so that poller.c sees STRAND_POLLER. */
static void load_settings(void)
{
    strand__settings_load(&strand__cfg, NULL);
    assert_int_equal(strand__poller_init(), 0);
}

/* ---------------------------------------------------------------- choice */

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(strand__poller_parse("epoll"), STRAND__POLLER_EPOLL);
    assert_int_equal(strand__poller_parse("io_uring"), STRAND__POLLER_IO_URING);
    const char *bad[] = { "", "EPOLL", "io-uring", "uring", "epoll ", " epoll", "io_uring2",
                          "0", "1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(strand__poller_parse(bad[i]), -EINVAL);
    assert_int_equal(strand__poller_parse(NULL), -EINVAL);
}

static void bad_env_child(void *arg)
{
    (void)arg;
    setenv("STRAND_POLLER", "uring", 1);
    strand__settings s;
    strand__settings_load(&s, NULL);
    if (s.poller != STRAND__POLLER_DEFAULT)
        exit(3);
}

static void test_bad_value_warns(void **state)
{
    (void)state;
    test_child c;
    assert_int_equal(test_child_run(bad_env_child, NULL, 30, &c), 0);
    assert_true(c.exited && c.status == 0);
    assert_int_equal(count_of(c.err, "STRAND_POLLER=\"uring\" is not valid"), 1);
}

/* What a container's default seccomp profile does to io_uring_setup. */
static int deny_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0 : -errno;
}

static void *echo_once(void *arg)
{
    int fd = *(int *)arg;
    char b[16];
    ssize_t n = strand_read(fd, b, sizeof b, strand_now() + 5000 * MS);
    if (n > 0)
        strand_write_all(fd, b, (size_t)n, strand_now() + 5000 * MS);
    return NULL;
}

/* One round trip through the poller: the reader parks (would-block) before the write. */
static void *round_trip(void *arg)
{
    (void)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return (void *)1;
    int64_t id = strand_spawn(echo_once, &sv[1]);
    strand_sleep(10 * MS);
    char b[4] = { 0 };
    if (strand_write_all(sv[0], "abc", 3, strand_now() + 5000 * MS) != 3 ||
        strand_read(sv[0], b, 3, strand_now() + 5000 * MS) != 3 || memcmp(b, "abc", 3) != 0)
        return (void *)2;
    strand_join(id, NULL);
    strand_fd_close(sv[0]);
    strand_fd_close(sv[1]);
    return NULL;
}

static void fallback_child(void *arg)
{
    (void)arg;
    if (deny_io_uring() != 0)
        exit(4);
    setenv("STRAND_POLLER", "io_uring", 1);
    for (int i = 0; i < 2; i++) { /* a restarted runtime does not say it again */
        void *res = (void *)9;
        if (strand_run(round_trip, NULL, &res) != 0 || res != NULL)
            exit(5 + i);
    }
    if (strcmp(strand__poller_name(), "epoll") != 0)
        exit(7);
}

static void test_fallback_when_denied(void **state)
{
    (void)state;
    test_child c;
    assert_int_equal(test_child_run(fallback_child, NULL, 60, &c), 0);
    if (!c.exited || c.status != 0)
        print_error("child: exited=%d status=%d sig=%d\nstderr:\n%s\n", c.exited, c.status,
                    c.sig, c.err);
    assert_true(c.exited && c.status == 0);
    assert_int_equal(count_of(c.err, "using epoll"), 1);
    assert_int_equal(count_of(c.err, "\n"), 1);
#ifdef STRAND_HAVE_LIBURING
    assert_non_null(strstr(c.err, "io_uring is not usable here (Operation not permitted"));
#else
    assert_non_null(strstr(c.err, "no io_uring backend"));
#endif
}

static void test_backend_is_the_one_asked_for(void **state)
{
    (void)state;
    load_settings();
    const char *want = getenv("STRAND_POLLER");
    const char *got = strand__poller_name();
    assert_non_null(got);
    print_message("poller backend: %s\n", got);
#ifdef STRAND_HAVE_LIBURING
    /* io_uring works in this test's environment (CMake registers the twin only then):
     * falling back here would be a bug, not a denial. */
    if (want != NULL)
        assert_string_equal(got, want);
#else
    assert_string_equal(got, "epoll");
    (void)want;
#endif
}

/* ---------------------------------------------------------------- the contract */

/* Collects events until fd `fd` is reported readable, or the deadline. */
static bool wait_readable(int fd, int64_t deadline)
{
    strand__poller_event evs[64];
    while (strand_now() < deadline) {
        int n = strand__poller_wait(evs, 64, 50 * MS, true);
        for (int i = 0; i < n; i++)
            if (evs[i].fd == fd && evs[i].readable)
                return true;
    }
    return false;
}

#define NPAIRS 200

static void test_edges_on_many_fds(void **state)
{
    (void)state;
    test_deadline(60);
    load_settings();
    int sv[NPAIRS][2];
    static bool seen[1 << 16];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < NPAIRS; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                                    sv[i]), 0);
        assert_true(sv[i][0] < (1 << 16));
        assert_int_equal(strand__poller_arm(sv[i][0]), 0);
        assert_int_equal(strand__poller_arm(sv[i][0]), 0); /* again: still 0 */
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NPAIRS; i++)
            seen[sv[i][0]] = false;
        for (int i = 0; i < NPAIRS; i++)
            assert_int_equal(write(sv[i][1], "x", 1), 1);
        int left = NPAIRS;
        int64_t until = strand_now() + 10000 * MS;
        strand__poller_event evs[64];
        while (left > 0 && strand_now() < until) {
            int n = strand__poller_wait(evs, 64, 100 * MS, true);
            for (int i = 0; i < n; i++) {
                int fd = evs[i].fd;
                if (fd >= 0 && fd < (1 << 16) && evs[i].readable && !seen[fd]) {
                    seen[fd] = true;
                    left--;
                }
            }
        }
        assert_int_equal(left, 0);
        char b[8];
        for (int i = 0; i < NPAIRS; i++)
            assert_int_equal(read(sv[i][0], b, sizeof b), 1); /* drain: the next edge */
    }
    for (int i = 0; i < NPAIRS; i++) {
        strand__poller_disarm(sv[i][0]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

static void test_wake_survives_a_non_consuming_wait(void **state)
{
    (void)state;
    test_deadline(60);
    load_settings();
    strand__poller_event evs[16];
    for (int i = 0; i < 50; i++) {
        strand__poller_wake();
        strand__poller_wait(evs, 16, 0, false); /* may see the wake: must leave it */
        int64_t t0 = strand_now();
        strand__poller_wait(evs, 16, 10000 * MS, true);
        assert_true(strand_now() - t0 < 5000 * MS);
    }
    /* consumed: a wait now runs into its timeout (it may return earlier, never hang) */
    int64_t t0 = strand_now();
    strand__poller_wait(evs, 16, 30 * MS, true);
    assert_true(strand_now() - t0 < 5000 * MS);
}

static void test_plain_close_and_reuse(void **state)
{
    (void)state;
    test_deadline(60);
    load_settings();
    for (int i = 0; i < 20; i++) {
        int a[2], b[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a), 0);
        assert_int_equal(strand__poller_arm(a[0]), 0);
        int num = a[0];
        close(a[0]); /* no disarm: a user's plain close(2) */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b), 0);
        int fresh = b[0] == num ? b[0] : b[1] == num ? b[1] : -1;
        if (fresh >= 0)
            assert_int_equal(strand__poller_arm(fresh), 0);
        /* The old file is released (at the latest by the re-arm of its number): its peer
         * sees end of file. */
        struct pollfd p = { .fd = a[1], .events = POLLIN | POLLRDHUP };
        assert_int_equal(poll(&p, 1, 5000), 1);
        char c;
        assert_int_equal(read(a[1], &c, 1), 0);
        if (fresh >= 0) {
            assert_int_equal(write(fresh == b[0] ? b[1] : b[0], "y", 1), 1);
            assert_true(wait_readable(fresh, strand_now() + 5000 * MS));
            strand__poller_disarm(fresh);
        }
        close(a[1]);
        close(b[0]);
        close(b[1]);
    }
}

static void *arm_and_exit(void *arg)
{
    return (void *)(intptr_t)strand__poller_arm(*(int *)arg);
}

static void test_armed_by_a_thread_that_exited(void **state)
{
    (void)state;
    test_deadline(60);
    load_settings();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    pthread_t t;
    void *rc;
    assert_int_equal(pthread_create(&t, NULL, arm_and_exit, &sv[0]), 0);
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(write(sv[1], "z", 1), 1);
        assert_true(wait_readable(sv[0], strand_now() + 5000 * MS));
        char c;
        assert_int_equal(read(sv[0], &c, 1), 1);
    }
    strand__poller_disarm(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

static void test_unwatchable_is_eperm(void **state)
{
    (void)state;
    load_settings();
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(strand__poller_arm(fd), -EPERM);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* forked children first: before anything here starts a thread */
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_bad_value_warns),
        cmocka_unit_test(test_fallback_when_denied),
        cmocka_unit_test(test_backend_is_the_one_asked_for),
        cmocka_unit_test(test_edges_on_many_fds),
        cmocka_unit_test(test_wake_survives_a_non_consuming_wait),
        cmocka_unit_test(test_plain_close_and_reuse),
        cmocka_unit_test(test_armed_by_a_thread_that_exited),
        cmocka_unit_test(test_unwatchable_is_eperm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
