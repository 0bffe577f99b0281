/*
 * http_server.c - an HTTP/1.1 server on 127.0.0.1 with one strand per connection, written
 * against the public API only.
 *
 *   ./http_server --port 8080          (--port 0: the kernel picks; the port is printed)
 *   curl http://127.0.0.1:8080/        -> Hello, World!
 *   curl http://127.0.0.1:8080/json    -> {"message":"Hello, World!"}
 *   curl --data-binary @file http://127.0.0.1:8080/count   -> the body's length in bytes
 *
 * The request parser (head and chunked bodies) is http_parse.c; the top-level CMakeLists.txt
 * links every .c file in examples/ without a main() into each example program.
 *
 * Routes: GET (and HEAD) / and /json; POST /count answers the number of body bytes it
 * received (so tests can see that bodies are parsed). Other paths: 404; other methods on
 * these paths: 405.
 *
 * How a connection works (serve_conn): bytes are read into `in`; every complete request in
 * it is handled (pipelining) and its response appended to `out`, in order; `out` is written
 * in one call when no complete request is left (or when it is nearly full), then the strand
 * reads again. Bodies (Content-Length or chunked) are consumed as they stream through `in`
 * and never stored, so a connection's memory is bounded whatever it sends: IN_CAP + OUT_CAP
 * bytes plus its strand's stack.
 *
 * Limits and deadlines (the bad clients cost only themselves):
 *  - a request head (request line + headers) longer than HEAD_MAX: 413, connection closed;
 *  - a body longer than --max-body (Content-Length: answered before any body is read): 413;
 *  - malformed requests: 400; an HTTP version other than 1.0/1.1: 505; a transfer coding
 *    other than chunked: 501. Each of these closes the connection (its framing is lost);
 *  - each request must arrive completely within --request-timeout of its first byte (a
 *    slow-loris client is dropped then with a 408), an idle keep-alive connection is closed
 *    after --idle-timeout, and a response that cannot be written within --request-timeout
 *    (a client that never reads) drops that client.
 *
 * Stopping: SIGTERM (read from a signalfd by the main strand) stops accepting (shutdown of
 * the listening socket wakes the accept loop), closes connections that are idle between
 * requests, lets the others finish the request in flight (their response says
 * "Connection: close") for up to --grace seconds, then the program exits 0.
 *
 * Invariants: a connection's fd is used and closed only by its own strand; the stop code
 * touches other connections' fds only with shutdown(2), under reg_lock, and a connection
 * leaves the registry (under reg_lock) before it closes its fd, so shutdown never reaches a
 * reused fd number.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_parse.h"
#include "strand.h"

#define IN_CAP     (HEAD_MAX + 4096)
#define OUT_CAP    16384
#define RESP_MAX   1024            /* room one response needs in `out` */
#define SEC        1000000000LL

static struct {
    int     port, workers;
    int64_t request_ns, idle_ns, grace_ns; /* a negative timeout: none (STRAND_FOREVER) */
    uint64_t max_body;
} opt = { 8080, 0, 10 * SEC, 60 * SEC, 5 * SEC, 1u << 20 };

/* ================================================================ responses */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

/* ================================================================ connections */

typedef struct conn {
    int          fd;
    struct conn *prev, *next;  /* the registry, under reg_lock */
    atomic_bool  idle;         /* waiting for the first byte of a request */
    bool         dead;         /* a write failed or timed out */
    bool         linger;       /* closing after an error: the client may still be sending */
    enum { S_HEAD, S_BODY_LEN, S_BODY_CHUNKED } st;
    http_req     req;          /* req.path is stale once the body streams through `in` */
    enum route { RT_NONE, RT_HELLO, RT_JSON, RT_COUNT } rt;
    uint64_t     body_left;
    chunk_dec    chunks;
    int64_t      req_deadline; /* 0: no request in progress */
    time_t       date_sec;
    char         date[40];     /* "Date: ...\r\n" for date_sec */
    size_t       in_len, pos;  /* in[pos..in_len) is not processed yet */
    size_t       out_len;
    char         in[IN_CAP];
    char         out[OUT_CAP];
} conn;

