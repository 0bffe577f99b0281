/*
 * resp_parse.c - the request parser of examples/kv_server.c (declared in resp_parse.h):
 * one RESP2 request, multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or inline ("GET k\r\n"),
 * split into arguments that point into the caller's buffer. Pure: no I/O, no allocation.
 *
 * Bounds: MAX_ARGS arguments, MAX_BULK bytes per argument, MAX_REQUEST bytes per request,
 * MAX_INLINE bytes per inline line; beyond them, or on any malformed length or missing
 * CRLF, PARSE_ERR with a message for "-ERR Protocol error: ..." in *perr. An incomplete
 * request is PARSE_MORE, never an error, however it is cut.
 */
#include "resp_parse.h"

#include <stdbool.h>
#include <string.h>


/* A decimal line "<digits>\r\n" at p (n bytes available): the value in *v and the bytes
 * used in *used. */
static int parse_len(const char *p, size_t n, long long limit, long long *v, size_t *used)
{
    const char *cr = memchr(p, '\r', n < 24 ? n : 24);
    if (cr == NULL)
        return n < 24 ? PARSE_MORE : PARSE_ERR;
    size_t digits = (size_t)(cr - p);
    if (digits + 1 >= n)
        return PARSE_MORE; /* the '\n' has not arrived */
    if (cr[1] != '\n' || digits == 0)
        return PARSE_ERR;
    bool neg = (p[0] == '-');
    long long x = 0;
    for (size_t i = neg; i < digits; i++) {
        if (p[i] < '0' || p[i] > '9')
            return PARSE_ERR;
        x = x * 10 + (p[i] - '0');
        if (x > limit)
            return PARSE_ERR;
    }
    if (neg && digits == 1)
        return PARSE_ERR;
    *v = neg ? -x : x;
    *used = digits + 2;
    return PARSE_OK;
}

/* One multibulk request at p: *argc/argv filled, *used bytes. */
static int parse_multibulk(kv_arg *argv, int *argc, const char **perr, const char *p, size_t n, size_t *used)
{
    long long count;
    size_t u, off = 1;
    int r = parse_len(p + 1, n - 1, MAX_ARGS, &count, &u);
    if (r != PARSE_OK) {
        (*perr) = "invalid multibulk length";
        return r;
    }
    off += u;
    (*argc) = 0;
    for (long long i = 0; i < count; i++) {
        if (off >= n)
            return PARSE_MORE;
        if (p[off] != '$') {
            (*perr) = "expected '$'";
            return PARSE_ERR;
        }
        long long len;
        r = parse_len(p + off + 1, n - off - 1, MAX_BULK, &len, &u);
        if (r != PARSE_OK || len < 0) {
            (*perr) = "invalid bulk length";
            return r == PARSE_MORE ? PARSE_MORE : PARSE_ERR;
        }
        off += 1 + u;
        if (off + (size_t)len + 2 > MAX_REQUEST) {
            (*perr) = "request too large";
            return PARSE_ERR;
        }
        if (n - off < (size_t)len + 2)
            return PARSE_MORE;
        if (p[off + len] != '\r' || p[off + len + 1] != '\n') {
            (*perr) = "missing CRLF after bulk";
            return PARSE_ERR;
        }
        argv[(*argc)++] = (kv_arg){ p + off, (size_t)len };
        off += (size_t)len + 2;
    }
    *used = off;
    return PARSE_OK;
}

/* An inline request: "SET k v\r\n", arguments split on spaces. */
static int parse_inline(kv_arg *argv, int *argc, const char **perr, const char *p, size_t n, size_t *used)
{
    const char *nl = memchr(p, '\n', n);
    if (nl == NULL) {
        (*perr) = "too big inline request";
        return n > MAX_INLINE ? PARSE_ERR : PARSE_MORE;
    }
    size_t len = (size_t)(nl - p);
    *used = len + 1;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    (*argc) = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && p[i] != ' ' && p[i] != '\t')
            i++;
        if ((*argc) == MAX_ARGS) {
            (*perr) = "too many arguments";
            return PARSE_ERR;
        }
        argv[(*argc)++] = (kv_arg){ p + start, i - start };
    }
    return PARSE_OK;
}

int resp_parse(kv_arg *argv, int *argc, const char **perr, const char *p, size_t n, size_t *used)
{
    return p[0] == '*' ? parse_multibulk(argv, argc, perr, p, n, used) : parse_inline(argv, argc, perr, p, n, used);
}
