/*
 * watchdog.c - STRAND_WATCHDOG_SECS=n: report any strand that has held a worker (or a spare
 * thread) for more than n seconds without yielding, saying so when its worker's queue was
 * handed to a spare thread meanwhile (sched_monitor.c).
 *
 * The scheduler does nothing for this (no clock reads on its hot path): the diagnostics
 * thread calls strand__watchdog_tick every period and samples, per worker, which strand it
 * runs and its switch counter (strand__thread_info_get). The same strand with the same
 * counter as at an earlier sample means no switch happened in between; once that has lasted
 * n seconds the strand is reported, once (a small ring remembers the ids reported).
 *
 * Invariants: all state here is touched by the diagnostics thread only; the report goes to
 * stderr with one write(2) per line so it does not interleave with the program's stdio
 * buffers mid-line.
 */
#include "diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sample {
    struct strand *s;
    uint64_t       switches;
    int64_t        since;
} sample;

#define REPORTED_RING 256

static sample  *samples;
static int      nsamples;
static int64_t  reported[REPORTED_RING];
static unsigned reported_next;

int strand__watchdog_period_ms(void)
{
    int n = strand__cfg.watchdog_secs;
    if (n <= 0)
        return -1;
    /* A quarter of the limit keeps the report within 25% of it; at most once a second. */
    long ms = (long)n * 1000 / 4;
    if (ms < 50)
        ms = 50;
    if (ms > 1000)
        ms = 1000;
    return (int)ms;
}

void strand__watchdog_reset(void)
{
    free(samples);
    samples = NULL;
    nsamples = 0;
    memset(reported, 0, sizeof reported);
    reported_next = 0;
}

static bool was_reported(int64_t id)
{
    for (int i = 0; i < REPORTED_RING; i++)
        if (reported[i] == id)
            return true;
    return false;
}

static void report(int worker, const struct strand *orig, int64_t held_ns, int64_t now)
{
    struct strand c;
    if (!strand__snapshot(orig, &c) || c.id <= 0 || was_reported(c.id))
        return;
    reported[reported_next++ % REPORTED_RING] = c.id;

    char line[256], thread[256] = "";
    strand__dump_line(&c, orig, now, line, sizeof line);
    strand__thread_info t;
    bool handed = strand__thread_info_get(worker, &t) &&
                  ((!t.spare && t.standin >= 0) || (t.spare && t.charge < 0));
    char who[32];
    snprintf(who, sizeof who, worker < strand__worker_count() ? "worker %d" : "spare thread %d",
             worker);
    if (handed) /* "worker 1: in a blocking call for 1.2 s, strand 17; its queue runs on ..." */
        strand__thread_line(worker, now, thread, sizeof thread);
    char msg[768];
    int n = snprintf(msg, sizeof msg,
                     "strand: watchdog: strand %lld has held %s for %.1fs without "
                     "yielding (STRAND_WATCHDOG_SECS=%d); %s\n    %s\n%s%s%s",
                     (long long)c.id, who, (double)held_ns / 1e9, strand__cfg.watchdog_secs,
                     handed ? "its other strands were handed to a spare thread (hand-off)"
                            : "a long loop should call strand_maybe_yield()",
                     line, handed ? "    " : "", thread, handed ? "\n" : "");
    if (n > 0) {
        ssize_t r = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)r;
    }
}

void strand__watchdog_tick(int64_t now)
{
    int n = strand__thread_count(); /* the workers, then the spares (hand-off) */
    if (n <= 0)
        return;
    if (n != nsamples) {
        sample *fresh = calloc((size_t)n, sizeof *fresh);
        if (fresh == NULL)
            return;
        free(samples);
        samples = fresh;
        nsamples = n;
    }
    int64_t limit = (int64_t)strand__cfg.watchdog_secs * 1000000000;
    for (int i = 0; i < n; i++) {
        strand__thread_info t;
        strand__thread_info_get(i, &t);
        uint64_t sw = t.switches;
        struct strand *cur = t.current;
        sample *p = &samples[i];
        if (cur == NULL || cur != p->s || sw != p->switches) {
            p->s = cur;
            p->switches = sw;
            p->since = now;
            continue;
        }
        if (now - p->since > limit)
            report(i, cur, now - p->since, now);
    }
}
