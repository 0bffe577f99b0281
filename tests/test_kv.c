/*
 * test_kv.c - examples/kv_server from the outside: it is started as a child process (the
 * binary next to this test's directory, build/examples/kv_server) on a free port, then
 * driven with redis-cli, with raw RESP over plain sockets (pipelining, inline commands),
 * with a fuzz-style stream of malformed requests (each must get an error reply or a closed
 * connection, while a well-behaved client keeps being served promptly), with a client that
 * never reads its replies (the server's memory must stay bounded), briefly with
 * redis-benchmark -P 16 and with redis-benchmark's whole default test list, and against a
 * real redis-server (started on a free loopback port): the same command sequence sent to
 * both must get byte-identical replies.
 *
 * No strand runtime in this process: the test is a plain client. Skips what needs
 * redis-cli / redis-benchmark / redis-server when they are not installed.
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
    expect_reply(fd, "*1\r\n$3\r\nGET\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
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

/* ---------------------------------------------------------------- against redis-server */

static pid_t redis_pid;
static int   redis_port;

/* A loopback port nobody listens on right now (the kernel's choice, released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int dial_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Start redis-server on a free port (tried again on another if that one was taken in the
 * meantime); false when it cannot be started. */
static bool redis_start(void)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        redis_port = free_port();
        char port[16];
        snprintf(port, sizeof port, "%d", redis_port);
        redis_pid = fork();
        if (redis_pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                   (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) {
            int fd = dial_port(redis_port);
            if (fd >= 0) {
                close(fd);
                return true;
            }
            if (waitpid(redis_pid, NULL, WNOHANG) != 0)
                break; /* it exited: the port was taken, or no redis-server */
            usleep(50000);
        }
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
    return false;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

/* Buffered reading of whole RESP2 replies. */
typedef struct resp_reader {
    int    fd;
    char   buf[65536];
    size_t len;
} resp_reader;

static bool rr_fill(resp_reader *r)
{
    if (r->len == sizeof r->buf)
        return false;
    ssize_t n;
    do
        n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    r->len += (size_t)n;
    return true;
}

/* The length of the complete reply starting at buf[off], filling as needed; 0 if the
 * connection ended first. */
static size_t rr_reply_len(resp_reader *r, size_t off)
{
    char *nl;
    while ((nl = memmem(r->buf + off, r->len - off, "\r\n", 2)) == NULL)
        if (!rr_fill(r))
            return 0;
    size_t line = (size_t)(nl - (r->buf + off)) + 2;
    long n = strtol(r->buf + off + 1, NULL, 10);
    switch (r->buf[off]) {
    case '$':
        if (n < 0)
            return line;
        while (r->len - off < line + (size_t)n + 2)
            if (!rr_fill(r))
                return 0;
        return line + (size_t)n + 2;
    case '*': {
        size_t total = line;
        for (long i = 0; i < n; i++) {
            size_t one = rr_reply_len(r, off + total);
            if (one == 0)
                return 0;
            total += one;
        }
        return total;
    }
    default:
        return line;
    }
}

/* Send one command (arguments split on spaces, "''" is an empty one) and read its reply
 * into out (NUL-terminated); its length. */
static size_t command_reply(resp_reader *r, const char *cmdline, char *out, size_t cap)
{
    char copy[512], req[2048];
    snprintf(copy, sizeof copy, "%s", cmdline);
    char *argv[32], *save = NULL;
    int argc = 0;
    for (char *t = strtok_r(copy, " ", &save); t && argc < 32; t = strtok_r(NULL, " ", &save))
        argv[argc++] = strcmp(t, "''") == 0 ? "" : t;
    size_t len = (size_t)snprintf(req, sizeof req, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        len += (size_t)snprintf(req + len, sizeof req - len, "$%zu\r\n%s\r\n", strlen(argv[i]),
                                argv[i]);
    send_all(r->fd, req, len);
    size_t n = rr_reply_len(r, 0);
    assert_true(n > 0 && n < cap);
    memcpy(out, r->buf, n);
    out[n] = '\0';
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
    return n;
}

static void print_escaped(const char *label, const char *p, size_t n)
{
    char b[1024];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof b; i++)
        o += (size_t)(p[i] == '\r' ? snprintf(b + o, sizeof b - o, "\\r")
                    : p[i] == '\n' ? snprintf(b + o, sizeof b - o, "\\n")
                                   : snprintf(b + o, sizeof b - o, "%c", p[i]));
    b[o] = '\0';
    print_message("  %s: %s\n", label, b);
}

/* Every command the redis-benchmark default list sends, plus the readers and the error
 * cases around them, in an order that exercises creation, type errors and deletion of
 * emptied keys. Keys are fresh on both servers ("cmp:" keys are used nowhere else). */
static const char *const compare_cmds[] = {
    "PING", "PING hello", "ECHO x",
    "SET cmp:s v1", "GET cmp:s", "INCR cmp:n", "INCR cmp:n", "INCR cmp:s",
    "LPUSH cmp:l a b c", "RPUSH cmp:l d e", "LRANGE cmp:l 0 -1", "LRANGE cmp:l 1 2",
    "LRANGE cmp:l -2 -1", "LRANGE cmp:l 5 10", "LRANGE cmp:l 0 99", "LRANGE cmp:l -100 1",
    "LRANGE cmp:l 3 1", "LRANGE cmp:l x 1", "LRANGE cmp:l 01 2", "LRANGE cmp:none 0 -1",
    "LLEN cmp:l", "LLEN cmp:none", "LPOP cmp:l", "RPOP cmp:l", "LPOP cmp:l 2", "RPOP cmp:none",
    "LPOP cmp:none 2", "LPOP cmp:l -1", "LPOP cmp:l x", "RPOP cmp:l 5", "EXISTS cmp:l",
    "LPUSH cmp:l only", "GET cmp:l", "INCR cmp:l", "SADD cmp:l x", "HSET cmp:l f v",
    "ZADD cmp:l 1 m", "LPUSH cmp:s x", "LRANGE cmp:s 0 1", "LRANGE cmp:s x 1",
    "SADD cmp:set a b a", "SADD cmp:set c", "SCARD cmp:set", "SISMEMBER cmp:set a",
    "SISMEMBER cmp:set z", "SCARD cmp:none", "SADD cmp:one only", "SPOP cmp:one",
    "SPOP cmp:one", "EXISTS cmp:one", "SPOP cmp:none", "SPOP cmp:none 3", "SPOP cmp:set -2",
    "HSET cmp:h f1 v1 f2 v2", "HSET cmp:h f1 x", "HGET cmp:h f1", "HGET cmp:h nope",
    "HGET cmp:none f", "HLEN cmp:h", "HSET cmp:h f", "HSET cmp:h f v g",
    "ZADD cmp:z 1 a 2 b 1.5 c", "ZADD cmp:z 0.1 d", "ZADD cmp:z 3 a", "ZADD cmp:z 3 a",
    "ZADD cmp:z x a", "ZADD cmp:z 1", "ZADD cmp:z 1 a 2", "ZADD cmp:z nan a", "ZCARD cmp:z",
    "ZPOPMIN cmp:z", "ZPOPMIN cmp:z 2", "ZPOPMIN cmp:z 10", "ZPOPMIN cmp:z", "ZPOPMIN cmp:z -1",
    "ZPOPMIN cmp:z x", "SPOP cmp:set x", "ZPOPMIN cmp:none 2", "LPOP cmp:none 0",
    "ZADD cmp:z2 -inf m +inf n 1e20 o -0.5 p 2 q 2 b 2 a", "ZPOPMIN cmp:z2 4",
    "ZPOPMIN cmp:z2 9", "TYPE cmp:z2", "ZADD cmp:z3 1 aa 1 a 1 ab 1 b", "ZPOPMIN cmp:z3 4",
    "MSET cmp:m1 a cmp:m2 b", "GET cmp:m2", "MSET cmp:m1", "MSET cmp:m1 a cmp:m2",
    "TYPE cmp:s", "TYPE cmp:l", "TYPE cmp:set", "TYPE cmp:h", "TYPE cmp:nothing",
    "SET cmp:l replaced", "GET cmp:l", "TYPE cmp:l", "DEL cmp:h cmp:set cmp:none",
    "EXISTS cmp:h", "LPUSH cmp:x", "GET", "LRANGE cmp:l 0", "CONFIG GET save",
    "CONFIG GET appendonly",
};

static void test_against_redis(void **state)
{
    (void)state;
    test_deadline(60);
    if (!have("redis-server")) {
        print_message("redis-server not installed: skipped\n");
        skip();
    }
    assert_true(redis_start());
    resp_reader *kv = calloc(1, sizeof *kv), *rd = calloc(1, sizeof *rd);
    kv->fd = dial();
    rd->fd = dial_port(redis_port);
    assert_true(rd->fd >= 0);
    static char a[65536], b[65536];
    int mismatches = 0;
    size_t ncmds = sizeof compare_cmds / sizeof compare_cmds[0];
    for (size_t i = 0; i < ncmds; i++) {
        size_t na = command_reply(kv, compare_cmds[i], a, sizeof a);
        size_t nb = command_reply(rd, compare_cmds[i], b, sizeof b);
        if (na != nb || memcmp(a, b, na) != 0) {
            print_message("different replies to %s\n", compare_cmds[i]);
            print_escaped("kv_server   ", a, na);
            print_escaped("redis-server", b, nb);
            mismatches++;
        }
    }
    /* A long list, read in the slices redis-benchmark's LRANGE tests read. */
    char cmd[64];
    for (int i = 0; i < 650; i++) {
        snprintf(cmd, sizeof cmd, "%s cmp:big v%d", i % 2 ? "RPUSH" : "LPUSH", i);
        command_reply(kv, cmd, a, sizeof a);
        command_reply(rd, cmd, b, sizeof b);
    }
    static const char *const ranges[] = { "LRANGE cmp:big 0 99", "LRANGE cmp:big 0 299",
                                          "LRANGE cmp:big 0 499", "LRANGE cmp:big 0 599",
                                          "LRANGE cmp:big -700 700" };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        size_t na = command_reply(kv, ranges[i], a, sizeof a);
        size_t nb = command_reply(rd, ranges[i], b, sizeof b);
        if (na != nb || memcmp(a, b, na) != 0) {
            print_message("different replies to %s (%zu vs %zu bytes)\n", ranges[i], na, nb);
            mismatches++;
        }
    }
    /* Inline PING, as redis-benchmark's PING_INLINE sends it. */
    send_all(kv->fd, "PING\r\n", 6);
    send_all(rd->fd, "PING\r\n", 6);
    size_t na = rr_reply_len(kv, 0), nb = rr_reply_len(rd, 0);
    if (na != nb || memcmp(kv->buf, rd->buf, na) != 0)
        mismatches++;
    close(kv->fd);
    close(rd->fd);
    free(kv);
    free(rd);
    redis_stop();
    print_message("%zu commands compared with redis-server, %d different\n", ncmds + 6,
                  mismatches);
    assert_int_equal(mismatches, 0);
    assert_server_alive();
}

