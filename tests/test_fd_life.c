/*
 * test_fd_life.c - a descriptor number's lives, and descriptors strand shares with stdio:
 *  - after a plain close(2), a new socket with the same number is read without blocking the
 *    only worker (the stale record once said "already non-blocking" and read(2) hung it);
 *  - a line server whose accept loop closes with plain close(2): no connection ever gets
 *    the previous one's buffered bytes or its end-of-file;
 *  - the same without accept (socketpair numbers reused: a left EOF or partial line is
 *    found by the identity check, a whole unread line is dropped by strand_fd_forget), and
 *    across kinds (a socket's number reused by a pipe);
 *  - strand_fd_close waits out a call in flight (many rounds, two strands per round);
 *  - a terminal (a pty) read by lines keeps its flags;
 *  - printf interleaved with strand_write_line to a slow pipe: every one of 200,001 lines
 *    arrives, and the flags of fds 0-2 are unchanged at exit (a child process: this
 *    executable re-run with --stdio-child);
 *  - strand_poll: ready, timeout, deadline 0, many fds, POLLNVAL.
 *
 * Runs with ONE worker: a blocked worker is a hung test (each has a deadline).
 */
// ctest-timeout: 240
#include "test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MS 1000000LL

static const char *self_path;

static int64_t ms_from_now(int64_t ms)
{
    return strand_now() + ms * MS;
}

static int listen_loopback(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *addr = a;
    return fd;
}

/* ---------------------------------------------------------------- (a) reuse after close */

static void *late_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    strand_sleep(50 * MS);
    assert_int_equal(strand_write_all(fd, "new", 3, ms_from_now(5000)), 3);
    return NULL;
}

static void *reuse_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        char b[8];
        assert_int_equal(strand_read(sv[0], b, sizeof b, 0), -EAGAIN); /* classified */
        int old0 = sv[0];
        close(sv[0]); /* plain close: strand never hears of it */
        close(sv[1]);
        int nv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nv), 0);
        assert_true(nv[0] == old0 || nv[1] == old0);
        int rd = nv[0] == old0 ? nv[0] : nv[1], wr = rd == nv[0] ? nv[1] : nv[0];
        /* a fresh blocking socket: the read must park, not block the only worker */
        int64_t id = strand_spawn(late_writer, (void *)(intptr_t)wr);
        assert_true(id > 0);
        assert_int_equal(strand_read(rd, b, sizeof b, ms_from_now(5000)), 3);
        assert_memory_equal(b, "new", 3);
        assert_int_equal(strand_join(id, NULL), 0);
        assert_false(fcntl(rd, F_GETFL) & O_NONBLOCK);
        /* and a pipe reusing the socket's numbers (a SOCK record meets a pipe) */
        close(nv[0]);
        close(nv[1]);
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        int pr = p[0] == old0 ? p[0] : p[1] == old0 ? p[1] : -1;
        if (pr == p[0]) {
            assert_int_equal(strand_read(pr, b, sizeof b, 0), -EAGAIN);
            assert_int_equal(write(p[1], "pp", 2), 2);
            assert_int_equal(strand_read(pr, b, sizeof b, ms_from_now(5000)), 2);
        } else if (pr == p[1]) {
            assert_int_equal(strand_write(pr, "pp", 2, ms_from_now(5000)), 2);
            assert_int_equal(read(p[0], b, sizeof b), 2);
        }
        close(p[0]);
        close(p[1]);
    }
    return NULL;
}

static void test_reuse_after_plain_close(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(reuse_main, NULL);
}

/* ---------------------------------------------------------------- (b) no data leaks */

#define CONNS 40

typedef struct line_srv {
    int        lfd;
    atomic_int leaks, served, eof_carried;
} line_srv;

/* Each connection: read ONE line, answer it, plain close(2): bytes after that line stay
 * buffered in the reader of a number the next accept reuses. */
