/*
 * echo_epoll.c - the hand-written baseline for the echo benchmark: a single-threaded,
 * edge-triggered epoll TCP echo server in plain C (no strand), on 127.0.0.1:<port>.
 *
 * Usage: echo_epoll [PORT]. Without PORT the kernel picks a free one; either way it prints
 * "LISTENING <port>" once it listens (bench/run.sh reads that line). Runs until killed.
 *
 * One thread owns everything. Edge-triggered means every readiness event must be
 * drained to EAGAIN, or the event is lost: reads loop until EAGAIN, and bytes the
 * socket would not take are kept in the connection's pending buffer and flushed on
 * EPOLLOUT; while anything is pending the connection stops reading (back-pressure).
 */
#include "bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

typedef struct conn {
    int    fd;
    size_t off, len; /* pending bytes not yet written: buf[off, len) */
    char   buf[BUF];
} conn;

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    /* bench/run.sh reads this line to learn the port. */
    printf("LISTENING %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

static void drop(conn *c)
{
    close(c->fd); /* closing removes it from the epoll set */
    free(c);
}

/* Write what is pending; 0 = all written, 1 = socket full (wait for EPOLLOUT), -1 error. */
static int flush(conn *c)
{
    while (c->off < c->len) {
        ssize_t w = write(c->fd, c->buf + c->off, c->len - c->off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 1 : -1;
        }
        c->off += (size_t)w;
    }
    c->off = c->len = 0;
    return 0;
}

/* Drain the socket, echoing as we go; returns -1 when the connection is finished. */
static int serve(conn *c)
{
    int f = flush(c);
    if (f != 0)
        return f < 0 ? -1 : 0; /* still blocked on output: EPOLLOUT will bring us back */
    for (;;) {
        ssize_t r = read(c->fd, c->buf, BUF);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->off = 0;
        c->len = (size_t)r;
        f = flush(c);
        if (f < 0)
            return -1;
        if (f > 0)
            return 0; /* unread input stays in the kernel until the output drains */
        /* A short read of a stream socket means it was drained (epoll(7)); new data
         * raises a new edge, so the read that would say EAGAIN can be skipped. */
        if ((size_t)r < BUF)
            return 0;
    }
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return; /* EAGAIN: drained; anything else: try again on the next edge */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            drop(c);
    }
}

int main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on((int)bench_arg(argc, argv, 1, 0));
    int ep = epoll_create1(0);
    if (lfd < 0 || ep < 0) {
        perror("echo_epoll: listen");
        return 1;
    }
    /* The listener's data.ptr is NULL; connections carry their conn pointer. */
    struct epoll_event lev = { .events = EPOLLIN | EPOLLET, .data.ptr = NULL };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        return 1;
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                accept_all(ep, lfd);
                continue;
            }
            if ((evs[i].events & EPOLLERR) || serve(c) < 0)
                drop(c);
        }
    }
}
