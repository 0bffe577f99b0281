/*
 * config.c - the one place where strand's settings are resolved: strand_config fields over
 * STRAND_* environment variables over built-in defaults.
 *
 * Invariants:
 *  - Every STRAND_* variable is parsed strictly by strand__env_parse (decimal digits only,
 *    no sign, no blanks, no fraction, no overflow; STACK_SIZE alone takes a K/M/G suffix).
 *    A bad value never stops the program: settings_load prints exactly one warning for it,
 *    naming the variable, the value and the default it used instead, and goes on.
 *  - strand__cfg is written only by the runtime's initialisation (strand__settings_load is
 *    called on it with the runtime's init lock held) and read afterwards without locks.
 *  - Nothing here allocates or keeps state between calls: the fuzzer calls
 *    strand__env_parse millions of times.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

strand__settings strand__cfg;

#define KiB ((uint64_t)1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)

/* One row per variable: its accepted range and whether zero is a meaningful value. The
 * default is not here: some defaults (workers) depend on the machine. */
typedef struct env_spec {
    const char *name;
    uint64_t    min, max;   /* inclusive, after suffix scaling */
    bool        zero_ok;    /* zero is a real setting ("off") rather than a mistake */
    bool        suffixes;   /* K/M/G accepted */
} env_spec;

static const env_spec specs[STRAND__ENV_COUNT] = {
    [STRAND__ENV_WORKERS]        = { "STRAND_WORKERS", 1, STRAND__MAX_WORKERS, false, false },
    [STRAND__ENV_STACK_SIZE]     = { "STRAND_STACK_SIZE", STRAND__STACK_MIN, STRAND__STACK_MAX,
                                     false, true },
    [STRAND__ENV_POOL_CAPACITY]  = { "STRAND_POOL_CAPACITY", 0, 100000000, true, false },
    [STRAND__ENV_YIELD_INTERVAL] = { "STRAND_YIELD_INTERVAL", 0, INT_MAX, true, false },
    [STRAND__ENV_REGISTRY_SIZE]  = { "STRAND_REGISTRY_SIZE", 0, STRAND__REGISTRY_MAX, true, false },
    [STRAND__ENV_WATCHDOG_SECS]  = { "STRAND_WATCHDOG_SECS", 0, 86400 * 365, true, false },
    [STRAND__ENV_SEED]           = { "STRAND_SEED", 0, UINT64_MAX, true, false },
    [STRAND__ENV_GUARD_FALLBACK] = { "STRAND_GUARD_FALLBACK", 0, 1, true, false },
    [STRAND__ENV_SHUTDOWN_MS]    = { "STRAND_SHUTDOWN_MS", 0, 86400000, true, false },
    [STRAND__ENV_REPORT]         = { "STRAND_REPORT", 0, 1, true, false },
    [STRAND__ENV_HANDOFF_MS]     = { "STRAND_HANDOFF_MS", 0, STRAND__MS_MAX, true, false },
    [STRAND__ENV_SLICE_MS]       = { "STRAND_SLICE_MS", 0, STRAND__MS_MAX, true, false },
    [STRAND__ENV_MAX_THREADS]    = { "STRAND_MAX_THREADS", 1, STRAND__THREADS_MAX, false, false },
};

const char *strand__env_name(int var)
{
    if (var < 0 || var >= STRAND__ENV_COUNT)
        return NULL;
    return specs[var].name;
}

