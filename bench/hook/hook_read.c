/*
 * hook_read.c - what libstrand_hook adds to a read(2) that does not block.
 *
 *   hook_read hooked    read() in a strand on a socket with data waiting: the hook's path
 *                       (in a strand? the fd's entry, recv(MSG_DONTWAIT))
 *   hook_read plain     the same reads through libc's own read (looked up in libc.so.6)
 *   hook_read outside   read() through the hook from a plain thread (libc's, one check)
 *   hook_read recv      libc's own recv(MSG_DONTWAIT) in a strand: the system call the
 *                       hooked read makes, so hooked - recv is the hook's own cost (a
 *                       socket's read(2) takes a slower path in the kernel than recv)
 * Each reads 1 byte at a time from a socketpair refilled by 64 KiB writes (the refills are
 * outside the timed part) and prints RESULT hook_read_<mode> <ns per read> ns/read.
 */
#include "bench_util.h"

#include <dlfcn.h>
#include <strand.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK 65536
#define ROUNDS 16

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);

static recv_fn libc_recv;

static ssize_t recv_read(int fd, void *buf, size_t len)
{
    return libc_recv(fd, buf, len, MSG_DONTWAIT);
}

static int sv[2];
static read_fn reader;
static double ns_per_read;

static void fill(void)
{
    static char buf[CHUNK];
    size_t done = 0;
    while (done < CHUNK) {
        ssize_t n = strand_write(sv[1], buf + done, CHUNK - done, STRAND_FOREVER);
        if (n <= 0)
            exit(1);
        done += (size_t)n;
    }
}

static void measure(void)
{
    int64_t spent = 0;
    char c;
    for (int r = 0; r < ROUNDS; r++) {
        fill();
        int64_t t0 = bench_now_ns();
        for (int i = 0; i < CHUNK; i++) {
            if (reader(sv[0], &c, 1) != 1)
                exit(2);
        }
        spent += bench_now_ns() - t0;
    }
    ns_per_read = (double)spent / ((double)ROUNDS * CHUNK);
}

static void *in_strand(void *arg)
{
    (void)arg;
    measure();
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "hooked";
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 1;
    int bufsz = 4 * CHUNK;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
    reader = read;
    if (strcmp(mode, "plain") == 0 || strcmp(mode, "recv") == 0) {
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        if (libc == NULL)
            return 1;
        reader = (read_fn)dlsym(libc, "read");
        libc_recv = (recv_fn)dlsym(libc, "recv");
        if (reader == NULL || libc_recv == NULL)
            return 1;
        if (strcmp(mode, "recv") == 0)
            reader = recv_read;
    }
    if (strcmp(mode, "outside") == 0)
        measure();
    else if (strand_run(in_strand, NULL, NULL) != 0)
        return 1;
    printf("RESULT hook_read_%s %.1f ns/read\n", mode, ns_per_read);
    return 0;
}
