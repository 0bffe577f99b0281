/*
 * fuzz_read_line.c - libFuzzer target for strand_read_line (read_line.c), through a pipe.
 *
 * Input: the first byte picks the caller's buffer size (cap = 1 + byte % 64, so overlong
 * lines are common), the second how the stream is written: all at once before reading, or in
 * pieces of 1..16 bytes from a writer thread (so lines arrive split across reads). The rest
 * is the stream. Every result is compared with a reference model of the documented contract
 * (strand.h): lines split at '\n', a "\r\n" loses the '\r', a last line without '\n' is still
 * a line, then STRAND_EOF; a line longer than cap-1 bytes gives -EMSGSIZE and is skipped.
 * A difference aborts (a finding).
 *
 * Runs on the fuzzer's own thread (a plain thread: strand_read_line blocks it), the runtime
 * is started once; the reader's state is released with strand_fd_close for each input.
 */
#include "strand.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct writer {
    int            fd;
    const uint8_t *data;
    size_t         len;
    unsigned       piece;
} writer;

static void *write_pieces(void *arg)
{
    writer *w = arg;
    size_t off = 0;
    while (off < w->len) {
        size_t n = w->len - off < w->piece ? w->len - off : w->piece;
        ssize_t got = write(w->fd, w->data + off, n);
        if (got <= 0)
            break;
        off += (size_t)got;
    }
    close(w->fd);
    return NULL;
}

static void fail(const char *what, size_t line_no, ssize_t got, ssize_t want)
{
    fprintf(stderr, "fuzz_read_line: %s at line %zu: got %zd, want %zd\n", what, line_no, got,
            want);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        strand_config cfg = { .workers = 1, .no_signals = 1 };
        if (strand_init(&cfg) != 0)
            abort();
        started = 1;
    }
    if (size < 2 || size > 16384)
        return 0;
    size_t cap = 1 + data[0] % 64;
    unsigned mode = data[1];
    const uint8_t *s = data + 2;
    size_t len = size - 2;

    int p[2];
    if (pipe(p) != 0)
        abort();
    pthread_t t;
    writer w = { p[1], s, len, 1 + (mode >> 1) % 16 };
    int threaded = (mode & 1) != 0;
    if (threaded) {
        if (pthread_create(&t, NULL, write_pieces, &w) != 0)
            abort();
    } else {
        w.piece = 65536;
        write_pieces(&w); /* len <= 16 KiB: fits the pipe */
    }

    char buf[80];
    size_t pos = 0, line_no = 0;
    int64_t deadline = strand_deadline_in(5 * 1000000000LL);
    for (;; line_no++) {
        memset(buf, 0x5a, sizeof buf);
        ssize_t got = strand_read_line(p[0], buf, cap, deadline);
        if (pos >= len) {
            if (got != STRAND_EOF)
                fail("expected STRAND_EOF", line_no, got, STRAND_EOF);
            break;
        }
        /* The model's next line. */
        const uint8_t *nl = memchr(s + pos, '\n', len - pos);
        size_t raw = nl ? (size_t)(nl - (s + pos)) : len - pos;
        size_t want_len = raw;
        if (nl && raw > 0 && s[pos + raw - 1] == '\r')
            want_len--;
        size_t consumed = nl ? raw + 1 : raw;
        if (want_len > cap - 1) {
            if (got != -EMSGSIZE)
                fail("expected -EMSGSIZE", line_no, got, -EMSGSIZE);
        } else {
            if (got != (ssize_t)want_len)
                fail("wrong length", line_no, got, (ssize_t)want_len);
            if (memcmp(buf, s + pos, want_len) != 0)
                fail("wrong bytes", line_no, got, (ssize_t)want_len);
            if (buf[want_len] != '\0')
                fail("not NUL terminated", line_no, got, (ssize_t)want_len);
            if (buf[cap] != 0x5a)
                fail("wrote past cap", line_no, got, (ssize_t)cap);
        }
        pos += consumed;
    }
    if (threaded)
        pthread_join(t, NULL);
    strand_fd_close(p[0]); /* closes the fd and frees its reader */
    return 0;
}
