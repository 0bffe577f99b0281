/*
 * report.c - STRAND_REPORT=1: at process exit, one summary of the run on stderr: the
 * counters of strand_stats(), the peak of live strands, the uptime since the runtime
 * first started, and how many times supervisors restarted a child.
 *
 * The start time is taken when the runtime first starts (strand_init or lazily) and kept
 * across restarts of the runtime; the handler is registered with atexit() once, then, by
 * the thread that starts the runtime (under runtime.c's init lock), so nothing here races.
 * At exit the counters are read as strand_stats() reads them, without locks; strands may
 * still be running on other threads, so the figures are a snapshot.
 */
#include "internal.h"
#include "cancel.h"

#include <stdio.h>
#include <stdlib.h>

static int64_t started_ns;
static bool armed;

static void report(void)
{
    struct strand_stats st;
    if (strand_stats(&st) != 0)
        return;
    double up = (double)(strand_now() - started_ns) / 1e9;
    fprintf(stderr,
            "strand report: uptime %.3f s; strands spawned %llu, completed %llu, live %llu, "
            "peak %llu; switches %llu, steals %llu, parks %llu; channel ops %llu; mailbox "
            "messages %llu sent, %llu dropped unread; supervisor restarts %llu; stacks %llu "
            "KiB (%llu guarded, %llu canary)\n",
            up, (unsigned long long)st.spawned, (unsigned long long)st.completed,
            (unsigned long long)st.active, (unsigned long long)st.peak,
            (unsigned long long)st.switches, (unsigned long long)st.steals,
            (unsigned long long)st.parks, (unsigned long long)st.chan_ops,
            (unsigned long long)st.mailbox_sent, (unsigned long long)st.mailbox_dropped,
            (unsigned long long)strand__sup_restarts(),
            (unsigned long long)(st.stack_bytes / 1024), (unsigned long long)st.stacks_guarded,
            (unsigned long long)st.stacks_canary);
}

void strand__report_start(void)
{
    if (started_ns == 0)
        started_ns = strand_now();
    if (strand__cfg.report && !armed) {
        armed = true;
        atexit(report);
    }
}
