/*
 * http_parse.c - the HTTP/1.1 request parser of examples/http_server.c (declared in
 * http_parse.h): pure functions over a byte range; nothing here does I/O or allocates.
 *
 * http_parse_head() looks at the bytes of one request head. It validates the request line
 * as soon as that line is complete, and rejects a line that cannot become one even before
 * (so garbage is answered at once instead of when HEAD_MAX bytes of it have arrived); once
 * the blank line is there, it checks every header field. The result points into the
 * buffer (the path), valid until the buffer moves.
 *
 * http_chunk_feed() is a resumable decoder for a chunked body: it is fed whatever part of
 * the body is in the buffer, consumes all of it unless the body ends inside it, remembers
 * where it stopped, and says when the last chunk and the trailer section have passed. It
 * counts data bytes against a limit and bounds every line it skips.
 *
 * Strictness: lines end in CRLF (a bare LF is 400); obs-fold, whitespace before a colon,
 * control bytes in values, two different Content-Lengths, Content-Length together with
 * Transfer-Encoding, a second Host, and HTTP/1.1 without Host are 400; a transfer coding
 * other than "chunked" is 501; a version other than HTTP/1.0 and 1.1 is 505.
 */
#include "http_parse.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the bytes allowed in a method or a header name. */
static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool token_eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/* Strict decimal for Content-Length: digits only, no overflow. */
static bool parse_length(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static enum method method_of(const char *p, size_t n)
{
    /* Methods are case-sensitive: "get" is some other method, not GET. */
    if (n == 3 && memcmp(p, "GET", 3) == 0)
        return M_GET;
    if (n == 4 && memcmp(p, "HEAD", 4) == 0)
        return M_HEAD;
    if (n == 4 && memcmp(p, "POST", 4) == 0)
        return M_POST;
    return M_OTHER;
}

/* "METHOD SP target SP HTTP/1.x" (the line without its CRLF). */
static int parse_request_line(const char *p, size_t n, http_req *r)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return 400;
    r->method = method_of(p, i);
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == t || i >= n || p[i] != ' ')
        return 400;
    r->path = p + t;
    const char *q = memchr(r->path, '?', i - t);
    r->path_len = q ? (size_t)(q - r->path) : i - t;
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || !isdigit((unsigned char)p[i + 5]) ||
        p[i + 6] != '.' || !isdigit((unsigned char)p[i + 7]))
        return 400;
    if (p[i + 5] != '1' || p[i + 7] > '1')
        return 505;
    r->minor = p[i + 7] - '0';
    return P_OK;
}

/* Does a Connection header value list `tok` (comma-separated, case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i > s && token_eq(v + s, i - s, tok))
            return true;
    }
    return false;
}

/* One "name: value" line (without CRLF); `seen_cl`/`has_host` carry state across lines. */
static int parse_field(const char *p, size_t n, http_req *r, bool *seen_cl, bool *has_host)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return 400; /* also obs-fold and whitespace before the colon */
    const char *name = p;
    size_t nlen = i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t e = n;
    while (e > i && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    const char *v = p + i;
    size_t vlen = e - i;
    for (size_t k = 0; k < vlen; k++)
        if ((unsigned char)v[k] < 0x20 && v[k] != '\t')
            return 400; /* a bare CR or another control byte */
    if (token_eq(name, nlen, "content-length")) {
        int64_t len;
        if (!parse_length(v, vlen, &len) || (*seen_cl && len != r->content_length))
            return 400;
        *seen_cl = true;
        r->content_length = len;
    } else if (token_eq(name, nlen, "transfer-encoding")) {
        if (!token_eq(v, vlen, "chunked"))
            return 501;
        if (r->chunked)
            return 400;
        r->chunked = true;
    } else if (token_eq(name, nlen, "connection")) {
        if (list_has(v, vlen, "close"))
            r->keep_alive = false;
        else if (list_has(v, vlen, "keep-alive"))
            r->keep_alive = true;
    } else if (token_eq(name, nlen, "expect")) {
        r->expect_continue = token_eq(v, vlen, "100-continue");
    } else if (token_eq(name, nlen, "host")) {
        if (*has_host)
            return 400;
        *has_host = true;
    }
    return P_OK;
}

/* The next line at p (n bytes): its length without CRLF in *len, P_MORE if incomplete, 400
 * if it ends in a bare LF. */
static int next_line(const char *p, size_t n, size_t *len)
{
    const char *lf = memchr(p, '\n', n);
    if (lf == NULL)
        return P_MORE;
    if (lf == p || lf[-1] != '\r')
        return 400;
    *len = (size_t)(lf - p) - 1;
    return P_OK;
}