static void *line_server(void *arg)
{
    line_srv *s = arg;
    for (int i = 0; i < CONNS; i++) {
        int c = strand_accept(s->lfd, NULL, NULL, ms_from_now(10000));
        assert_true(c >= 0);
        char line[128];
        ssize_t n = strand_read_line(c, line, sizeof line, ms_from_now(5000));
        if (n == STRAND_EOF) {
            atomic_fetch_add(&s->eof_carried, 1);
        } else {
            assert_true(n > 0);
            char want[32];
            snprintf(want, sizeof want, "hello %d", i);
            if (strcmp(line, want) != 0)
                atomic_fetch_add(&s->leaks, 1);
            assert_int_equal(strand_write_line(c, line, (size_t)n, ms_from_now(5000)), n + 1);
        }
        atomic_fetch_add(&s->served, 1);
        close(c);
    }
    return NULL;
}

static void *leak_main(void *arg)
{
    (void)arg;
    struct sockaddr_in addr;
    line_srv s = { .lfd = listen_loopback(&addr) };
    int64_t id = strand_spawn(line_server, &s);
    for (int i = 0; i < CONNS; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(strand_connect(c, (struct sockaddr *)&addr, sizeof addr,
                                        ms_from_now(5000)), 0);
        char msg[96];
        /* odd connections leave a second line behind; every 4th also ends the stream
         * right after it (an EOF the reader sees) */
        int len = i % 2 ? snprintf(msg, sizeof msg, "hello %d\nLEFTOVER of %d\n", i, i)
                        : snprintf(msg, sizeof msg, "hello %d\n", i);
        assert_int_equal(strand_write_all(c, msg, (size_t)len, ms_from_now(5000)), len);
        if (i % 4 == 3)
            shutdown(c, SHUT_WR);
        char back[96];
        ssize_t n = strand_read_line(c, back, sizeof back, ms_from_now(5000));
        assert_true(n > 0);
        strand_fd_close(c);
    }
    assert_int_equal(strand_join(id, NULL), 0);
    print_message("line server, plain close: %d served, %d leaked, %d saw an old EOF\n",
                  atomic_load(&s.served), atomic_load(&s.leaks), atomic_load(&s.eof_carried));
    assert_int_equal(atomic_load(&s.leaks), 0);
    assert_int_equal(atomic_load(&s.eof_carried), 0);
    strand_fd_close(s.lfd);
    return NULL;
}

static void test_no_leak_between_connections(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(leak_main, NULL);
}

/* The same without accept: a socketpair's number reused by the next socketpair, after a
 * plain close(2) that left, by turns: (0) a whole unread line (strand_fd_forget, the
 * user's duty without the hook, drops it), (1) an end-of-file, (2) part of a line (both
 * found by the identity check, with no help). */
static void *pair_leak_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 60; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        static const char *left[] = { "one\ntwo\n", "one\n", "one\ntw" };
        const char *msg = left[i % 3];
        assert_int_equal(write(sv[1], msg, strlen(msg)), (ssize_t)strlen(msg));
        if (i % 3 == 1)
            shutdown(sv[1], SHUT_WR);
        char line[16];
        assert_int_equal(strand_read_line(sv[0], line, sizeof line, ms_from_now(5000)), 3);
        assert_string_equal(line, "one");
        if (i % 3 == 1)
            assert_int_equal(strand_read_line(sv[0], line, sizeof line, 0), STRAND_EOF);
        int old = sv[0];
        close(sv[0]);
        close(sv[1]);
        int nv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nv), 0);
        int rd = nv[0] == old ? nv[0] : nv[1], wr = rd == nv[0] ? nv[1] : nv[0];
        assert_int_equal(rd, old);
        if (i % 3 == 0)
            assert_int_equal(strand_fd_forget(rd), 0);
        assert_int_equal(write(wr, "three\n", 6), 6);
        assert_int_equal(strand_read_line(rd, line, sizeof line, ms_from_now(5000)), 5);
        assert_string_equal(line, "three");
        strand_fd_close(nv[0]);
        strand_fd_close(nv[1]);
    }
    assert_int_equal(strand_fd_forget(-1), -EBADF);
    return NULL;
}

