/*
 * read_line.c - buffered line reading and line writing over any fd (stdin, pipes, sockets,
 * files): strand_read_line and strand_write_line.
 *
 * Each fd that is read by lines gets one reader (allocated on first use, hung on the fd's
 * record, freed by strand_fd_close). The reader holds bytes read past the current line, so
 * mixing strand_read_line and strand_read on one fd loses data to the reader (documented).
 *
 * Invariants of a reader:
 *   buf[start, end) holds unread bytes; buf[start, scan) is known to contain no '\n' (so a
 *   line arriving in many small pieces is scanned once, not once per piece).
 *   `skipping`: the current line was reported -EMSGSIZE; its remaining bytes, up to and
 *   including the next '\n', are thrown away before the next line is looked for.
 *   The buffer never needs more than cap + 1 bytes of one line plus one read, because a
 *   line is declared overlong as soon as cap + 1 bytes without '\n' are buffered: memory is
 *   bounded by the caller's limit, whatever the stream holds.
 *   `busy` makes a second concurrent reader of the same fd fail with -EBUSY instead of
 *   corrupting the buffer.
 *   `gen`: the life of the fd number the buffered state belongs to (the record's gen when
 *   it was filled). A reader whose gen is not the record's is emptied before use: bytes of
 *   one connection never reach the next one that gets the same number through
 *   strand_accept, strand_connect, strand_fd_close or strand_fd_forget (the hook library
 *   calls it for every new descriptor it sees), even when the first was closed with plain
 *   close(2). Without any of those, the descriptor's identity (one fstat) is compared when
 *   the reader holds an end-of-file and before every refill that would append to a partial
 *   line; not per line served from the buffer, which would cost a system call per line.
 *   The reader stays allocated while any call holds a reference on the record
 *   (strand_read_line holds one for its whole run), so strand_fd_close frees it safely.
 */
#include "io_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define READER_MIN 4096

typedef struct line_reader {
    atomic_int busy;
    bool       eof;
    bool       skipping;
    unsigned   gen;
    size_t     start, scan, end, size;
    char      *buf;
} line_reader;

void strand__line_free(void *p)
{
    line_reader *r = p;
    if (r == NULL)
        return;
    free(r->buf);
    free(r);
}

static line_reader *reader_for(strand__fdrec *rec)
{
    line_reader *r = atomic_load_explicit(&rec->reader, memory_order_acquire);
    if (r != NULL)
        return r;
    line_reader *fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    fresh->buf = malloc(READER_MIN);
    if (fresh->buf == NULL) {
        free(fresh);
        return NULL;
    }
    fresh->size = READER_MIN;
    fresh->gen = atomic_load_explicit(&rec->gen, memory_order_acquire);
    void *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&rec->reader, &expected, fresh,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        strand__line_free(fresh);
        return expected;
    }
    return fresh;
}

/* Make room for at least one more read: compact, then grow if still full. */
static int reader_make_room(line_reader *r)
{
    if (r->start > 0) {
        size_t keep = r->end - r->start;
        memmove(r->buf, r->buf + r->start, keep);
        r->scan -= r->start;
        r->end = keep;
        r->start = 0;
    }
    if (r->end < r->size)
        return 0;
    size_t size = r->size * 2;
    char *b = realloc(r->buf, size);
    if (b == NULL)
        return -ENOMEM;
    r->buf = b;
    r->size = size;
    return 0;
}

static void reader_discard(line_reader *r)
{
    r->start = r->scan = r->end = 0;
}

static void reader_reset(line_reader *r, strand__fdrec *rec)
{
    reader_discard(r);
    r->eof = false;
    r->skipping = false;
    r->gen = atomic_load_explicit(&rec->gen, memory_order_acquire);
}

/* Make sure r's state belongs to the current life of fd (see `gen` above); `deep`: also
 * ask the kernel (fstat) if the reader holds anything. */
static void reader_check_life(line_reader *r, strand__fdrec *rec, int fd, bool deep)
{
    if (r->gen != atomic_load_explicit(&rec->gen, memory_order_acquire)) {
        reader_reset(r, rec);
        return;
    }
    if (deep && (r->end > r->start || r->eof || r->skipping) && !strand__fd_same(rec, fd))
        reader_reset(r, rec);
}

