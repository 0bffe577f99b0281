/*
 * test_hook.c - libstrand_hook with plain libc calls, on ONE worker (a call that blocked
 * the worker would hang the test; each has a deadline):
 *  - 200 strand pairs ping-pong over socketpairs and pipes with plain read/write/readv/
 *    writev/send/recv;
 *  - sleep, usleep, nanosleep park: 100 strands sleeping 100 ms finish together;
 *  - poll and select wait for a pipe another strand writes, and time out;
 *  - a user's O_NONBLOCK is respected (EAGAIN at once) and reported by F_GETFL; the
 *    O_NONBLOCK accept puts on a listener is not;
 *  - accept and connect in strands; SO_RCVTIMEO as a deadline (EAGAIN);
 *  - bad input as libc: EBADF, EFAULT, EPIPE, and SIGPIPE killing a child as libc's write
 *    would; the same calls outside strands are libc's (a plain thread blocks in read);
 *  - getaddrinfo in strands; a regular file read as libc reads it, also on the number of a
 *    socket closed behind the hook's back (a stale entry).
 */
// ctest-timeout: 120
#include "test_util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define MS 1000000LL

/* ---------------------------------------------------------------- ping-pong */

#define PAIRS 200
#define ROUNDS 100

typedef struct pipe_pair {
    int to_echo_w, to_echo_r, to_client_w, to_client_r;
    atomic_int *ok;
} pipe_pair;

static void *pipe_echo(void *arg)
{
    pipe_pair *p = arg;
    char c[4];
    for (int i = 0; i < ROUNDS; i++) {
        if (read(p->to_echo_r, c, 4) != 4)
            return (void *)1;
        if (write(p->to_client_w, c, 4) != 4)
            return (void *)2;
    }
    return NULL;
}

static void *pipe_client(void *arg)
{
    pipe_pair *p = arg;
    for (int i = 0; i < ROUNDS; i++) {
        uint32_t v = (uint32_t)i, back = 0;
        if (write(p->to_echo_w, &v, 4) != 4)
            return (void *)3;
        if (read(p->to_client_r, &back, 4) != 4 || back != v)
            return (void *)4;
    }
    atomic_fetch_add(p->ok, 1);
    return NULL;
}

typedef struct sock_pair {
    int a, b;
    atomic_int *ok;
} sock_pair;

static void *sock_echo(void *arg)
{
    sock_pair *p = arg;
    char c[4];
    for (int i = 0; i < ROUNDS; i++) {
        if (recv(p->b, c, 4, MSG_WAITALL) != 4)
            return (void *)1;
        struct iovec v = { c, 4 };
        if (writev(p->b, &v, 1) != 4)
            return (void *)2;
    }
    return NULL;
}

static void *sock_client(void *arg)
{
    sock_pair *p = arg;
    for (int i = 0; i < ROUNDS; i++) {
        uint32_t v = (uint32_t)i, back = 0;
        if (send(p->a, &v, 4, 0) != 4)
            return (void *)3;
        struct iovec iov = { &back, 4 };
        if (readv(p->a, &iov, 1) != 4 || back != v)
            return (void *)4;
    }
    atomic_fetch_add(p->ok, 1);
    return NULL;
}

static void *pp_main(void *arg)
{
    (void)arg;
    static pipe_pair pps[PAIRS / 2];
    static sock_pair sps[PAIRS / 2];
    atomic_int ok = 0;
    int64_t ids[2 * PAIRS];
    int k = 0;
    for (int i = 0; i < PAIRS / 2; i++) {
        int q[2], r[2], sv[2];
        assert_int_equal(pipe(q), 0);
        assert_int_equal(pipe(r), 0);
        pps[i] = (pipe_pair){ q[1], q[0], r[1], r[0], &ok };
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        sps[i] = (sock_pair){ sv[0], sv[1], &ok };
        ids[k++] = strand_spawn(pipe_echo, &pps[i]);
        ids[k++] = strand_spawn(pipe_client, &pps[i]);
        ids[k++] = strand_spawn(sock_echo, &sps[i]);
        ids[k++] = strand_spawn(sock_client, &sps[i]);
    }
    for (int i = 0; i < k; i++) {
        void *res = (void *)-1;
        assert_int_equal(strand_join(ids[i], &res), 0);
        assert_null(res);
    }
    assert_int_equal(atomic_load(&ok), PAIRS);
    for (int i = 0; i < PAIRS / 2; i++) {
        close(pps[i].to_echo_r);
        close(pps[i].to_echo_w);
        close(pps[i].to_client_r);
        close(pps[i].to_client_w);
        close(sps[i].a);
        close(sps[i].b);
    }
    print_message("hook ping-pong: %d pairs x %d round trips on one worker\n", PAIRS, ROUNDS);
    return NULL;
}

