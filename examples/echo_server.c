/*
 * echo_server.c - a TCP echo server on 127.0.0.1:PORT with one strand per connection.
 *
 *   ./echo_server 7000        (PORT 0 picks a free port; the chosen one is printed)
 *
 * Each connection's strand reads whatever arrives and writes it back; when the client
 * reads slowly, strand_write_all parks that strand (and so stops it reading), which is all
 * the back-pressure an echo server needs. Stop it with Ctrl-C.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "strand.h"

static void *serve_client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = strand_read(fd, buf, sizeof buf, STRAND_FOREVER);
        if (n <= 0)
            break; /* 0: the client closed; < 0: reset or error */
        if (strand_write_all(fd, buf, (size_t)n, STRAND_FOREVER) < 0)
            break;
    }
    strand_fd_close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    int lfd = *(int *)arg;
    strand_attr attr = { .detached = 1, .stack_size = 64 * 1024 };
    for (;;) {
        int fd = strand_accept(lfd, NULL, NULL, STRAND_FOREVER);
        if (fd < 0) {
            if (fd == -ECANCELED || fd == -EBADF)
                break;
            continue; /* a transient error; strand_accept already backs off on EMFILE */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (strand_spawn_attr(serve_client, (void *)(intptr_t)fd, &attr) < 0)
            strand_fd_close(fd);
    }
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
    printf("echo_server listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s PORT\n"
            "A TCP echo server on 127.0.0.1:PORT, one strand per connection.\n"
            "PORT 0 picks a free port; the one chosen is printed. Stop it with Ctrl-C.\n",
            prog);
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, argv[0]);
        return 0;
    }
    if (argc != 2 || (argv[1][0] == '-' && argv[1][1] != '\0')) {
        if (argc == 2)
            fprintf(stderr, "echo_server: unknown option '%s'\n", argv[1]);
        usage(stderr, argv[0]);
        return 2;
    }
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "echo_server: bad port '%s' (a number from 0 to 65535)\n", argv[1]);
        usage(stderr, argv[0]);
        return 2;
    }
    struct rlimit rl; /* one descriptor per client: allow as many as the system lets us */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = listen_on((int)port);
    if (lfd < 0) {
        perror("echo_server: listen");
        return 1;
    }
    int rc = strand_run(accept_loop, &lfd, NULL);
    return rc < 0 ? 1 : 0;
}
