/*
 * test_kv.c - examples/kv_server from the outside: it is started as a child process (the
 * binary next to this test's directory, build/examples/kv_server) on a free port, then
 * driven with redis-cli, with raw RESP over plain sockets (pipelining, inline commands),
 * with a fuzz-style stream of malformed requests (each must get an error reply or a closed
 * connection, while a well-behaved client keeps being served promptly), with a client that
 * never reads its replies (the server's memory must stay bounded), and briefly with
 * redis-benchmark -P 16.
 *
 * No strand runtime in this process: the test is a plain client. Skips what needs
 * redis-cli / redis-benchmark when they are not installed.
 */
// ctest-timeout: 240
#include "test_util.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static pid_t server_pid;
static int   server_port;
static char  server_path[4096];

/* ---------------------------------------------------------------- the server process */

static int start_server(void **state)
{
    (void)state;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(server_path, sizeof server_path, "%s/../examples/kv_server", dirname(self));
    if (access(server_path, X_OK) != 0) {
        fprintf(stderr, "kv_server not built at %s\n", server_path);
        return -1;
    }
    int p[2];
    if (pipe(p) != 0)
        return -1;
    server_pid = fork();
    if (server_pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        setenv("STRAND_WORKERS", "2", 1);
        execl(server_path, "kv_server", "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[256] = "";
    if (fgets(line, sizeof line, f) == NULL) {
        fclose(f);
        return -1;
    }
    fclose(f);
    char *colon = strrchr(line, ':');
    server_port = colon ? atoi(colon + 1) : 0;
    return server_port > 0 ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    return 0;
}

static void assert_server_alive(void)
{
    int st;
    assert_int_equal(waitpid(server_pid, &st, WNOHANG), 0);
}

/* ---------------------------------------------------------------- plain socket helpers */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)server_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { 5, 0 }; /* no test may hang on a read */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* the server may close a bad client mid-send */
        c += w;
        n -= (size_t)w;
    }
}