static void test_no_leak_socketpair_reuse(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(pair_leak_main, NULL);
}

/* ---------------------------------------------------------------- close waits for calls */

typedef struct inflight {
    int        fd;
    atomic_int done;
} inflight;

static void *busy_reader(void *arg)
{
    inflight *f = arg;
    char b[64];
    for (;;) {
        ssize_t n = strand_read(f->fd, b, sizeof b, ms_from_now(5000));
        if (n <= 0) {
            assert_true(n == -ECANCELED || n == -EBADF || n == 0);
            break;
        }
    }
    atomic_store(&f->done, 1);
    return NULL;
}

static void *busy_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (int i = 0; i < 50; i++) {
        if (strand_write(fd, "0123456789", 10, ms_from_now(5000)) < 0)
            break;
        strand_yield();
    }
    return NULL;
}

static void *inflight_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        inflight f = { .fd = sv[0] };
        int64_t r = strand_spawn(busy_reader, &f);
        int64_t w = strand_spawn(busy_writer, (void *)(intptr_t)sv[1]);
        for (int k = 0; k < i % 7; k++)
            strand_yield();
        assert_int_equal(strand_fd_close(sv[0]), 0);
        assert_int_equal(strand_join(r, NULL), 0);
        assert_int_equal(atomic_load(&f.done), 1);
        strand_fd_close(sv[1]);
        assert_int_equal(strand_join(w, NULL), 0);
    }
    return NULL;
}

static void test_close_waits_for_calls(void **state)
{
    (void)state;
    test_deadline(120);
    test_run_strand(inflight_main, NULL);
}

/* ---------------------------------------------------------------- a terminal */

static void *tty_main(void *arg)
{
    (void)arg;
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) {
        print_message("no pty here: terminal case not run\n");
        return NULL;
    }
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(s >= 0);
    int before = fcntl(s, F_GETFL);
    char line[64];
    assert_int_equal(strand_read_line(s, line, sizeof line, 0), -EAGAIN);
    assert_int_equal(write(m, "typed\n", 6), 6);
    assert_int_equal(strand_read_line(s, line, sizeof line, ms_from_now(5000)), 5);
    assert_string_equal(line, "typed");
    assert_int_equal(strand_write_line(s, "shown", 5, ms_from_now(5000)), 6);
    assert_int_equal(fcntl(s, F_GETFL), before);
    assert_false(fcntl(m, F_GETFL) & O_NONBLOCK);
    strand_fd_close(s);
    close(m);
    return NULL;
}

static void test_terminal_flags_kept(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(tty_main, NULL);
}

/* ---------------------------------------------------------------- stdio interleaved */

#define STDIO_LINES 200001

/* The child: stdout is a pipe the parent drains slowly; odd lines by printf (stdout line
 * buffered, so each is one write), even ones by strand_write_line. */
static void *stdio_child_main(void *arg)
{
    int *flags = arg;
    char line[32];
    assert_int_equal(strand_read_line(0, line, sizeof line, ms_from_now(10000)), 2);
    for (int i = 0; i < STDIO_LINES; i++) {
        if (i % 2) {
            if (printf("line %d\n", i) < 0)
                return (void *)1;
        } else {
            int n = snprintf(line, sizeof line, "line %d", i);
            if (strand_write_line(1, line, (size_t)n, ms_from_now(30000)) != n + 1)
                return (void *)2;
        }
    }
    strand_write_line(2, "stderr ok", 9, ms_from_now(5000));
    fflush(stdout);
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFL) != flags[fd])
            return (void *)3;
    }
    return NULL;
}

