/*
 * server_util.h - for the tests of tests/hook/ that talk to a real server: a free loopback
 * port, starting a server process (posix_spawn) and waiting until it accepts, and stopping
 * it (also from an atexit handler, so a failing test leaves no server behind).
 */
#ifndef STRAND_TEST_SERVER_UTIL_H
#define STRAND_TEST_SERVER_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static pid_t server_pid_ = -1;

static inline void server_stop(void)
{
    if (server_pid_ > 0) {
        kill(server_pid_, SIGTERM);
        int st;
        waitpid(server_pid_, &st, 0);
        server_pid_ = -1;
    }
}

/* A loopback port nobody listens on right now. */
static inline int server_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* Start argv[0] (a full path) and wait up to 20 s until 127.0.0.1:port accepts.
 * 0, or -1 (nothing started, or it never listened: stopped again). */
static inline int server_start(char *const argv[], int port)
{
    if (posix_spawn(&server_pid_, argv[0], NULL, NULL, argv, environ) != 0) {
        server_pid_ = -1;
        return -1;
    }
    atexit(server_stop);
    for (int i = 0; i < 400; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return 0;
        struct timespec ts = { 0, 50000000 };
        nanosleep(&ts, NULL);
    }
    server_stop();
    return -1;
}

/* Raise the soft RLIMIT_NOFILE to the hard one (a thousand connections need it). */
static inline long raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

#endif
