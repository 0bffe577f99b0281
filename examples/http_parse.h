/*
 * http_parse.h - the HTTP/1.1 request parser used by http_server.c: a request head
 * parser and a resumable chunked-body decoder (see http_parse.c).
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAD_MAX   8192 /* request line + headers, bytes: longer is 413 */
#define MAX_FIELDS 100  /* header fields per request: more is 413 */

enum { P_MORE = 0, P_OK = 1 }; /* otherwise a parse result is an HTTP status code >= 400 */

enum method { M_GET, M_HEAD, M_POST, M_OTHER };

typedef struct http_req {
    enum method method;
    const char *path;      /* the target up to '?' (points into the parsed bytes) */
    size_t      path_len;
    int         minor;     /* HTTP/1.<minor> */
    bool        keep_alive;
    bool        chunked;
    bool        expect_continue; /* "Expect: 100-continue" */
    int64_t     content_length; /* -1: none */
    size_t      head_len;  /* bytes up to and including the blank line */
} http_req;

/* A request head at p (n bytes available): P_MORE, P_OK (r filled, r->head_len bytes
 * used) or the error status to answer. */
int http_parse_head(const char *p, size_t n, http_req *r);

enum chunk_state { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TLINE,
                   C_TLINE_LF, C_END_LF, C_DONE };

typedef struct chunk_dec {
    enum chunk_state st;
    int      digits;  /* hex digits of the current size line */
    uint64_t left;    /* data bytes left in the current chunk */
    uint64_t total;   /* data bytes so far */
    size_t   skipped; /* extension and trailer bytes so far (bounded by HEAD_MAX) */
} chunk_dec;

/* Feed n bytes of a chunked body; *used says how many were consumed. P_MORE, P_OK (the
 * body is complete: later bytes belong to the next request) or an error status (400, 413
 * once more than max_body data bytes are announced). Start from a zeroed chunk_dec. */
int http_chunk_feed(chunk_dec *d, const char *p, size_t n, uint64_t max_body, size_t *used);

#endif /* HTTP_PARSE_H */
