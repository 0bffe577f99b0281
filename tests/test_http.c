/*
 * test_http.c - examples/http_server from the outside: the server runs as a child process
 * (the binary next to this test's directory, build/examples/http_server) on a port the
 * kernel picks, with 3 workers and a 1 s request timeout, and this process talks HTTP to it
 * over plain sockets: the routes, keep-alive, pipelining, bodies (Content-Length and
 * chunked), malformed and oversized requests, and the bad clients (slow-loris, a client
 * that never reads, a thousand connections opened and dropped), each of which must cost
 * only itself while a well-behaved client keeps being served promptly. A second server is
 * started for the SIGTERM test (graceful stop, exit 0) and the option tests.
 *
 * No strand runtime in this process: the test is a plain client.
 */
// ctest-timeout: 240
#include "test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>

static char server_path[4096];

typedef struct server {
    pid_t pid;
    int   port;
} server;

static server srv; /* the one most tests share */

/* ---------------------------------------------------------------- the server process */

/* Start http_server with extra arguments (NULL-terminated); read its port from stdout. */
static int server_start(server *s, const char *const *extra)
{
    const char *argv[16] = { "http_server", "--port", "0", "--workers", "3" };
    int n = 5;
    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    int p[2];
    if (pipe(p) != 0)
        return -1;
    s->pid = fork();
    if (s->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(server_path, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[256] = "";
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *colon = ok ? strrchr(line, ':') : NULL;
    s->port = colon ? atoi(colon + 1) : 0;
    return s->port > 0 ? 0 : -1;
}

static void server_kill(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static int setup(void **state)
{
    (void)state;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(server_path, sizeof server_path, "%s/../examples/http_server", dirname(self));
    if (access(server_path, X_OK) != 0) {
        fprintf(stderr, "http_server not built at %s\n", server_path);
        return -1;
    }
    struct rlimit rl; /* a thousand client sockets at once */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static const char *const extra[] = { "--request-timeout", "1", NULL };
    return server_start(&srv, extra);
}

static int teardown(void **state)
{
    (void)state;
    server_kill(&srv);
    return 0;
}

static void assert_server_alive(void)
{
    int st;
    assert_int_equal(waitpid(srv.pid, &st, WNOHANG), 0);
}

/* ---------------------------------------------------------------- a small HTTP client */

static int dial_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = { 5, 0 }; /* no test may hang on a read */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int dial(void)
{
    int fd = dial_port(srv.port);
    assert_true(fd >= 0);
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

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* A connection's received bytes, kept across responses (pipelined replies arrive together). */
typedef struct reader {
    int    fd;
    char   buf[65536];
    size_t len;
} reader;

typedef struct response {
    int    status;
    char   head[4096]; /* status line and headers, NUL-terminated */
    char   body[4096];
    size_t body_len;
} response;

/* Read one response (Content-Length framed); false on EOF or timeout before it is whole. */
static bool read_response(reader *r, response *out)
{
    memset(out, 0, sizeof *out);
    for (;;) {
        char *end = memmem(r->buf, r->len, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t hl = (size_t)(end - r->buf) + 4;
            assert_true(hl < sizeof out->head);
            memcpy(out->head, r->buf, hl);
            out->head[hl] = '\0';
            size_t blen = 0; /* an interim (1xx) response has no body */
            if (strncmp(out->head, "HTTP/1.1 1", 10) != 0) {
                const char *cl = strcasestr(out->head, "\r\nContent-Length: ");
                assert_non_null(cl);
                blen = strtoul(cl + 18, NULL, 10);
            }
            if (r->len >= hl + blen) {
                assert_true(blen < sizeof out->body);
                memcpy(out->body, r->buf + hl, blen);
                out->body_len = blen;
                out->status = atoi(out->head + 9);
                memmove(r->buf, r->buf + hl + blen, r->len - hl - blen);
                r->len -= hl + blen;
                return true;
            }
        }
        if (r->len == sizeof r->buf)
            return false;
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        r->len += (size_t)n;
    }
}

/* After the last response: the server closes (EOF or reset), not a timeout. */
static void assert_closed(reader *r)
{
    assert_int_equal(r->len, 0);
    char b[256];
    ssize_t n;
    do
        n = recv(r->fd, b, sizeof b, 0);
    while (n < 0 && errno == EINTR);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static bool has_header(const response *r, const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    return strcasestr(r->head, want) != NULL;
}

static const char GET_ROOT[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
static const char GET_JSON[] = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";
static const char HELLO[] = "Hello, World!";
static const char JSON[] = "{\"message\":\"Hello, World!\"}";

static void assert_hello(const response *r)
{
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, strlen(HELLO));
    assert_memory_equal(r->body, HELLO, r->body_len);
    assert_true(has_header(r, "Content-Type: text/plain; charset=utf-8"));
    assert_true(has_header(r, "Content-Length: 13"));
}

static void assert_json(const response *r)
{
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, strlen(JSON));
    assert_memory_equal(r->body, JSON, r->body_len);
    assert_true(has_header(r, "Content-Type: application/json"));
}

/* One request on a fresh connection; the response's status. */
static int one_request(const char *req, response *resp)
{
    reader *r = calloc(1, sizeof *r);
    r->fd = dial();
    send_str(r->fd, req);
    int status = read_response(r, resp) ? resp->status : -1;
    close(r->fd);
    free(r);
    return status;
}

/* A fresh connection is answered within `ms`: nobody is starved. */
static void assert_served_within(int ms)
{
    int64_t t0 = strand_now();
    response resp;
    assert_int_equal(one_request(GET_ROOT, &resp), 200);
    int64_t took = (strand_now() - t0) / 1000000;
    if (took > ms)
        fail_msg("a normal request took %lld ms (limit %d)", (long long)took, ms);
}

/* ---------------------------------------------------------------- routes and framing */

static void test_routes(void **state)
{
    (void)state;
    test_deadline(30);
    response resp;
    assert_int_equal(one_request(GET_ROOT, &resp), 200);
    assert_hello(&resp);
    assert_true(has_header(&resp, "Server: strand"));
    assert_non_null(strstr(resp.head, "\r\nDate: "));
    assert_int_equal(one_request(GET_JSON, &resp), 200);
    assert_json(&resp);
    assert_int_equal(one_request("GET /json?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 200);
    assert_json(&resp);
    assert_int_equal(one_request("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 404);
    assert_int_equal(one_request("DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 405);
    assert_true(has_header(&resp, "Allow: GET, HEAD"));
    assert_int_equal(one_request("get / HTTP/1.1\r\nHost: t\r\n\r\n", &resp), 405);
    assert_int_equal(one_request("GET / HTTP/2.0\r\nHost: t\r\n\r\n", &resp), 505);
    assert_int_equal(one_request("GET / HTTP/1.1\r\n\r\n", &resp), 400); /* no Host */

    /* HEAD: the headers of GET, no body; the next response follows directly. */
    reader *r = calloc(1, sizeof *r);
    r->fd = dial();
    send_str(r->fd, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    send_str(r->fd, GET_JSON);
    char b[4096];
    size_t got = 0;
    while (!memmem(b, got, JSON, strlen(JSON))) {
        ssize_t n = recv(r->fd, b + got, sizeof b - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    char *second = memmem(b, got, "HTTP/1.1 200", 12);
    assert_non_null(second);
    second = memmem(second + 1, got - (size_t)(second + 1 - b), "HTTP/1.1 200", 12);
    assert_non_null(second);
    assert_non_null(memmem(b, (size_t)(second - b), "Content-Length: 13\r\n", 20));
    assert_null(memmem(b, (size_t)(second - b), HELLO, strlen(HELLO)));
    close(r->fd);
    free(r);
    assert_server_alive();
}

static void test_keep_alive(void **state)
{
    (void)state;
    test_deadline(30);
    reader *r = calloc(1, sizeof *r);
    r->fd = dial();
    response resp;
    for (int i = 0; i < 3; i++) {
        send_str(r->fd, i == 1 ? GET_JSON : GET_ROOT);
        assert_true(read_response(r, &resp));
        if (i == 1)
            assert_json(&resp);
        else
            assert_hello(&resp);
        assert_null(strcasestr(resp.head, "Connection: close"));
    }
    /* Connection: close is honoured: the answer says so and the connection ends. */
    send_str(r->fd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_true(read_response(r, &resp));
    assert_hello(&resp);
    assert_true(has_header(&resp, "Connection: close"));
    assert_closed(r);
    close(r->fd);

    /* HTTP/1.0 closes unless it asks for keep-alive. */
    r->fd = dial();
    r->len = 0;
    send_str(r->fd, "GET /json HTTP/1.0\r\n\r\n");
    assert_true(read_response(r, &resp));
    assert_json(&resp);
    assert_closed(r);
    close(r->fd);
    r->fd = dial();
    send_str(r->fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(read_response(r, &resp));
    assert_true(has_header(&resp, "Connection: keep-alive"));
    send_str(r->fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(read_response(r, &resp));
    assert_hello(&resp);
    close(r->fd);
    free(r);
}

static void test_pipelining(void **state)
{
    (void)state;
    test_deadline(30);
    reader *r = calloc(1, sizeof *r);
    r->fd = dial();
    enum { N = 10 };
    char req[2048];
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        const char *one = i % 3 == 1 ? GET_JSON : GET_ROOT;
        memcpy(req + len, one, strlen(one));
        len += strlen(one);
    }
    send_all(r->fd, req, len); /* one write: all ten requests arrive together */
    response resp;
    for (int i = 0; i < N; i++) {
        assert_true(read_response(r, &resp));
        if (i % 3 == 1)
            assert_json(&resp);
        else
            assert_hello(&resp);
    }
    /* 200 requests at once, in pieces that cut requests in the middle. */
    static char big[200 * 64];
    len = 0;
    for (int i = 0; i < 200; i++) {
        const char *one = i % 2 ? GET_JSON : GET_ROOT;
        memcpy(big + len, one, strlen(one));
        len += strlen(one);
    }
    for (size_t off = 0; off < len; off += 777)
        send_all(r->fd, big + off, len - off < 777 ? len - off : 777);
    for (int i = 0; i < 200; i++) {
        assert_true(read_response(r, &resp));
        if (i % 2)
            assert_json(&resp);
        else
            assert_hello(&resp);
    }
    close(r->fd);
    free(r);
}

static void test_bodies(void **state)
{
    (void)state;
    test_deadline(30);
    reader *r = calloc(1, sizeof *r);
    r->fd = dial();
    response resp;
    /* Content-Length: 100,000 bytes, then a request on the same connection. */
    enum { LEN = 100000 };
    char *body = malloc(LEN);
    memset(body, 'b', LEN);
    char head[256];
    snprintf(head, sizeof head, "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n",
             LEN);
    send_str(r->fd, head);
    send_all(r->fd, body, LEN);
    send_str(r->fd, GET_JSON);
    assert_true(read_response(r, &resp));
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "100000\n");
    assert_true(read_response(r, &resp));
    assert_json(&resp);

    /* Chunked, with an extension and a trailer, sent in small pieces. */
    const char *chunked = "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n1A;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                          "0\r\nX-Trailer: yes\r\n\r\n";
    size_t clen = strlen(chunked);
    for (size_t off = 0; off < clen; off += 7) {
        send_all(r->fd, chunked + off, clen - off < 7 ? clen - off : 7);
        usleep(1000); /* separate reads on the server: the decoder resumes mid-line */
    }
    send_str(r->fd, GET_ROOT);
    assert_true(read_response(r, &resp));
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "31\n");
    assert_true(read_response(r, &resp));
    assert_hello(&resp);

    /* A GET with a body: the body is consumed, the framing kept. */
    send_str(r->fd, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nxxxxx");
    send_str(r->fd, GET_JSON);
    assert_true(read_response(r, &resp));
    assert_hello(&resp);
    assert_true(read_response(r, &resp));
    assert_json(&resp);

    /* Expect: 100-continue gets its interim response before the body is sent. */
    send_str(r->fd, "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                    "Expect: 100-continue\r\n\r\n");
    assert_true(read_response(r, &resp));
    assert_non_null(strstr(resp.head, "HTTP/1.1 100 Continue"));
    send_str(r->fd, "abc");
    assert_true(read_response(r, &resp));
    assert_string_equal(resp.body, "3\n");

    /* A chunked body past the 1 MiB limit: 413 as soon as the chunk size says so. */
    send_str(r->fd, "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "200000\r\n");
    assert_true(read_response(r, &resp));
    assert_int_equal(resp.status, 413);
    assert_closed(r);
    close(r->fd);
    free(body);
    free(r);
}

/* ---------------------------------------------------------------- bad requests */

/* Send `bad`; expect `status`, then a closed connection. */
static void expect_rejected(const char *bad, size_t len, int status)
{
    reader *r = calloc(1, sizeof *r);
    r->fd = dial();
    send_all(r->fd, bad, len);
    response resp;
    if (!read_response(r, &resp))
        fail_msg("no response to %.40s", bad);
    if (resp.status != status)
        fail_msg("%d instead of %d for %.60s", resp.status, status, bad);
    assert_true(has_header(&resp, "Connection: close"));
    assert_closed(r);
    close(r->fd);
    free(r);
}

static void test_bad_requests(void **state)
{
    (void)state;
    test_deadline(60);
    static const struct { const char *req; int status; } cases[] = {
        { "\x01\x02\x03garbage", 400 },                       /* answered before any CRLF */
        { "garbage\r\n\r\n", 400 },
        { "GET\r\n\r\n", 400 },
        { "GET /\r\n\r\n", 400 },
        { "GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400 },
        { "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400 },
        { "GET / HTTP/1.1\nHost: t\n\n", 400 },                /* bare LF */
        { "GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nName : v\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
        { "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
          "Transfer-Encoding: chunked\r\n\r\n", 400 },
        { "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
        { "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
        { "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
          "3\r\nabcX\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: t\r\nX: a\001b\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_rejected(cases[i].req, strlen(cases[i].req), cases[i].status);

    /* Random bytes, and valid requests with a few bytes changed: whatever they are, an
     * answer or a close, never a hang or a crash. */
    static const char good[] = "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
                               "\r\n\r\n4;x=y\r\nabcd\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n"
                               "Host: t\r\nContent-Length: 2\r\n\r\nxy";
    unsigned seed = 14;
    for (int round = 0; round < 400; round++) {
        char m[512];
        size_t len;
        if (round % 2 == 0) {
            len = 1 + (size_t)(rand_r(&seed) % sizeof m);
            for (size_t i = 0; i < len; i++)
                m[i] = (char)rand_r(&seed);
        } else {
            len = sizeof good - 1;
            memcpy(m, good, len);
            for (int k = 0; k < 3; k++)
                m[rand_r(&seed) % len] = (char)rand_r(&seed);
        }
        int fd = dial();
        send_all(fd, m, len);
        shutdown(fd, SHUT_WR);
        char b[1024];
        ssize_t n;
        while ((n = recv(fd, b, sizeof b, 0)) > 0)
            ;
        assert_true(n == 0 || errno == ECONNRESET); /* not a timeout */
        close(fd);
    }
    assert_served_within(1000);
    assert_server_alive();
}

static void test_limits(void **state)
{
    (void)state;
    test_deadline(30);
    /* A 1 GB Content-Length: 413 without waiting for the body, then the close. */
    int64_t t0 = strand_now();
    const char *huge = "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n";
    expect_rejected(huge, strlen(huge), 413);
    assert_true(strand_now() - t0 < 3000000000LL);

    /* A header section past 8 KiB. */
    static char big[10000];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', 9000);
    memcpy(big + n + 9000, "\r\n\r\n", 5);
    expect_rejected(big, strlen(big), 413);
    /* ... also when it never ends (no blank line at all). */
    expect_rejected(big, (size_t)n + 9000, 413);
    /* A request line past 8 KiB. */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'p', 9000);
    expect_rejected(big, 9005, 413);
    /* Just under the limit is fine. */
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', 8000);
    memcpy(big + n + 8000, "\r\n\r\n", 5);
    response resp;
    assert_int_equal(one_request(big, &resp), 200);
    assert_server_alive();
}

/* ---------------------------------------------------------------- bad clients */

/* A header byte every 250 ms against a 1 s request deadline: dropped (408 or a close) by
 * about 1 s, while a normal client is served promptly all along. */
static void test_slow_loris(void **state)
{
    (void)state;
    test_deadline(60);
    enum { SLOW = 20 };
    int fds[SLOW];
    for (int i = 0; i < SLOW; i++)
        fds[i] = dial();
    const char *req = "GET / HTTP/1.1\r\nHost: slow\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int64_t t0 = strand_now();
    bool dropped[SLOW] = { false };
    int ndropped = 0;
    for (int step = 0; ndropped < SLOW && step < 40; step++) {
        for (int i = 0; i < SLOW; i++) {
            if (dropped[i])
                continue;
            if (send(fds[i], req + step, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
                dropped[i] = true;
                ndropped++;
                continue;
            }
            char b[512];
            ssize_t n = recv(fds[i], b, sizeof b, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno == ECONNRESET) ||
                (n > 0 && strncmp(b, "HTTP/1.1 408", 12) == 0)) {
                dropped[i] = true;
                ndropped++;
            } else if (n > 0) {
                fail_msg("the slow client got a response: %.*s", (int)n, b);
            }
        }
        assert_served_within(500);
        usleep(250000);
    }
    int64_t took = (strand_now() - t0) / 1000000;
    print_message("slow-loris: %d of %d clients dropped after %lld ms\n", ndropped, SLOW,
                  (long long)took);
    assert_int_equal(ndropped, SLOW);
    assert_true(took < 5000); /* about the 1 s deadline (plus scheduling on a busy machine) */
    for (int i = 0; i < SLOW; i++)
        close(fds[i]);
    assert_server_alive();
}

static long server_rss_kb(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)srv.pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int server_fds(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)srv.pid);
    DIR *d = opendir(path);
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* Clients that flood pipelined requests and never read: each one's strand parks on its
 * write (and is dropped by the 1 s deadline), memory stays bounded, others are served. */
static void test_client_never_reads(void **state)
{
    (void)state;
    test_deadline(60);
    long before = server_rss_kb();
    enum { NR = 10 };
    int fds[NR];
    static char flood[64 * 1024];
    size_t per = sizeof flood / strlen(GET_JSON);
    for (size_t i = 0; i < per; i++)
        memcpy(flood + i * strlen(GET_JSON), GET_JSON, strlen(GET_JSON));
    for (int i = 0; i < NR; i++) {
        fds[i] = dial();
        int rcv = 4096; /* a small window: the server's writes block soon */
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    long sent = 0;
    int64_t t_end = strand_now() + 2500000000LL;
    while (strand_now() < t_end) {
        for (int i = 0; i < NR; i++) {
            ssize_t w = send(fds[i], flood, per * strlen(GET_JSON), MSG_NOSIGNAL);
            if (w > 0)
                sent += w;
        }
        assert_served_within(1000);
        usleep(20000);
    }
    long after = server_rss_kb();
    print_message("never-reading clients: sent %ld KB of requests; server RSS %ld -> %ld KB\n",
                  sent / 1024, before, after);
    assert_true(after - before < 32 * 1024);
    /* Past the 1 s write deadline they have been dropped: a send now fails (reset). */
    int reset = 0;
    for (int i = 0; i < NR; i++) {
        char b[65536];
        while (recv(fds[i], b, sizeof b, 0) > 0)
            ;
        if (send(fds[i], GET_JSON, strlen(GET_JSON), MSG_NOSIGNAL) < 0 || errno == ECONNRESET)
            reset++;
        close(fds[i]);
    }
    print_message("never-reading clients dropped: %d of %d\n", reset, NR);
    assert_served_within(1000);
    assert_server_alive();
}

/* A thousand connections opened and dropped (some mid-request, some reset): every one is
 * released, and the server goes on serving. */
static void test_many_connections(void **state)
{
    (void)state;
    test_deadline(120);
    int base = server_fds();
    enum { N = 1000 };
    static int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = dial();
        if (i % 3 == 1)
            send_str(fds[i], "GET / HTTP/1.1\r\nHo");
        if (i % 3 == 2) {
            struct linger lg = { 1, 0 }; /* close = RST */
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        if (i % 100 == 0)
            assert_served_within(1000);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    int fds_now = 0;
    for (int tries = 0; tries < 100; tries++) {
        fds_now = server_fds();
        if (fds_now <= base)
            break;
        usleep(50000);
    }
    print_message("server descriptors: %d before, %d after 1000 dropped connections\n", base,
                  fds_now);
    assert_true(fds_now <= base);
    assert_served_within(1000);
    assert_server_alive();
}

/* ---------------------------------------------------------------- stopping and options */

/* SIGTERM: the idle connection is closed, the request in flight is finished (and says
 * "Connection: close"), new connections are refused, and the server exits 0. */
static void test_sigterm(void **state)
{
    (void)state;
    test_deadline(60);
    server s;
    static const char *const extra[] = { "--grace", "5", NULL };
    assert_int_equal(server_start(&s, extra), 0);
    reader *idle = calloc(1, sizeof *idle), *busy = calloc(1, sizeof *busy);
    idle->fd = dial_port(s.port);
    busy->fd = dial_port(s.port);
    assert_true(idle->fd >= 0 && busy->fd >= 0);
    response resp;
    send_str(idle->fd, GET_ROOT);
    assert_true(read_response(idle, &resp)); /* now idle between requests */
    send_str(busy->fd, "GET /json HTTP/1.1\r\nHost: t\r\n"); /* a request half sent */
    usleep(100000);
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    assert_closed(idle);
    usleep(200000);
    int fresh = dial_port(s.port);
    assert_int_equal(fresh, -1); /* the listening socket is gone */
    send_str(busy->fd, "\r\n");
    assert_true(read_response(busy, &resp));
    assert_json(&resp);
    assert_true(has_header(&resp, "Connection: close"));
    assert_closed(busy);
    int st = 0;
    int64_t until = strand_now() + 10000000000LL;
    pid_t w;
    while ((w = waitpid(s.pid, &st, WNOHANG)) == 0 && strand_now() < until)
        usleep(20000);
    if (w == 0)
        server_kill(&s);
    assert_int_equal(w, s.pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(idle->fd);
    close(busy->fd);
    free(idle);
    free(busy);
}

static int run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_options(void **state)
{
    (void)state;
    test_deadline(30);
    char cmd[8192], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' --help 2>/dev/null", server_path);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage:"));
    assert_non_null(strstr(out, "--port"));
    snprintf(cmd, sizeof cmd, "'%s' -h 2>/dev/null", server_path);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage:"));
    static const char *bad[] = { "--bogus", "--port 70000", "--workers 0", "--port",
                                 "--max-body x", "extra" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' %s 2>&1 >/dev/null", server_path, bad[i]);
        assert_int_equal(run_capture(cmd, out, sizeof out), 2);
        assert_non_null(strstr(out, "usage:")); /* on stderr */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_slow_loris),
        cmocka_unit_test(test_client_never_reads),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
