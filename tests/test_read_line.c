/*
 * test_read_line.c - strand_read_line / strand_write_line: a corpus written in random
 * chunk sizes (1..61 bytes) through a pipe comes back line for line; a partial line survives
 * a timeout and completes later; overlong lines give -EMSGSIZE and are skipped (also when
 * they span many reads, with memory bounded by the limit); "\r\n" endings; a last line
 * without '\n' and then STRAND_EOF; exact-limit lengths; a regular file; a second
 * concurrent reader gets -EBUSY; strand_fd_close drops the buffered data; bad arguments.
 *
 * Runs with 2 workers.
 */
// ctest-timeout: 120
#include "test_util.h"

#include <stdatomic.h>

#define MS 1000000LL

static int64_t ms_from_now(int64_t ms)
{
    return strand_now() + ms * MS;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
}

/* ---------------------------------------------------------------- chunked corpus */

#define CORPUS_LINES 3000

typedef struct corpus {
    int    fd;
    char  *text;
    size_t len;
} corpus;

static void *chunk_writer(void *arg)
{
    corpus *c = arg;
    unsigned seed = 17;
    size_t off = 0;
    while (off < c->len) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 61);
        if (n > c->len - off)
            n = c->len - off;
        assert_int_equal(strand_write_all(c->fd, c->text + off, n, STRAND_FOREVER), (ssize_t)n);
        off += n;
        if (rand_r(&seed) % 8 == 0)
            strand_yield();
    }
    strand_fd_close(c->fd);
    return NULL;
}

static void *corpus_main(void *arg)
{
    (void)arg;
    /* line i: length i % 300, its bytes 'a' + (i + k) % 26; every 5th ends in "\r\n" */
    size_t cap = 0;
    for (int i = 0; i < CORPUS_LINES; i++)
        cap += (size_t)(i % 300) + 2;
    corpus c = { .text = malloc(cap) };
    for (int i = 0; i < CORPUS_LINES; i++) {
        for (int k = 0; k < i % 300; k++)
            c.text[c.len++] = (char)('a' + (i + k) % 26);
        if (i % 5 == 0)
            c.text[c.len++] = '\r';
        c.text[c.len++] = '\n';
    }
    int p[2];
    make_pipe(p);
    c.fd = p[1];
    int64_t w = strand_spawn(chunk_writer, &c);
    assert_true(w > 0);
    char line[512];
    for (int i = 0; i < CORPUS_LINES; i++) {
        ssize_t n = strand_read_line(p[0], line, sizeof line, ms_from_now(10000));
        assert_int_equal(n, i % 300);
        assert_int_equal(line[n], '\0');
        for (int k = 0; k < n; k++)
            assert_int_equal(line[k], 'a' + (i + k) % 26);
    }
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(10000)), STRAND_EOF);
    assert_int_equal(strand_join(w, NULL), 0);
    strand_fd_close(p[0]);
    free(c.text);
    return NULL;
}

static void test_chunked_corpus(void **state)
{
    (void)state;
    test_deadline(60);
    test_run_strand(corpus_main, NULL);
}

/* ---------------------------------------------------------------- partial, overlong, EOF */

static void *partial_main(void *arg)
{
    (void)arg;
    int p[2];
    make_pipe(p);
    char line[64];
    assert_int_equal(strand_write_all(p[1], "abc", 3, STRAND_FOREVER), 3);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(20)), -ETIMEDOUT);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), -EAGAIN);
    assert_int_equal(strand_write_all(p[1], "def\nnext\n", 9, STRAND_FOREVER), 9);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 6); /* nothing was lost */
    assert_string_equal(line, "abcdef");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 4);
    assert_string_equal(line, "next");
    strand_fd_close(p[0]);
    strand_fd_close(p[1]);
    return NULL;
}

static void test_partial_line_and_timeout(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(partial_main, NULL);
}

static void *overlong_main(void *arg)
{
    (void)arg;
    int p[2];
    make_pipe(p);
    char line[8]; /* lines of up to 7 bytes */
    const char *in = "short\nwaytoolongline\nok\n1234567\n12345678\n123456\r\n1234567\r\n"
                     "1234567\r\r\nlast";
    assert_int_equal(strand_write_all(p[1], in, strlen(in), STRAND_FOREVER), strlen(in));
    strand_fd_close(p[1]);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 5);
    assert_string_equal(line, "short");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), -EMSGSIZE);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 2); /* skipped past it */
    assert_string_equal(line, "ok");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 7); /* exactly cap - 1 */
    assert_string_equal(line, "1234567");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), -EMSGSIZE); /* cap */
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 6);
    assert_string_equal(line, "123456");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 7); /* \r\n: fits */
    assert_string_equal(line, "1234567");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), -EMSGSIZE); /* 8 + \r */
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 4); /* no '\n' at EOF */
    assert_string_equal(line, "last");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), STRAND_EOF);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), STRAND_EOF); /* stays */
    strand_fd_close(p[0]);
    return NULL;
}

static void test_overlong_and_eof(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(overlong_main, NULL);
}

