/*
 * bench_util.h - tiny helpers shared by the C benchmarks in bench/.
 *
 * Every benchmark prints exactly one machine-readable line
 *     RESULT <name> <value> <unit>
 * (parsed by bench/run.sh), plus any number of human-readable lines that never start
 * with "RESULT". Everything here is header-only and static so that each bench program builds
 * as a standalone executable; none of it touches the strand runtime, so the plain-C
 * programs (loadgen, echo_epoll) can include it too.
 */
#ifndef STRAND_BENCH_UTIL_H
#define STRAND_BENCH_UTIL_H

/* clock_gettime, accept4 and friends under -std=c11; every bench file includes this
 * header first, before any system header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic nanoseconds; independent of the runtime so plain-C programs can use it. */
static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The one line run.sh reads. The value is printed with enough digits for ns figures. */
static inline void bench_result(const char *name, double value, const char *unit)
{
    printf("RESULT %s %.3f %s\n", name, value, unit);
    fflush(stdout);
}

/* Resident set size in bytes from /proc/self/status (VmRSS), or -1. */
static inline int64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int64_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* A positive integer from argv[i] if present, else the default; exits on junk so a
 * typo in run.sh shows up as a failed (n/a) benchmark rather than a wrong figure. */
static inline long bench_arg(int argc, char **argv, int i, long dflt)
{
    if (i >= argc)
        return dflt;
    char *end = NULL;
    long v = strtol(argv[i], &end, 10);
    if (!end || *end || v <= 0) {
        fprintf(stderr, "%s: bad argument '%s'\n", argv[0], argv[i]);
        exit(2);
    }
    return v;
}

/* Abort the benchmark on a failed runtime call: a result from a broken run is worse
 * than none. */
#define BENCH_CHECK(expr)                                                            \
    do {                                                                             \
        long long bench_rc_ = (long long)(expr);                                     \
        if (bench_rc_ < 0) {                                                         \
            fprintf(stderr, "%s:%d: %s failed: %lld\n", __FILE__, __LINE__, #expr,   \
                    bench_rc_);                                                      \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#endif /* STRAND_BENCH_UTIL_H */
