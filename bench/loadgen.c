/*
 * loadgen.c - the one TCP echo load generator that drives all three echo servers
 * (echo_strand.c, go/echo, echo_epoll.c), so their figures differ only by the server.
 *
 * Usage: loadgen <port> [connections=100] [seconds=2] [threads=2] [msg_bytes=64]
 *
 * Plain C, no strand. Each of `threads` threads owns connections/threads connections
 * and its own epoll instance; nothing is shared between threads except the stop flag
 * and each thread's completed-request counter (written by its owner only, read by
 * main). Every connection is closed-loop: send one message, wait until the whole echo
 * is back (and matches), send the next. Main waits a short warm-up, then samples the
 * counters over the measured window and prints RESULT echo <requests/s> req/s.
 */
#include "bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MSG 4096
#define WARMUP_NS 300000000LL

typedef struct conn {
    int      fd;
    size_t   got;      /* bytes of the current echo received so far */
    uint64_t seq;      /* sequence number stamped into the current message */
    unsigned char out[MAX_MSG];
    unsigned char in[MAX_MSG];
} conn;

typedef struct worker {
    pthread_t        thread;
    int              nconns;
    conn            *conns;
    _Atomic uint64_t done;   /* completed round trips; written by the owner only */
    _Atomic int      failed; /* set by the owner on a protocol or socket error */
} worker;

static int g_port;
static size_t g_msg = 64;
static atomic_int g_stop;

static void fill(conn *c)
{
    /* A payload that changes every request, so a stale or mixed echo is caught. */
    for (size_t i = 0; i < g_msg; i++)
        c->out[i] = (unsigned char)(c->seq * 31 + i + (unsigned)c->fd);
}

static int send_msg(conn *c)
{
    c->seq++;
    c->got = 0;
    fill(c);
    ssize_t w = write(c->fd, c->out, g_msg);
    /* One message is in flight per connection, far below the socket buffer: a short
     * write here means something is badly wrong, not back-pressure. */
    return w == (ssize_t)g_msg ? 0 : -1;
}

static int open_conn(conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->fd = fd;
    return 0;
}

/* Returns 0 to go on, -1 on error. */
static int on_readable(worker *w, conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->got, g_msg - c->got);
        if (r < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        if (r == 0)
            return -1; /* the server hung up */
        c->got += (size_t)r;
        if (c->got < g_msg)
            continue;
        if (memcmp(c->in, c->out, g_msg) != 0)
            return -1;
        atomic_store_explicit(&w->done, atomic_load_explicit(&w->done, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        if (atomic_load_explicit(&g_stop, memory_order_relaxed))
            return 0;
        /* One message in flight: nothing more can be queued, so skip the read that
         * would only say EAGAIN (the level-triggered epoll brings us back). */
        return send_msg(c);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    int ep = epoll_create1(0);
    if (ep < 0) {
        w->failed = 1;
        return NULL;
    }
    for (int i = 0; i < w->nconns; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->conns[i] };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &ev) < 0 || send_msg(&w->conns[i]) < 0) {
            w->failed = 1;
            close(ep);
            return NULL;
        }
    }
    struct epoll_event evs[256];
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        int n = epoll_wait(ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            if (on_readable(w, evs[i].data.ptr) < 0) {
                w->failed = 1;
                atomic_store(&g_stop, 1);
                break;
            }
        }
    }
    close(ep);
    return NULL;
}

static uint64_t total_done(worker *ws, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += atomic_load_explicit(&ws[i].done, memory_order_relaxed);
    return s;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <port> [connections] [seconds] [threads] [msg_bytes]\n", argv[0]);
        return 2;
    }
    g_port = (int)bench_arg(argc, argv, 1, 0);
    int nconns = (int)bench_arg(argc, argv, 2, 100);
    int secs = (int)bench_arg(argc, argv, 3, 2);
    int nthreads = (int)bench_arg(argc, argv, 4, 2);
    g_msg = (size_t)bench_arg(argc, argv, 5, 64);
    if (g_msg > MAX_MSG || nthreads > nconns) {
        fprintf(stderr, "loadgen: bad sizes\n");
        return 2;
    }

    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!ws || !conns)
        return 1;
    for (int i = 0; i < nconns; i++) {
        if (open_conn(&conns[i]) < 0) {
            fprintf(stderr, "loadgen: connect to 127.0.0.1:%d failed: %s\n", g_port, strerror(errno));
            return 1;
        }
    }
    for (int t = 0, first = 0; t < nthreads; t++) {
        int k = nconns / nthreads + (t < nconns % nthreads);
        ws[t].conns = &conns[first];
        ws[t].nconns = k;
        first += k;
        if (pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]) != 0)
            return 1;
    }

    sleep_ns(WARMUP_NS);
    uint64_t c0 = total_done(ws, nthreads);
    int64_t t0 = bench_now_ns();
    sleep_ns((int64_t)secs * 1000000000LL);
    uint64_t c1 = total_done(ws, nthreads);
    int64_t t1 = bench_now_ns();
    atomic_store(&g_stop, 1);

    int failed = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(ws[t].thread, NULL);
        failed |= ws[t].failed;
    }
    for (int i = 0; i < nconns; i++)
        close(conns[i].fd);
    if (failed) {
        fprintf(stderr, "loadgen: a connection failed (error, hang-up or wrong echo)\n");
        return 1;
    }
    double rps = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
    printf("loadgen: %d connections, %d threads, %zu-byte messages, %.2f s: %llu requests\n",
           nconns, nthreads, g_msg, (double)(t1 - t0) / 1e9, (unsigned long long)(c1 - c0));
    bench_result("echo", rps, "req/s");
    free(conns);
    free(ws);
    return 0;
}
