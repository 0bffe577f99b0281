/*
 * resp_parse.h - the RESP2 request parser used by kv_server.c (see resp_parse.c).
 */
#ifndef RESP_PARSE_H
#define RESP_PARSE_H

#include <stddef.h>

#include "kv_types.h"

#define MAX_BULK      (4u << 20)              /* longest argument */
#define MAX_REQUEST   (MAX_BULK + (64u << 10)) /* longest request, all arguments */
#define MAX_ARGS      1024
#define MAX_INLINE    (64u << 10)             /* longest inline (telnet-style) request */

enum { PARSE_MORE = 0, PARSE_OK = 1, PARSE_ERR = -1 };

/* One request at p (n > 0 bytes): PARSE_OK with argv[0 .. *argc) (at most MAX_ARGS) and
 * *used bytes consumed, PARSE_MORE if incomplete, or PARSE_ERR with *perr saying why. */
int resp_parse(kv_arg *argv, int *argc, const char **perr, const char *p, size_t n,
               size_t *used);

#endif /* RESP_PARSE_H */