/* Decimal digits into *out; -ERANGE on overflow, -EINVAL on anything but digits. */
static int parse_digits(const char *p, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *q = p;
    for (; *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (q == p)
        return -EINVAL;
    *end = q;
    *out = v;
    return 0;
}

static uint64_t suffix_scale(char c)
{
    switch (c) {
    case 'k': case 'K': return KiB;
    case 'm': case 'M': return MiB;
    case 'g': case 'G': return GiB;
    default:            return 0;
    }
}

int strand__env_parse(int var, const char *text, uint64_t *out)
{
    if (var < 0 || var >= STRAND__ENV_COUNT || text == NULL || out == NULL)
        return -EINVAL;
    const env_spec *sp = &specs[var];
    const char *end;
    uint64_t v;
    int rc = parse_digits(text, &end, &v);
    if (rc != 0)
        return rc;
    if (sp->suffixes && *end != '\0') {
        uint64_t scale = suffix_scale(*end);
        if (scale == 0)
            return -EINVAL;
        end++;
        if (v > UINT64_MAX / scale)
            return -ERANGE;
        v *= scale;
    }
    if (*end != '\0')
        return -EINVAL;
    if (v == 0 && !sp->zero_ok)
        return -ERANGE;
    if (v < sp->min || v > sp->max)
        return -ERANGE;
    *out = v;
    return 0;
}

int strand__poller_parse(const char *text)
{
    if (text == NULL)
        return -EINVAL;
    if (strcmp(text, "epoll") == 0)
        return STRAND__POLLER_EPOLL;
    if (strcmp(text, "io_uring") == 0)
        return STRAND__POLLER_IO_URING;
    return -EINVAL;
}

static const char *poller_text(int kind)
{
    return kind == STRAND__POLLER_IO_URING ? "io_uring" : "epoll";
}

/* STRAND_POLLER: a word, not a number, so it has no row in specs[]; same rules otherwise
 * (strict, one warning naming the value and the default, never fatal). */
static int env_poller(void)
{
    const char *text = getenv("STRAND_POLLER");
    if (text == NULL)
        return STRAND__POLLER_DEFAULT;
    int kind = strand__poller_parse(text);
    if (kind > 0)
        return kind;
    fprintf(stderr, "strand: warning: STRAND_POLLER=\"%.64s\" is not valid (epoll or "
            "io_uring); using the default %s\n", text, poller_text(STRAND__POLLER_DEFAULT));
    return STRAND__POLLER_DEFAULT;
}

/* ------------------------------------------------------------------ defaults */

static int online_cpus(void)
{
    /* The CPUs this process may run on (taskset, cgroup cpusets), else the online count. */
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    if (n > STRAND__MAX_WORKERS)
        n = STRAND__MAX_WORKERS;
    return (int)n;
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* Clamp to [min, max] and round up to whole pages. */
size_t strand__stack_size_norm(size_t size)
{
    if (size < STRAND__STACK_MIN)
        size = STRAND__STACK_MIN;
    if (size > STRAND__STACK_MAX)
        size = STRAND__STACK_MAX;
    size_t pg = page_size();
    return (size + pg - 1) / pg * pg;
}

/* ------------------------------------------------------------------ loading */

/* Read variable `var` from the environment. Unset: *out untouched, false. Bad: one warning
 * that names the variable, the value and the default (`dflt_text`), false. */
static bool env_get(int var, const char *dflt_text, uint64_t *out)
{
    const char *name = specs[var].name;
    const char *text = getenv(name);
    if (text == NULL)
        return false;
    uint64_t v;
    int rc = strand__env_parse(var, text, &v);
    if (rc == 0) {
        *out = v;
        return true;
    }
    const env_spec *sp = &specs[var];
    char range[96];
    if (sp->suffixes)
        snprintf(range, sizeof range, "a size in bytes from %llu to %llu, with an optional "
                 "K, M or G suffix", (unsigned long long)sp->min, (unsigned long long)sp->max);
    else
        snprintf(range, sizeof range, "an integer from %llu to %llu",
                 (unsigned long long)(sp->zero_ok ? 0 : sp->min), (unsigned long long)sp->max);
    fprintf(stderr, "strand: warning: %s=\"%.64s\" is not valid (%s); using the default %s\n",
            name, text, range, dflt_text);
    return false;
}

static const char *u64_text(char *buf, size_t cap, uint64_t v)
{
    snprintf(buf, cap, "%llu", (unsigned long long)v);
    return buf;
}

int strand__config_check(const strand_config *cfg)
{
    if (cfg == NULL)
        return 0;
    if (cfg->workers < 0 || cfg->workers > STRAND__MAX_WORKERS)
        return -EINVAL;
    if (cfg->yield_interval < 0 || cfg->registry_size < 0 || cfg->watchdog_secs < 0 ||
        cfg->shutdown_ms < 0)
        return -EINVAL;
    if (cfg->registry_size > STRAND__REGISTRY_MAX)
        return -EINVAL;
    if (cfg->stack_size > STRAND__STACK_MAX)
        return -EINVAL;
    /* -1 is "off" for the two times (0 already means "the default") */
    if (cfg->handoff_ms < -1 || cfg->handoff_ms > STRAND__MS_MAX || cfg->slice_ms < -1 ||
        cfg->slice_ms > STRAND__MS_MAX)
        return -EINVAL;
    if (cfg->max_threads < 0 || cfg->max_threads > STRAND__THREADS_MAX)
        return -EINVAL;
    if ((cfg->host_driven != 0 && cfg->host_driven != 1) ||
        (cfg->no_signals != 0 && cfg->no_signals != 1))
        return -EINVAL;
    return 0;
}

void strand__settings_load(strand__settings *out, const strand_config *cfg)
{
    static const strand_config none;
    if (cfg == NULL)
        cfg = &none;
    char buf[32];
    uint64_t v;

    /* Defaults first, then the environment over them, then the config over both. The
     * environment is read even when the config overrides a field, so a bad variable is
     * reported either way. */
    strand__settings s = {
        .workers = online_cpus(),
        .stack_size = STRAND__STACK_DEFAULT,
        .pool_capacity = 10000,
        .yield_interval = 0,
        .registry_size = 1024,
        .watchdog_secs = 0,
        .host_driven = cfg->host_driven != 0,
        .no_signals = cfg->no_signals != 0,
        .seed = 0,
        .shutdown_ms = 5000,
        .report = 0,
        .handoff_ms = 10,
        .slice_ms = 10,
        .max_threads = STRAND__THREADS_DEFAULT,
    };

    if (env_get(STRAND__ENV_WORKERS, u64_text(buf, sizeof buf, (uint64_t)s.workers), &v))
        s.workers = (int)v;
    if (env_get(STRAND__ENV_STACK_SIZE, "131072 (128K)", &v))
        s.stack_size = (size_t)v;
    if (env_get(STRAND__ENV_POOL_CAPACITY, "10000", &v))
        s.pool_capacity = (size_t)v;
    if (env_get(STRAND__ENV_YIELD_INTERVAL, "0 (off)", &v))
        s.yield_interval = (int)v;
    if (env_get(STRAND__ENV_REGISTRY_SIZE, "1024", &v))
        s.registry_size = (int)v;
    if (env_get(STRAND__ENV_WATCHDOG_SECS, "0 (off)", &v))
        s.watchdog_secs = (int)v;
    if (env_get(STRAND__ENV_SEED, "0 (off)", &v))
        s.seed = v;
    if (env_get(STRAND__ENV_GUARD_FALLBACK, "0 (guard regions where the kernel has them)", &v))
        s.guard_fallback = (int)v;
    if (env_get(STRAND__ENV_SHUTDOWN_MS, "5000", &v))
        s.shutdown_ms = (int)v;
    if (env_get(STRAND__ENV_REPORT, "0 (off)", &v))
        s.report = (int)v;
    if (env_get(STRAND__ENV_HANDOFF_MS, "10", &v))
        s.handoff_ms = (int)v;
    if (env_get(STRAND__ENV_SLICE_MS, "10", &v))
        s.slice_ms = (int)v;
    if (env_get(STRAND__ENV_MAX_THREADS, "256", &v))
        s.max_threads = (int)v;
    s.poller = env_poller();

    if (cfg->workers > 0)
        s.workers = cfg->workers > STRAND__MAX_WORKERS ? STRAND__MAX_WORKERS : cfg->workers;
    if (cfg->stack_size > 0)
        s.stack_size = cfg->stack_size;
    if (cfg->pool_capacity > 0)
        s.pool_capacity = cfg->pool_capacity;
    if (cfg->yield_interval > 0)
        s.yield_interval = cfg->yield_interval;
    if (cfg->registry_size > 0)
        s.registry_size = cfg->registry_size > STRAND__REGISTRY_MAX ? STRAND__REGISTRY_MAX
                                                                    : cfg->registry_size;
    if (cfg->watchdog_secs > 0)
        s.watchdog_secs = cfg->watchdog_secs;
    if (cfg->seed != 0)
        s.seed = cfg->seed;
    if (cfg->shutdown_ms > 0)
        s.shutdown_ms = cfg->shutdown_ms;
    if (cfg->handoff_ms != 0)
        s.handoff_ms = cfg->handoff_ms < 0 ? 0 : cfg->handoff_ms;
    if (cfg->slice_ms != 0)
        s.slice_ms = cfg->slice_ms < 0 ? 0 : cfg->slice_ms;
    if (cfg->max_threads > 0)
        s.max_threads = cfg->max_threads;
    /* The workers themselves are threads that run strands: the cap never starves them. */
    if (s.max_threads < s.workers)
        s.max_threads = s.workers;

    s.stack_size = strand__stack_size_norm(s.stack_size);
    *out = s;
}