static void test_pingpong(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(pp_main, NULL);
}

/* ---------------------------------------------------------------- sleeps */

static void *sleeper(void *arg)
{
    int which = (int)(intptr_t)arg % 3;
    if (which == 0)
        usleep(100000);
    else if (which == 1) {
        struct timespec ts = { 0, 100 * MS };
        if (nanosleep(&ts, NULL) != 0)
            return (void *)1;
    } else {
        sleep(0);
        usleep(100000);
    }
    return NULL;
}

static void *sleep_main(void *arg)
{
    (void)arg;
    int64_t t0 = strand_now();
    int64_t ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = strand_spawn(sleeper, (void *)(intptr_t)i);
    for (int i = 0; i < 100; i++) {
        void *res = NULL;
        assert_int_equal(strand_join(ids[i], &res), 0);
        assert_null(res);
    }
    int64_t dt = strand_now() - t0;
    print_message("100 strands x 100 ms sleeps on one worker: %.0f ms\n", dt / 1e6);
    assert_true(dt >= 100 * MS);
    assert_true(dt < 5000 * MS); /* one after the other would be 10 s */
    struct timespec bad = { 0, 2000000000L };
    errno = 0;
    assert_int_equal(nanosleep(&bad, NULL), -1);
    assert_int_equal(errno, EINVAL);
    return NULL;
}

static void test_sleeps(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(sleep_main, NULL);
}

/* ---------------------------------------------------------------- poll and select */

static void *later_write(void *arg)
{
    usleep(50000);
    assert_int_equal(write((int)(intptr_t)arg, "x", 1), 1);
    return NULL;
}

static void *poll_main(void *arg)
{
    (void)arg;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    int64_t t0 = strand_now();
    assert_int_equal(poll(&pf, 1, 30), 0);
    assert_true(strand_now() - t0 >= 30 * MS);
    int64_t id = strand_spawn(later_write, (void *)(intptr_t)p[1]);
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_true(pf.revents & POLLIN);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(strand_join(id, NULL), 0);

    id = strand_spawn(later_write, (void *)(intptr_t)p[1]);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timeval tv = { 5, 0 };
    assert_int_equal(select(p[0] + 1, &rd, NULL, NULL, &tv), 1);
    assert_true(FD_ISSET(p[0], &rd));
    assert_true(tv.tv_sec < 5 || tv.tv_usec < 1000000);
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(strand_join(id, NULL), 0);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv = (struct timeval){ 0, 20000 };
    assert_int_equal(select(p[0] + 1, &rd, NULL, NULL, &tv), 0);
    assert_false(FD_ISSET(p[0], &rd));
    close(p[0]);
    close(p[1]);
    /* a closed descriptor: POLLNVAL / EBADF as libc */
    pf.fd = p[0];
    assert_int_equal(poll(&pf, 1, 100), 1);
    assert_true(pf.revents & POLLNVAL);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv = (struct timeval){ 0, 20000 };
    errno = 0;
    assert_int_equal(select(p[0] + 1, &rd, NULL, NULL, &tv), -1);
    assert_int_equal(errno, EBADF);
    return NULL;
}

static void test_poll_select(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(poll_main, NULL);
}

/* ---------------------------------------------------------------- flags and timeouts */