/* A plain redis-benchmark, its whole default test list: every test reports a rate. */
static void test_redis_benchmark_default(void **state)
{
    (void)state;
    test_deadline(180);
    if (!have("redis-benchmark")) {
        print_message("redis-benchmark not installed: skipped\n");
        return;
    }
    static char out[65536];
    char cmd[256];
    snprintf(cmd, sizeof cmd, "redis-benchmark -p %d -q -n %ld -c 20 2>&1 | tr '\\r' '\\n'",
             server_port, test_scale(2000, 500));
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    static const char *const tests[] = {
        "PING_INLINE: ", "PING_MBULK: ", "SET: ", "GET: ", "INCR: ", "LPUSH: ", "RPUSH: ",
        "LPOP: ", "RPOP: ", "SADD: ", "HSET: ", "SPOP: ", "ZADD: ", "ZPOPMIN: ",
        "LPUSH (needed to benchmark LRANGE): ", "LRANGE_100 (first 100 elements): ",
        "LRANGE_300 (first 300 elements): ", "LRANGE_500 (first 500 elements): ",
        "LRANGE_600 (first 600 elements): ", "MSET (10 keys): ",
    };
    bool ok = strstr(out, "ERR") == NULL;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        char *line = strstr(out, tests[i]);
        /* "NAME: <rate> requests per second" (the final line of each test) */
        if (line == NULL || strstr(line, " requests per second") == NULL) {
            print_message("no rate for %s\n", tests[i]);
            ok = false;
        }
    }
    if (!ok)
        print_message("%s", out);
    assert_true(ok);
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
        cmocka_unit_test(test_against_redis),
        cmocka_unit_test(test_redis_benchmark_default),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