static strand_mutex reg_lock;
static conn        *reg_head;
static atomic_bool  stopping;
static strand_wg    live; /* one count per connection strand */

static void reg_add(conn *c)
{
    strand_mutex_lock(&reg_lock, STRAND_FOREVER);
    c->next = reg_head;
    if (reg_head)
        reg_head->prev = c;
    reg_head = c;
    strand_mutex_unlock(&reg_lock);
}

static void reg_remove(conn *c)
{
    strand_mutex_lock(&reg_lock, STRAND_FOREVER);
    if (c->prev)
        c->prev->next = c->next;
    else
        reg_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    strand_mutex_unlock(&reg_lock);
}

/* Write `out` (or, once a write failed, drop it): afterwards `out` is empty. */
static void flush_out(conn *c)
{
    /* A client that does not read parks only this strand, and only until the deadline. */
    if (c->out_len > 0 && !c->dead &&
        strand_write_all(c->fd, c->out, c->out_len, strand_deadline_in(opt.request_ns)) < 0)
        c->dead = true;
    c->out_len = 0;
}

/* The Date header, formatted again only when the second changes (time() is a vDSO call). */
static const char *date_header(conn *c)
{
    time_t now = time(NULL);
    if (now != c->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(c->date, sizeof c->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        c->date_sec = now;
    }
    return c->date;
}

/* Append one response; `body` is left out for HEAD. */
static void put(conn *c, const char *p, size_t n)
{
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void put_str(conn *c, const char *s)
{
    put(c, s, strlen(s));
}

/* Append one response (`body` left out for HEAD). Built with memcpy, not snprintf: this is
 * the per-request path. The caller's sizes keep it within RESP_MAX + blen. */
static void respond(conn *c, int status, const char *type, const char *body, size_t blen,
                    bool keep, bool head_only)
{
    if (c->out_len + RESP_MAX + blen > OUT_CAP)
        flush_out(c);
    char num[24], *e = num + sizeof num, *d = e;
    size_t v = blen;
    do
        *--d = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    char code[4] = { (char)('0' + status / 100), (char)('0' + status / 10 % 10),
                     (char)('0' + status % 10), ' ' };
    put(c, "HTTP/1.1 ", 9);
    put(c, code, 4);
    put_str(c, reason(status));
    put_str(c, "\r\nServer: strand\r\n");
    put_str(c, date_header(c));
    put_str(c, "Content-Type: ");
    put_str(c, type);
    put_str(c, "\r\nContent-Length: ");
    put(c, d, (size_t)(e - d));
    put(c, "\r\n", 2);
    if (status == 405)
        put_str(c, "Allow: GET, HEAD\r\n");
    if (!keep)
        put_str(c, "Connection: close\r\n");
    else if (c->req.minor == 0)
        put_str(c, "Connection: keep-alive\r\n");
    put(c, "\r\n", 2);
    if (!head_only && blen <= OUT_CAP - c->out_len)
        put(c, body, blen);
}

static void respond_error(conn *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, false, false);
}

static bool path_is(const http_req *r, const char *p)
{
    return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

static enum route route_of(const http_req *r)
{
    return path_is(r, "/") ? RT_HELLO : path_is(r, "/json") ? RT_JSON
         : path_is(r, "/count") ? RT_COUNT : RT_NONE;
}

/* The routes, for a request whose body was consumed (`body_len` bytes); false when the
 * connection closes after this response. */
static bool route(conn *c, uint64_t body_len)
{
    static const char hello[] = "Hello, World!";
    static const char json[] = "{\"message\":\"Hello, World!\"}";
    const http_req *r = &c->req;
    bool keep = r->keep_alive && !atomic_load_explicit(&stopping, memory_order_relaxed);
    bool get = r->method == M_GET || r->method == M_HEAD;
    const char *text = "text/plain; charset=utf-8";
    if (c->rt == RT_HELLO || c->rt == RT_JSON) {
        if (!get) {
            respond(c, 405, text, "405 Method Not Allowed\n", 23, keep, r->method == M_HEAD);
            return keep;
        }
        bool j = c->rt == RT_JSON;
        respond(c, 200, j ? "application/json" : text, j ? json : hello,
                j ? sizeof json - 1 : sizeof hello - 1, keep, r->method == M_HEAD);
    } else if (c->rt == RT_COUNT) {
        char b[32];
        int n = snprintf(b, sizeof b, "%" PRIu64 "\n", body_len);
        if (r->method == M_POST)
            respond(c, 200, text, b, (size_t)n, keep, false);
        else
            respond(c, 405, text, "405 Method Not Allowed\n", 23, keep, r->method == M_HEAD);
    } else {
        respond(c, 404, text, "404 Not Found\n", 14, keep, r->method == M_HEAD);
    }
    return keep;
}

enum { R_MORE, R_CLOSE };

/* A request we cannot go on from: its framing is lost, so the connection ends. */
static int fail(conn *c, int status)
{
    respond_error(c, status);
    c->linger = true;
    return R_CLOSE;
}

/* Handle every complete request in in[pos..in_len). R_MORE: read more bytes; R_CLOSE: the
 * connection ends (after `out` is written). */
static int process(conn *c)
{
    for (;;) {
        size_t avail = c->in_len - c->pos;
        const char *p = c->in + c->pos;
        if (c->st == S_HEAD) {
            if (avail >= 2 && p[0] == '\r' && p[1] == '\n') {
                c->pos += 2; /* empty lines before a request line are ignored (RFC 9112) */
                continue;
            }
            if (avail == 0)
                return R_MORE;
            int rc = http_parse_head(p, avail, &c->req);
            if (rc == P_MORE)
                return R_MORE;
            if (rc != P_OK)
                return fail(c, rc);
            c->pos += c->req.head_len;
            c->rt = route_of(&c->req);
            if (c->req.content_length > 0 && (uint64_t)c->req.content_length > opt.max_body)
                return fail(c, 413); /* answered without reading the body */
            c->body_left = c->req.content_length > 0 ? (uint64_t)c->req.content_length : 0;
            c->st = c->req.chunked ? S_BODY_CHUNKED : S_BODY_LEN;
            if (c->req.expect_continue && (c->body_left > 0 || c->req.chunked) &&
                c->out_len + 32 < OUT_CAP) {
                memcpy(c->out + c->out_len, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->out_len += 25;
            }
            memset(&c->chunks, 0, sizeof c->chunks);
            continue;
        }
        uint64_t body_len;
        if (c->st == S_BODY_LEN) {
            size_t take = c->body_left < avail ? (size_t)c->body_left : avail;
            c->pos += take;
            c->body_left -= take;
            if (c->body_left > 0)
                return R_MORE;
            body_len = c->req.content_length > 0 ? (uint64_t)c->req.content_length : 0;
        } else {
            size_t used = 0;
            int rc = http_chunk_feed(&c->chunks, p, avail, opt.max_body, &used);
            c->pos += used;
            if (rc == P_MORE)
                return R_MORE;
            if (rc != P_OK)
                return fail(c, rc);
            body_len = c->chunks.total;
        }
        bool keep = route(c, body_len);
        c->st = S_HEAD;
        c->req_deadline = 0; /* the next request's time starts with its first byte */
        if (!keep)
            return R_CLOSE;
    }
}

/* Close without losing the last response: stop sending, then read and drop what the
 * client still sends (bounded in time and bytes), so the close does not reset the
 * connection before the client has read the response. */
static void linger_close(conn *c)
{
    shutdown(c->fd, SHUT_WR);
    int64_t until = strand_deadline_in(SEC);
    for (size_t drained = 0; drained < (1u << 20);) {
        ssize_t n = strand_read(c->fd, c->in, IN_CAP, until);
        if (n <= 0)
            break;
        drained += (size_t)n;
    }
}

/* Read more input; false when the connection must end. */
static bool read_more(conn *c)
{
    if (c->pos > 0) { /* keep the unprocessed part at the start of `in` */
        memmove(c->in, c->in + c->pos, c->in_len - c->pos);
        c->in_len -= c->pos;
        c->pos = 0;
    }
    bool idle = c->st == S_HEAD && c->in_len == 0;
    if (!idle && c->req_deadline == 0)
        c->req_deadline = strand_deadline_in(opt.request_ns);
    int64_t deadline = idle ? strand_deadline_in(opt.idle_ns) : c->req_deadline;
    if (idle) {
        /* seq_cst pairs with stop_all(): either it sees us idle and shuts us down, or we
         * see `stopping` here and leave. */
        atomic_store(&c->idle, true);
        if (atomic_load(&stopping))
            return false;
    }
    ssize_t n = strand_read(c->fd, c->in + c->in_len, IN_CAP - c->in_len, deadline);
    if (idle)
        atomic_store_explicit(&c->idle, false, memory_order_relaxed);
    if (n == -ETIMEDOUT && !idle) {
        fail(c, 408); /* the slow-loris case */
        flush_out(c);
    }
    if (n <= 0)
        return false;
    c->in_len += (size_t)n;
    return true;
}

static void *serve_conn(void *arg)
{
    conn *c = malloc(sizeof *c); /* only the header is zeroed: the buffers stay untouched */
    int fd = (int)(intptr_t)arg;
    if (c == NULL) {
        strand_fd_close(fd);
        strand_wg_done(&live);
        return NULL;
    }
    memset(c, 0, offsetof(conn, in));
    c->fd = fd;
    reg_add(c);
    for (;;) {
        if (process(c) == R_CLOSE)
            break;
        if (c->out_len > 0) {
            flush_out(c); /* every response to what was read so far, in one write */
            if (c->dead)
                break;
        }
        if (!read_more(c))
            break;
    }
    flush_out(c);
    if (c->linger && !c->dead)
        linger_close(c);
    reg_remove(c);
    strand_fd_close(fd);
    free(c);
    strand_wg_done(&live);
    return NULL;
}

/* ================================================================ accepting and stopping */

static void *accept_loop(void *arg)
{
    int lfd = *(int *)arg;
    strand_attr attr = { .detached = 1, .stack_size = 64 * 1024 };
    for (;;) {
        int fd = strand_accept(lfd, NULL, NULL, STRAND_FOREVER);
        if (fd < 0) {
            if (fd == -EINVAL || fd == -ECANCELED || fd == -EBADF)
                break; /* EINVAL: stop_all() shut the listening socket down */
            continue;  /* a transient error; strand_accept backs off on EMFILE itself */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        strand_wg_add(&live, 1);
        if (strand_spawn_attr(serve_conn, (void *)(intptr_t)fd, &attr) < 0) {
            strand_fd_close(fd);
            strand_wg_done(&live);
        }
    }
    strand_fd_close(lfd);
    return NULL;
}

/* Wake every connection waiting between requests: its read returns 0 and it closes. */
static void stop_all(void)
{
    strand_mutex_lock(&reg_lock, STRAND_FOREVER);
    atomic_store(&stopping, true);
    for (conn *c = reg_head; c; c = c->next)
        if (atomic_load(&c->idle))
            shutdown(c->fd, SHUT_RD);
    strand_mutex_unlock(&reg_lock);
}

typedef struct server {
    int lfd, sfd;
} server;

static void *main_strand(void *arg)
{
    server *s = arg;
    int64_t acc = strand_spawn(accept_loop, &s->lfd);
    if (acc < 0)
        return (void *)1;
    struct signalfd_siginfo si; /* only SIGTERM is routed to this fd */
    ssize_t n;
    do
        n = strand_read(s->sfd, &si, sizeof si, STRAND_FOREVER);
    while (n == -EINTR || n == -EAGAIN);
    if (n != (ssize_t)sizeof si)
        fprintf(stderr, "http_server: reading the signalfd: %zd; stopping\n", n);
    shutdown(s->lfd, SHUT_RD); /* the accept loop's strand_accept returns -EINVAL */
    strand_join(acc, NULL);
    stop_all();
    int rc = strand_wg_wait(&live, strand_deadline_in(opt.grace_ns));
    fprintf(stderr, "http_server: stopped%s\n",
            rc == 0 ? "" : " (grace period over; requests still running were dropped)");
    return NULL;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    printf("http_server listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

/* ================================================================ options */

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  -p, --port N             port on 127.0.0.1 (default 8080; 0 = any free port)\n"
            "  -w, --workers N          worker threads (default: one per CPU)\n"
            "  -t, --request-timeout S  seconds a request may take to arrive, and its\n"
            "                           response to be written (default 10; 0 = no limit)\n"
            "  -i, --idle-timeout S     seconds a keep-alive connection may idle (default 60;\n"
            "                           0 = no limit)\n"
            "  -b, --max-body BYTES     largest request body (default 1048576)\n"
            "  -g, --grace S            after SIGTERM, seconds to finish requests (default 5)\n"
            "  -h, --help               this text\n"
            "Routes: GET|HEAD / (text), GET|HEAD /json, POST /count (body length).\n",
            prog);
}

static bool num_arg(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

/* 0: run; 1: exit 0 (help); 2: bad usage. */
static int parse_options(int argc, char **argv)
{
    static const struct option longs[] = {
        { "port", required_argument, NULL, 'p' },   { "workers", required_argument, NULL, 'w' },
        { "request-timeout", required_argument, NULL, 't' },
        { "idle-timeout", required_argument, NULL, 'i' },
        { "max-body", required_argument, NULL, 'b' }, { "grace", required_argument, NULL, 'g' },
        { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
    };
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "p:w:t:i:b:g:h", longs, NULL)) != -1) {
        bool ok = ch != '?' && (ch == 'h' || num_arg(optarg, 0, 1e15, &v));
        switch (ok ? ch : '?') {
        case 'h': usage(stdout, argv[0]); return 1;
        case 'p': ok = v <= 65535 && v == (int)v; opt.port = (int)v; break;
        case 'w': ok = v >= 1 && v <= 1024 && v == (int)v; opt.workers = (int)v; break;
        case 't': ok = v < 1e6; opt.request_ns = v > 0 ? (int64_t)(v * SEC) : -1; break;
        case 'i': ok = v < 1e6; opt.idle_ns = v > 0 ? (int64_t)(v * SEC) : -1; break;
        case 'b': opt.max_body = (uint64_t)v; break;
        case 'g': ok = v < 1e6; opt.grace_ns = (int64_t)(v * SEC); break;
        default:  ok = false; break;
        }
        if (!ok) {
            if (ch != '?')
                fprintf(stderr, "%s: bad value for -%c: '%s'\n", argv[0], ch, optarg);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
        usage(stderr, argv[0]);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int prc = parse_options(argc, argv);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM is blocked before any thread starts (they inherit the mask) and read from a
     * signalfd by the main strand. */
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    int sfd = signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC);
    struct rlimit rl; /* one descriptor per client: allow as many as the system lets us */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    server s = { .lfd = listen_on(opt.port), .sfd = sfd };
    if (s.lfd < 0 || sfd < 0) {
        perror("http_server: listen");
        return 1;
    }
    strand_config cfg = { .workers = opt.workers };
    if (strand_init(&cfg) != 0 || strand_mutex_init(&reg_lock) != 0 ||
        strand_wg_init(&live) != 0) {
        fprintf(stderr, "http_server: cannot start the runtime\n");
        return 1;
    }
    void *res = NULL;
    int rc = strand_run(main_strand, &s, &res);
    return rc < 0 || res != NULL ? 1 : 0;
}