static void *nb_main(void *arg)
{
    (void)arg;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int fl = fcntl(sv[0], F_GETFL);
    assert_int_equal(fcntl(sv[0], F_SETFL, fl | O_NONBLOCK), 0);
    char b[8];
    errno = 0;
    assert_int_equal(read(sv[0], b, sizeof b), -1); /* the user's non-blocking fd */
    assert_int_equal(errno, EAGAIN);
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(fcntl(sv[0], F_SETFL, fl), 0);
    assert_false(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    int64_t id = strand_spawn(later_write, (void *)(intptr_t)sv[1]);
    assert_int_equal(read(sv[0], b, sizeof b), 1); /* blocking again: parks */
    assert_int_equal(strand_join(id, NULL), 0);

    struct timeval tv = { 0, 100000 };
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    int64_t t0 = strand_now();
    errno = 0;
    assert_int_equal(read(sv[0], b, sizeof b), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(strand_now() - t0 >= 100 * MS);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_user_nonblock_and_timeouts(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(nb_main, NULL);
}

static void *connector(void *arg)
{
    struct sockaddr_in *a = arg;
    usleep(20000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)a, sizeof *a), 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    char b[8];
    assert_int_equal(read(fd, b, sizeof b), 3);
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    for (int i = 0; i < 20; i++) {
        int64_t id = strand_spawn(connector, &a);
        int c = accept(lfd, NULL, NULL);
        assert_true(c >= 0);
        assert_false(fcntl(lfd, F_GETFL) & O_NONBLOCK); /* the hook's, not the user's */
        assert_false(fcntl(c, F_GETFL) & O_NONBLOCK);
        char b[8];
        assert_int_equal(recv(c, b, 5, MSG_WAITALL), 5);
        assert_int_equal(send(c, "bye", 3, 0), 3);
        close(c);
        assert_int_equal(strand_join(id, NULL), 0);
    }
    close(lfd);
    return NULL;
}

static void test_accept_connect(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(accept_main, NULL);
}

/* ---------------------------------------------------------------- bad input */

static void bad_calls(int in_strand)
{
    char b[8];
    errno = 0;
    assert_int_equal(read(-1, b, 1), -1);
    assert_int_equal(errno, EBADF);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "data", 4), 4);
    errno = 0;
    void *volatile badbuf = (void *)8;
    assert_int_equal(read(sv[0], badbuf, 4), -1);
    assert_int_equal(errno, EFAULT);
    close(sv[0]);
    errno = 0;
    assert_int_equal(read(sv[0], b, 1), -1);
    assert_int_equal(errno, EBADF);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    assert_int_equal(write(sv[1], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    signal(SIGPIPE, SIG_DFL);
    close(sv[1]);
    (void)in_strand;
}

static void *bad_main(void *arg)
{
    (void)arg;
    bad_calls(1);
    return NULL;
}

static void *sigpipe_main(void *arg)
{
    (void)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    close(sv[0]);
    ssize_t n = write(sv[1], "x", 1); /* SIGPIPE kills us, as libc's write would */
    (void)n;
    return NULL;
}

static int sigpipe_child(void)
{
    signal(SIGPIPE, SIG_DFL);
    strand_config cfg = { .workers = 1 };
    if (strand_init(&cfg) != 0)
        return 3;
    strand_run(sigpipe_main, NULL, NULL);
    return 0;
}

static const char *self_path;

static void test_bad_input(void **state)
{
    (void)state;
    test_deadline(30);
    bad_calls(0); /* libc's own answers, outside strands */
    test_run_strand(bad_main, NULL);
    pid_t pid = fork(); /* a fresh process (exec): a strand's write to a dead peer */
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(self_path, self_path, "--sigpipe-child", (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGPIPE);
}

/* ---------------------------------------------------------------- outside strands */

static void *thread_writer(void *arg)
{
    struct timespec ts = { 0, 50 * MS };
    nanosleep(&ts, NULL);
    assert_int_equal(write((int)(intptr_t)arg, "t", 1), 1);
    return NULL;
}

static void *gai_main(void *arg)
{
    (void)arg;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
    assert_int_equal(getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    assert_non_null(res);
    freeaddrinfo(res);
    assert_int_not_equal(getaddrinfo("no.such.host.invalid", "80", &hints, &res), 0);
    /* a regular file is read as libc reads it */
    char path[] = "/tmp/strand-hook-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "file", 4), 4);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    char b[8];
    assert_int_equal(read(fd, b, sizeof b), 4);
    close(fd);
    /* a socket closed behind the hook's back (a raw system call), its number reused by
     * that file: the stale "socket" entry is found out (ENOTSOCK) and the read is libc's */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "s", 1), 1);
    assert_int_equal(read(sv[0], b, 1), 1);
    int num = sv[0];
    assert_int_equal(syscall(SYS_close, sv[0]), 0);
    fd = open(path, O_RDONLY);
    assert_int_equal(fd, num);
    assert_int_equal(read(fd, b, sizeof b), 4);
    assert_memory_equal(b, "file", 4);
    close(fd);
    close(sv[1]);
    unlink(path);
    return NULL;
}

static void test_outside_and_files(void **state)
{
    (void)state;
    test_deadline(30);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_writer, (void *)(intptr_t)p[1]), 0);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1); /* a plain thread blocks in read(2) */
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    test_run_strand(gai_main, NULL);
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "--sigpipe-child") == 0)
        return sigpipe_child();
    strand_config cfg = { .workers = 1 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_sleeps),
        cmocka_unit_test(test_poll_select),
        cmocka_unit_test(test_user_nonblock_and_timeouts),
        cmocka_unit_test(test_accept_connect),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_outside_and_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