static int stdio_child(void)
{
    int flags[3];
    for (int fd = 0; fd < 3; fd++)
        flags[fd] = fcntl(fd, F_GETFL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    strand_config cfg = { .workers = 1 };
    if (strand_init(&cfg) != 0)
        return 10;
    void *res = NULL;
    if (strand_run(stdio_child_main, flags, &res) != 0)
        return 11;
    return (int)(intptr_t)res;
}

static void test_stdio_interleaved(void **state)
{
    (void)state;
    test_deadline(180);
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl(self_path, self_path, "--stdio-child", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    assert_int_equal(write(in[1], "go\n", 3), 3);
    unsigned char *seen = calloc(STDIO_LINES, 1);
    char buf[4096], part[64];
    size_t plen = 0;
    long lines = 0, bad = 0, reads = 0;
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) {
        if (++reads % 64 == 0)
            usleep(1000); /* a slow reader: the pipe fills, writers wait */
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (plen < sizeof part - 1)
                    part[plen++] = buf[i];
                continue;
            }
            part[plen] = '\0';
            plen = 0;
            int v;
            if (sscanf(part, "line %d", &v) == 1 && v >= 0 && v < STDIO_LINES && !seen[v]) {
                seen[v] = 1;
                lines++;
            } else {
                bad++;
            }
        }
    }
    close(out[0]);
    close(in[1]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    print_message("stdio interleaved: %ld of %d lines arrived, %ld malformed, child status %d\n",
                  lines, STDIO_LINES, bad, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    free(seen);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0); /* 3: fds 0-2 flags changed */
    assert_int_equal(lines, STDIO_LINES);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- strand_poll */

static void *poke(void *arg)
{
    int fd = (int)(intptr_t)arg;
    strand_sleep(30 * MS);
    assert_int_equal(write(fd, "x", 1), 1);
    return NULL;
}

static void *poll_main(void *arg)
{
    (void)arg;
    enum { N = 20 };
    int p[N][2];
    struct pollfd pf[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(pipe2(p[i], O_CLOEXEC), 0);
        pf[i] = (struct pollfd){ .fd = p[i][0], .events = POLLIN };
    }
    assert_int_equal(strand_poll(pf, N, 0), -EAGAIN);
    assert_int_equal(strand_poll(pf, N, ms_from_now(20)), -ETIMEDOUT);
    assert_int_equal(strand_poll(NULL, 1, 0), -EINVAL);
    for (int round = 0; round < 50; round++) {
        int k = (round * 7) % N;
        int64_t id = strand_spawn(poke, (void *)(intptr_t)p[k][1]);
        assert_int_equal(strand_poll(pf, N, ms_from_now(5000)), 1);
        assert_true(pf[k].revents & POLLIN);
        char c;
        assert_int_equal(read(p[k][0], &c, 1), 1);
        assert_int_equal(strand_join(id, NULL), 0);
    }
    struct pollfd w = { .fd = p[0][1], .events = POLLOUT };
    assert_int_equal(strand_poll(&w, 1, 0), 1);
    struct pollfd bad = { .fd = 12345, .events = POLLIN };
    assert_int_equal(strand_poll(&bad, 1, ms_from_now(1000)), 1);
    assert_true(bad.revents & POLLNVAL);
    for (int i = 0; i < N; i++) {
        strand_fd_close(p[i][0]);
        strand_fd_close(p[i][1]);
    }
    return NULL;
}

static void test_poll(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(poll_main, NULL);
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "--stdio-child") == 0)
        return stdio_child();
    strand_config cfg = { .workers = 1 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_after_plain_close),
        cmocka_unit_test(test_no_leak_between_connections),
        cmocka_unit_test(test_no_leak_socketpair_reuse),
        cmocka_unit_test(test_close_waits_for_calls),
        cmocka_unit_test(test_terminal_flags_kept),
        cmocka_unit_test(test_poll),
        cmocka_unit_test(test_stdio_interleaved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
