/*
 * embed_poll.c - strand inside a program that owns its event loop: a plain poll() loop
 * with host_driven = 1 (no worker threads). The loop waits on stdin and on
 * strand_poll_fd(); every line read from stdin becomes a strand that "works" on it
 * (sleeps a little, as if waiting on something) and prints its result; the host runs
 * strands only through strand_run_until_idle, and sleeps in poll() until there is work,
 * a timer is due, or input arrives.
 *
 *   printf 'one\ntwo\nthree\n' | ./embed_poll
 *   ./embed_poll            (type lines; Ctrl-D to finish)
 *
 * Threads: one, the host's. Strands run on it, between poll() calls.
 */
#include "strand.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
    int  no;
    char text[256];
} job;

static void *work(void *arg)
{
    job *j = arg;
    /* pretend to wait for something: the host keeps polling meanwhile */
    strand_sleep(50000000 + (int64_t)(j->no % 3) * 25000000);
    size_t n = strlen(j->text);
    for (size_t i = 0; i < n / 2; i++) {
        char c = j->text[i];
        j->text[i] = j->text[n - 1 - i];
        j->text[n - 1 - i] = c;
    }
    printf("strand %lld finished job %d: \"%s\"\n", (long long)strand_self(), j->no, j->text);
    free(j);
    return NULL;
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s < FILE\n"
            "strand inside a plain poll() loop (no worker threads): each line read from stdin\n"
            "becomes a strand that works on it and prints the result. Takes no arguments;\n"
            "ends when the input ends and every strand has finished (Ctrl-D on a terminal).\n",
            prog);
}

/* Takes no arguments. Returns -1 to go on, else the exit status: 0 after --help (or -h),
 * whose usage goes to stdout; 2 for anything else, with the usage on stderr. */
static int check_args(int argc, char **argv)
{
    if (argc == 1)
        return -1;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, argv[0]);
        return 0;
    }
    fprintf(stderr, "embed_poll: unknown %s '%s'\n", argv[1][0] == '-' ? "option" : "argument",
            argv[1]);
    usage(stderr, argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    int rc_args = check_args(argc, argv);
    if (rc_args >= 0)
        return rc_args;
    strand_config cfg = {.host_driven = 1};
    int rc = strand_init(&cfg);
    if (rc != 0) {
        fprintf(stderr, "strand_init: %s\n", strerror(-rc));
        return 1;
    }
    int sfd = strand_poll_fd();
    if (sfd < 0) {
        fprintf(stderr, "strand_poll_fd: %s\n", strerror(-sfd));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    char line[256];
    size_t have = 0;
    int jobs = 0, input_open = 1;
    long wakeups = 0, slices = 0;
    for (;;) {
        /* run what is runnable, a bounded amount at a time, so the loop stays responsive */
        int more = 0;
        int ran = strand_run_until_idle(64, &more);
        if (ran > 0)
            slices += ran;
        struct strand_stats st;
        strand_stats(&st);
        if (!input_open && st.active == 0)
            break;

        int64_t next = strand_next_timeout();
        int timeout_ms = more ? 0 : next < 0 ? -1 : (int)((next + 999999) / 1000000);
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = input_open ? 0 : -1, .events = POLLIN}};
        int n = poll(p, 2, timeout_ms);
        if (n < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        wakeups++;
        if (!(p[1].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = read(0, line + have, sizeof line - 1 - have);
        if (got <= 0) {
            input_open = 0;
            got = 0;
        }
        have += (size_t)got;
        /* one strand per complete line (or for the rest at EOF) */
        for (;;) {
            char *nl = memchr(line, '\n', have);
            if (!nl && (input_open || have == 0) && have < sizeof line - 1)
                break;
            size_t len = nl ? (size_t)(nl - line) : have;
            job *j = calloc(1, sizeof *j);
            if (!j)
                return 1;
            j->no = ++jobs;
            memcpy(j->text, line, len < sizeof j->text ? len : sizeof j->text - 1);
            int64_t id = strand_spawn_attr(work, j, &(strand_attr){.detached = 1});
            if (id < 0) {
                fprintf(stderr, "spawn: %s\n", strerror((int)-id));
                free(j);
            } else {
                printf("host: line %d -> strand %lld\n", j->no, (long long)id);
            }
            size_t used = nl ? len + 1 : len;
            memmove(line, line + used, have - used);
            have -= used;
        }
    }
    printf("host: %d line(s) handled by strands; %ld strand slices run from %ld poll wake-ups\n",
           jobs, slices, wakeups);
    strand_shutdown();
    return 0;
}