/* Skip the rest of an overlong line. true when its '\n' was found (or at EOF). */
static bool reader_skip(line_reader *r)
{
    char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
    if (nl == NULL) {
        reader_discard(r);
        return r->eof;
    }
    r->start = r->scan = (size_t)(nl - r->buf) + 1;
    r->skipping = false;
    return true;
}

static ssize_t deliver(line_reader *r, size_t len, size_t consumed, char *out, size_t cap)
{
    const char *line = r->buf + r->start;
    r->start += consumed;
    r->scan = r->start;
    if (len > cap - 1)
        return -EMSGSIZE;
    memcpy(out, line, len);
    out[len] = '\0';
    return (ssize_t)len;
}

/* reader_step's "read more bytes first" (never a result of strand_read_line). */
#define NEED_MORE (-EINPROGRESS)

/* One step on buffered bytes: a result (line length, -EMSGSIZE, STRAND_EOF), or NEED_MORE. */
static ssize_t reader_step(line_reader *r, char *out, size_t cap)
{
    if (r->skipping && !reader_skip(r))
        return NEED_MORE;
    if (r->skipping) /* only left set by reader_skip at EOF */
        r->skipping = false;
    size_t from = r->scan > r->start ? r->scan : r->start;
    char *nl = memchr(r->buf + from, '\n', r->end - from);
    if (nl != NULL) {
        size_t pos = (size_t)(nl - r->buf);
        size_t len = pos - r->start;
        if (len > 0 && r->buf[pos - 1] == '\r')
            len--;
        return deliver(r, len, pos + 1 - r->start, out, cap);
    }
    r->scan = r->end;
    size_t pending = r->end - r->start;
    if (pending >= cap + 1) {
        /* Overlong for sure (even if it ends in "\r\n"): report it now, skip the rest
         * later, keep memory bounded. */
        reader_discard(r);
        r->skipping = true;
        return -EMSGSIZE;
    }
    if (r->eof)
        return pending == 0 ? STRAND_EOF : deliver(r, pending, pending, out, cap);
    return NEED_MORE;
}

static ssize_t read_line_in(strand__fdrec *rec, int fd, char *buf, size_t cap,
                            int64_t deadline)
{
    line_reader *r = reader_for(rec);
    if (r == NULL)
        return -ENOMEM;
    if (atomic_exchange_explicit(&r->busy, 1, memory_order_acquire) != 0)
        return -EBUSY;
    reader_check_life(r, rec, fd, r->eof);
    ssize_t res;
    for (;;) {
        res = reader_step(r, buf, cap);
        if (res != NEED_MORE)
            break;
        reader_check_life(r, rec, fd, true); /* about to append to what is buffered */
        res = reader_make_room(r);
        if (res < 0)
            break;
        ssize_t n = strand_read(fd, r->buf + r->end, r->size - r->end, deadline);
        if (n < 0) {
            res = n; /* what is buffered stays: a later call goes on from here */
            break;
        }
        if (n == 0)
            r->eof = true;
        r->end += (size_t)n;
    }
    atomic_store_explicit(&r->busy, 0, memory_order_release);
    return res;
}

ssize_t strand_read_line(int fd, char *buf, size_t cap, int64_t deadline)
{
    if (buf == NULL || cap == 0 || cap > SSIZE_MAX)
        return -EINVAL;
    int err = 0;
    strand__fdrec *rec = strand__fd_get(fd, &err);
    if (rec == NULL)
        return err;
    ssize_t res = read_line_in(rec, fd, buf, cap, deadline);
    strand__fd_put(rec);
    return res;
}

ssize_t strand_write_line(int fd, const char *line, size_t len, int64_t deadline)
{
    if (line == NULL && len > 0)
        return -EINVAL;
    if (len >= SSIZE_MAX)
        return -EINVAL;
    static const char nl = '\n';
    size_t total = len + 1, done = 0;
    while (done < total) {
        struct iovec iov[2];
        int cnt = 0;
        if (done < len)
            iov[cnt++] = (struct iovec){ (void *)(line + done), len - done };
        iov[cnt++] = (struct iovec){ (void *)&nl, 1 };
        ssize_t n = strand_writev(fd, iov, cnt, deadline);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)total;
}
