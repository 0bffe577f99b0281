/*
 * echo_strand.c - TCP echo server on 127.0.0.1:<port> with one strand per connection
 * (strand_accept / strand_read / strand_write_all). Runs until killed.
 *
 * Usage: echo_strand [PORT]. Without PORT the kernel picks a free one; either way the
 * server prints "LISTENING <port>" once it listens (bench/run.sh starts it so and reads that
 * line, so a port taken by someone else can never fail the run). Driven by bench/loadgen.c,
 * like go/echo and echo_epoll.c.
 * The accepting strand owns the listening socket; each connection strand owns its fd
 * and closes it when the peer hangs up.
 */
#include "bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strand.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t r = strand_read(fd, buf, sizeof buf, STRAND_FOREVER);
        if (r <= 0)
            break;
        if (strand_write_all(fd, buf, (size_t)r, STRAND_FOREVER) < 0)
            break;
    }
    strand_fd_close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    strand_attr attr = { .detached = 1 };
    for (;;) {
        int fd = strand_accept(lfd, NULL, NULL, STRAND_FOREVER);
        if (fd < 0)
            continue; /* e.g. -EMFILE or a connection reset before accept */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (strand_spawn_attr(serve, (void *)(intptr_t)fd, &attr) < 0)
            close(fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on((int)bench_arg(argc, argv, 1, 0));
    if (lfd < 0) {
        perror("echo_strand: listen");
        return 1;
    }
    BENCH_CHECK(strand_run(acceptor, (void *)(intptr_t)lfd, NULL));
    return 0;
}
