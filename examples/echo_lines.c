/*
 * echo_lines.c - read lines from stdin with strand_read_line, write each back to stdout
 * with strand_write_line. Works on a terminal, a pipe or a file.
 *
 *   ./echo_lines < input.txt
 *   printf 'a\nb\r\nlast' | ./echo_lines        ->  a, b, last (each on its own line)
 *
 * Lines longer than MAX_LINE bytes are reported on stderr and skipped; the rest of the
 * stream is still echoed. Note: strand sets O_NONBLOCK on stdin and stdout on first use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strand.h"

#define MAX_LINE (1 << 20)

static void *echo(void *arg)
{
    (void)arg;
    char *line = malloc(MAX_LINE);
    if (line == NULL)
        return (void *)1;
    intptr_t status = 0;
    for (long n = 1;; n++) {
        ssize_t len = strand_read_line(STDIN_FILENO, line, MAX_LINE, STRAND_FOREVER);
        if (len == STRAND_EOF)
            break;
        if (len == -EMSGSIZE) {
            fprintf(stderr, "echo_lines: line %ld is longer than %d bytes, skipped\n", n,
                    MAX_LINE - 1);
            continue;
        }
        if (len < 0) {
            fprintf(stderr, "echo_lines: read: error %zd\n", len);
            status = 1;
            break;
        }
        ssize_t w = strand_write_line(STDOUT_FILENO, line, (size_t)len, STRAND_FOREVER);
        if (w < 0) {
            fprintf(stderr, "echo_lines: write: error %zd\n", w);
            status = 1;
            break;
        }
    }
    free(line);
    return (void *)status;
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s < FILE\n"
            "Reads lines from stdin and writes each back to stdout (a strand reading with\n"
            "strand_read_line). Takes no arguments; ends at the end of its input.\n",
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
    fprintf(stderr, "echo_lines: unknown %s '%s'\n", argv[1][0] == '-' ? "option" : "argument",
            argv[1]);
    usage(stderr, argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    int rc_args = check_args(argc, argv);
    if (rc_args >= 0)
        return rc_args;
    void *result = NULL;
    int rc = strand_run(echo, NULL, &result);
    if (rc < 0) {
        fprintf(stderr, "echo_lines: strand_run: error %d\n", rc);
        return 1;
    }
    return (int)(intptr_t)result;
}