/* The request line has not ended yet: answer garbage now rather than when HEAD_MAX bytes
 * of it have arrived. The method must be a token, the rest free of control bytes. */
static int request_line_prefix(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i < n && (i == 0 || p[i] != ' '))
        return 400;
    for (; i < n; i++)
        if ((unsigned char)p[i] < 0x20 && p[i] != '\r')
            return 400;
    return n >= HEAD_MAX ? 413 : P_MORE;
}

/* A whole request head at p; P_MORE, P_OK (r filled) or an error status. */
int http_parse_head(const char *p, size_t n, http_req *r)
{
    size_t lim = n < HEAD_MAX ? n : HEAD_MAX, len;
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    int rc = next_line(p, lim, &len);
    if (rc == P_MORE)
        return request_line_prefix(p, lim);
    if (rc != P_OK || (rc = parse_request_line(p, len, r)) != P_OK)
        return rc;
    r->keep_alive = r->minor >= 1;
    bool seen_cl = false, has_host = false;
    size_t off = len + 2;
    for (int fields = 0;; fields++) {
        if ((rc = next_line(p + off, lim - off, &len)) != P_OK)
            return rc == P_MORE && lim == HEAD_MAX ? 413 : rc;
        if (len == 0)
            break;
        if (fields == MAX_FIELDS)
            return 413;
        if ((rc = parse_field(p + off, len, r, &seen_cl, &has_host)) != P_OK)
            return rc;
        off += len + 2;
    }
    if ((r->chunked && seen_cl) || (r->minor >= 1 && !has_host))
        return 400; /* both framings: a smuggling attempt; HTTP/1.1 requires Host */
    r->head_len = off + 2;
    return P_OK;
}

/* ---------------------------------------------------------------- chunked bodies */

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Feed n bytes; *used says how many were consumed. P_MORE, P_OK (body complete: the bytes
 * after it belong to the next request) or an error status (400, 413). */
int http_chunk_feed(chunk_dec *d, const char *p, size_t n, uint64_t max_body, size_t *used)
{
    size_t i = 0;
    while (i < n && d->st != C_DONE) {
        unsigned char c = (unsigned char)p[i];
        if (d->st == C_DATA) {
            size_t take = d->left < n - i ? (size_t)d->left : n - i;
            d->left -= take;
            i += take;
            if (d->left == 0)
                d->st = C_DATA_CR;
            continue;
        }
        i++;
        switch (d->st) {
        case C_SIZE:
            if (hexval(c) >= 0) {
                if (++d->digits > 15)
                    return 413;
                d->left = d->left * 16 + (uint64_t)hexval(c);
            } else if (d->digits == 0) {
                return 400;
            } else if (c == '\r') {
                d->st = C_SIZE_LF;
            } else if (c == ';' || c == ' ' || c == '\t') {
                d->st = C_EXT;
            } else {
                return 400;
            }
            break;
        case C_EXT: /* chunk extensions are skipped */
            if (++d->skipped > HEAD_MAX)
                return 413;
            if (c == '\r')
                d->st = C_SIZE_LF;
            else if (c < 0x20 && c != '\t')
                return 400;
            break;
        case C_SIZE_LF:
            if (c != '\n')
                return 400;
            d->total += d->left;
            if (d->total > max_body)
                return 413;
            d->digits = 0;
            d->st = d->left > 0 ? C_DATA : C_TRAILER;
            break;
        case C_DATA_CR:
            if (c != '\r')
                return 400;
            d->st = C_DATA_LF;
            break;
        case C_DATA_LF:
            if (c != '\n')
                return 400;
            d->st = C_SIZE;
            break;
        case C_TRAILER: /* the start of a trailer line, or the blank line ending them */
            d->st = c == '\r' ? C_END_LF : C_TLINE;
            if (c != '\r' && ++d->skipped > HEAD_MAX)
                return 413;
            break;
        case C_TLINE:
            if (++d->skipped > HEAD_MAX)
                return 413;
            if (c == '\r')
                d->st = C_TLINE_LF;
            break;
        case C_TLINE_LF:
            if (c != '\n')
                return 400;
            d->st = C_TRAILER;
            break;
        case C_END_LF:
            if (c != '\n')
                return 400;
            d->st = C_DONE;
            break;
        default:
            return 400;
        }
    }
    *used = i;
    return d->st == C_DONE ? P_OK : P_MORE;
}