/* A 4 MB line read with a 100-byte limit, fed in pieces: -EMSGSIZE early, the next line
 * intact, and the reader never buffers the whole line. */
static void *huge_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 64; i++)
        assert_int_equal(strand_write_all(fd, chunk, sizeof chunk, STRAND_FOREVER),
                         (ssize_t)sizeof chunk);
    assert_int_equal(strand_write_all(fd, "\nafter\n", 7, STRAND_FOREVER), 7);
    strand_fd_close(fd);
    return NULL;
}

static void *huge_main(void *arg)
{
    (void)arg;
    int p[2];
    make_pipe(p);
    int64_t w = strand_spawn(huge_writer, (void *)(intptr_t)p[1]);
    char line[100];
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(10000)), -EMSGSIZE);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(10000)), 5);
    assert_string_equal(line, "after");
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(10000)), STRAND_EOF);
    assert_int_equal(strand_join(w, NULL), 0);
    strand_fd_close(p[0]);
    return NULL;
}

static void test_huge_line_bounded(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(huge_main, NULL);
}

/* ---------------------------------------------------------------- files, busy, close, args */

static void *file_main(void *arg)
{
    (void)arg;
    char path[] = "/tmp/strand_rl_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    for (int i = 0; i < 1000; i++) {
        char b[32];
        int n = snprintf(b, sizeof b, "line %d", i);
        assert_int_equal(strand_write_line(fd, b, (size_t)n, STRAND_FOREVER), n + 1);
    }
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    char line[64], want[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(want, sizeof want, "line %d", i);
        assert_int_equal(strand_read_line(fd, line, sizeof line, STRAND_FOREVER),
                         (ssize_t)strlen(want));
        assert_string_equal(line, want);
    }
    assert_int_equal(strand_read_line(fd, line, sizeof line, STRAND_FOREVER), STRAND_EOF);
    strand_fd_close(fd);
    return NULL;
}

static void test_regular_file(void **state)
{
    (void)state;
    test_deadline(30);
    test_run_strand(file_main, NULL);
}

static atomic_int first_result = 1;

static void *blocked_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[16];
    atomic_store(&first_result, (int)strand_read_line(fd, line, sizeof line, ms_from_now(5000)));
    return NULL;
}

static void *busy_main(void *arg)
{
    (void)arg;
    int p[2];
    make_pipe(p);
    int64_t id = strand_spawn(blocked_reader, (void *)(intptr_t)p[0]);
    strand_sleep(20 * MS); /* it is parked inside strand_read_line now */
    char line[16];
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), -EBUSY);
    assert_int_equal(strand_write_line(p[1], "x", 1, STRAND_FOREVER), 2);
    assert_int_equal(strand_join(id, NULL), 0);
    assert_int_equal(atomic_load(&first_result), 1);

    /* buffered bytes die with strand_fd_close; a new fd with the same number starts clean */
    assert_int_equal(strand_write_all(p[1], "a\nstale\n", 8, STRAND_FOREVER), 8);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), 1); /* "stale" buffered */
    int old = p[0];
    strand_fd_close(p[0]);
    strand_fd_close(p[1]);
    make_pipe(p);
    assert_int_equal(p[0], old); /* lowest free number: the same one */
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), -EAGAIN);
    strand_fd_close(p[1]);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, 0), STRAND_EOF);
    strand_fd_close(p[0]);

    assert_int_equal(strand_read_line(-1, line, sizeof line, 0), -EBADF);
    assert_int_equal(strand_read_line(12345, line, sizeof line, 0), -EBADF);
    assert_int_equal(strand_read_line(0, NULL, 10, 0), -EINVAL);
    assert_int_equal(strand_read_line(0, line, 0, 0), -EINVAL);
    assert_int_equal(strand_write_line(-1, "x", 1, 0), -EBADF);
    assert_int_equal(strand_write_line(1, NULL, 1, 0), -EINVAL);
    return NULL;
}

static void test_busy_close_and_args(void **state)
{
    (void)state;
    test_deadline(20);
    test_run_strand(busy_main, NULL);
}

/* From a plain thread the same calls block the thread (poll with the deadline). */
static void test_plain_thread(void **state)
{
    (void)state;
    test_deadline(20);
    int p[2];
    make_pipe(p);
    char line[16];
    assert_int_equal(strand_write_all(p[1], "hel", 3, STRAND_FOREVER), 3);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(20)), -ETIMEDOUT);
    assert_int_equal(strand_write_line(p[1], "lo", 2, STRAND_FOREVER), 3);
    assert_int_equal(strand_read_line(p[0], line, sizeof line, ms_from_now(1000)), 5);
    assert_string_equal(line, "hello");
    strand_fd_close(p[0]);
    strand_fd_close(p[1]);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_corpus),
        cmocka_unit_test(test_partial_line_and_timeout),
        cmocka_unit_test(test_overlong_and_eof),
        cmocka_unit_test(test_huge_line_bounded),
        cmocka_unit_test(test_regular_file),
        cmocka_unit_test(test_busy_close_and_args),
        cmocka_unit_test(test_plain_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