/* Read exactly `want` bytes (or until EOF/timeout); returns how many. */
static size_t recv_n(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t r = recv(fd, buf + got, want - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Send a request, expect exactly this reply. */
static void expect_reply(int fd, const char *req, const char *reply)
{
    send_all(fd, req, strlen(req));
    char buf[512];
    size_t n = strlen(reply);
    assert_true(n < sizeof buf);
    size_t got = recv_n(fd, buf, n);
    buf[got] = '\0';
    assert_string_equal(buf, reply);
}

/* A fresh connection answers PING within a second: nobody is starved. */
static void assert_ping_prompt(void)
{
    int fd = dial();
    struct timeval tv = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    expect_reply(fd, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    close(fd);
}

/* ---------------------------------------------------------------- commands */

static void test_commands_raw(void **state)
{
    (void)state;
    test_deadline(30);
    int fd = dial();
    expect_reply(fd, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    expect_reply(fd, "*2\r\n$4\r\nping\r\n$2\r\nhi\r\n", "$2\r\nhi\r\n");
    expect_reply(fd, "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n", "$4\r\na\r\nb\r\n"); /* CRLF inside */
    static const char set_bin[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\0v\r\n"; /* a NUL */
    send_all(fd, set_bin, sizeof set_bin - 1);
    char buf[64];
    assert_int_equal(recv_n(fd, buf, 5), 5);
    assert_memory_equal(buf, "+OK\r\n", 5);
    const char *get_k = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    send_all(fd, get_k, strlen(get_k));
    assert_int_equal(recv_n(fd, buf, 9), 9);
    assert_memory_equal(buf, "$3\r\nv\0v\r\n", 9);
    expect_reply(fd, "*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", "$-1\r\n");
    expect_reply(fd, "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":1\r\n");
    expect_reply(fd, "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":2\r\n");
    expect_reply(fd, "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n",
                 "-ERR value is not an integer or out of range\r\n");
    expect_reply(fd, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$19\r\n9223372036854775807\r\n", "+OK\r\n");
    expect_reply(fd, "*2\r\n$4\r\nINCR\r\n$3\r\nbig\r\n",
                 "-ERR increment or decrement would overflow\r\n");
    expect_reply(fd, "*4\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n$1\r\nn\r\n$1\r\nz\r\n", ":2\r\n");
    expect_reply(fd, "*3\r\n$3\r\nDEL\r\n$1\r\nk\r\n$1\r\nz\r\n", ":1\r\n");
    expect_reply(fd, "*2\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n", ":0\r\n");
    expect_reply(fd, "*1\r\n$3\r\nGET\r\n", "-ERR wrong number of arguments for 'GET' command\r\n");
    expect_reply(fd, "*2\r\n$4\r\nNOPE\r\n$1\r\nx\r\n", "-ERR unknown command 'NOPE'\r\n");
    expect_reply(fd, "PING\r\n", "+PONG\r\n");                /* inline */
    expect_reply(fd, "SET  inl   val\r\n", "+OK\r\n");
    expect_reply(fd, "GET inl\n", "$3\r\nval\r\n");
    expect_reply(fd, "*1\r\n$4\r\nQUIT\r\n", "+OK\r\n");
    assert_int_equal(recv_n(fd, buf, 1), 0); /* closed after QUIT */
    close(fd);
    assert_server_alive();
}

static void test_pipelining(void **state)
{
    (void)state;
    test_deadline(30);
    int fd = dial();
    enum { N = 2000 };
    size_t cap = (size_t)N * 80, len = 0;
    char *req = malloc(cap);
    for (int i = 0; i < N; i++) {
        char k[16], v[16];
        int kl = snprintf(k, sizeof k, "p%d", i), vl = snprintf(v, sizeof v, "v%d", i * 3);
        len += (size_t)snprintf(req + len, cap - len,
                                "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                                "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n",
                                kl, k, vl, v, kl, k);
    }
    send_all(fd, req, len); /* all at once: the server answers them in order */
    size_t rcap = (size_t)N * 32, rlen = 0;
    char *exp = malloc(rcap), *got = malloc(rcap);
    for (int i = 0; i < N; i++) {
        char v[16];
        int vl = snprintf(v, sizeof v, "v%d", i * 3);
        rlen += (size_t)snprintf(exp + rlen, rcap - rlen, "+OK\r\n$%d\r\n%s\r\n", vl, v);
    }
    assert_int_equal(recv_n(fd, got, rlen), rlen);
    assert_memory_equal(got, exp, rlen);
    close(fd);
    free(req);
    free(exp);
    free(got);
}

/* ---------------------------------------------------------------- malformed input */

/* Send `bad`; the server must answer with an error or close, and stay healthy. */
static void check_malformed(const void *bad, size_t len)
{
    int fd = dial();
    struct timeval tv = { 2, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    send_all(fd, bad, len);
    shutdown(fd, SHUT_WR); /* no more input: an incomplete request must not hang us */
    char buf[4096];
    size_t total = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
            /* EOF (closed) is fine; a timeout would mean a stalled connection */
            assert_true(r == 0 || errno == ECONNRESET);
            break;
        }
        total += (size_t)r;
    }
    (void)total;
    close(fd);
    assert_server_alive();
}

static void test_malformed_requests(void **state)
{
    (void)state;
    test_deadline(60);
    static const char *cases[] = {
        "*abc\r\n",
        "*-5\r\n*1\r\n$4\r\nPING\r\n",
        "*2\r\n$3\r\nGET\r\n$1000000000\r\n",              /* a 1 GB bulk */
        "*2\r\n$3\r\nGET\r\n$-7\r\nx\r\n",
        "*1\r\n$4\r\nPINGxx",                              /* missing CRLF */
        "*1\r\n$4\r\nPING\n\n",
        "*2\r\nGET\r\n",                                   /* no '$' */
        "*99999999999999999999\r\n",
        "*1\r\n$99999999999999999999999\r\n",
        "*1\r\n$\r\n",
        "*\r\n",
        "$4\r\nPING\r\n",
        "\r\n\r\n\r\n",
        "*3\r\n$3\r\nSET\r\n$1\r\nk",                      /* truncated */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_malformed(cases[i], strlen(cases[i]));
        assert_ping_prompt();
    }
    /* a specific reply for the huge bulk */
    int fd = dial();
    const char *huge = "*2\r\n$3\r\nGET\r\n$1000000000\r\n";
    send_all(fd, huge, strlen(huge));
    char buf[128];
    size_t n = recv_n(fd, buf, sizeof buf - 1);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "-ERR Protocol error"));
    close(fd);

    /* fuzz: random bytes, and valid requests with random bytes flipped */
    unsigned seed = 2024;
    const char *good = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    int rounds = (int)test_scale(300, 60);
    for (int r = 0; r < rounds; r++) {
        char m[256];
        size_t len;
        if (r % 2 == 0) {
            len = 1 + (size_t)(rand_r(&seed) % sizeof m);
            for (size_t i = 0; i < len; i++)
                m[i] = (char)rand_r(&seed);
        } else {
            len = strlen(good);
            memcpy(m, good, len);
            for (int k = 0; k < 3; k++)
                m[rand_r(&seed) % len] = (char)rand_r(&seed);
        }
        check_malformed(m, len);
        if (r % 20 == 0)
            assert_ping_prompt();
    }
    assert_ping_prompt();
}

/* A client that sends a flood of requests and never reads: the server stops reading it
 * (its strand is parked writing), its memory does not grow with the flood, and others are
 * served. */
static long server_rss_kb(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)server_pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void test_client_never_reads(void **state)
{
    (void)state;
    test_deadline(60);
    long before = server_rss_kb();
    int fd = dial();
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    /* GET of a 4 KB value: each 24-byte request asks for 4 KB of reply */
    int sfd = dial();
    char val[4096];
    memset(val, 'v', sizeof val);
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "*3\r\n$3\r\nSET\r\n$2\r\nbv\r\n$%zu\r\n", sizeof val);
    send_all(sfd, hdr, (size_t)hl);
    send_all(sfd, val, sizeof val);
    send_all(sfd, "\r\n", 2);
    char ok[5];
    assert_int_equal(recv_n(sfd, ok, 5), 5);
    close(sfd);
    const char *req = "*2\r\n$3\r\nGET\r\n$2\r\nbv\r\n";
    size_t rl = strlen(req);
    char chunk[64 * 1024];
    size_t per = sizeof chunk / rl;
    for (size_t i = 0; i < per; i++)
        memcpy(chunk + i * rl, req, rl);
    long sent = 0;
    int64_t t_end = strand_now() + 2000000000LL;
    while (strand_now() < t_end) {
        ssize_t w = send(fd, chunk, per * rl, MSG_NOSIGNAL);
        if (w > 0)
            sent += w;
        else
            usleep(1000); /* the server stopped reading us: back-pressure */
    }
    long after = server_rss_kb();
    print_message("never-reading client: sent %ld KB of requests (asking for %ld MB of "
                  "replies); server RSS %ld -> %ld KB\n", sent / 1024,
                  (sent / (long)rl) * 4 / 1024, before, after);
    assert_ping_prompt(); /* others are still served */
    assert_true(after - before < 64 * 1024); /* bounded, not the hundreds of MB asked for */
    close(fd);
    assert_server_alive();
}

/* ---------------------------------------------------------------- the Redis tools */

static int run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    return pclose(f);
}

static bool have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static void test_redis_cli(void **state)
{
    (void)state;
    test_deadline(30);
    if (!have("redis-cli")) {
        print_message("redis-cli not installed: skipped\n");
        return;
    }
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "redis-cli -p %d SET greeting 'hello world' && redis-cli -p %d GET greeting && "
             "redis-cli -p %d INCR visits && redis-cli -p %d INCR visits && "
             "redis-cli -p %d EXISTS greeting nothing && redis-cli -p %d DEL greeting && "
             "redis-cli -p %d GET greeting && redis-cli -p %d PING && "
             "redis-cli -p %d FROB 2>&1",
             server_port, server_port, server_port, server_port, server_port, server_port,
             server_port, server_port, server_port);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_string_equal(out, "OK\nhello world\n1\n2\n1\n1\n\nPONG\nERR unknown command 'FROB'\n\n");
}

static void test_redis_benchmark(void **state)
{
    (void)state;
    test_deadline(120);
    if (!have("redis-benchmark")) {
        print_message("redis-benchmark not installed: skipped\n");
        return;
    }
    char cmd[256], out[8192];
    snprintf(cmd, sizeof cmd,
             "redis-benchmark -p %d -t set,get -n %ld -c 20 -P 16 -q 2>&1 | tr '\\r' '\\n' | "
             "grep 'requests per second'",
             server_port, test_scale(100000, 20000));
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    print_message("%s", out);
    assert_non_null(strstr(out, "SET: "));
    assert_non_null(strstr(out, "GET: "));
    assert_server_alive();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_raw),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_redis_cli),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_client_never_reads),
        cmocka_unit_test(test_redis_benchmark),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
