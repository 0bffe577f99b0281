/*
 * dump.c - strand_dump(fd): every live strand, like Go's goroutine dump.
 *
 * First a line per thread that runs strands (each worker, each spare: what it runs, and for
 * a worker whose queue was handed off, how long its strand has held it and whether it is
 * blocked in the kernel, from /proc/self/task/<tid>/stat). Then for each strand in the
 * registry: id, name, state, priority, worker, age, what it waits on, whether it is
 * cancelled, shielded or traps exits, its supervisor, links and monitors (fate.h), and for a
 * parked strand a backtrace from its saved frame pointer, with static functions named from
 * the module's .symtab (symtab.c). Output is built in
 * a buffer and written with write(2) to the caller's fd; no stdio, no locks taken.
 *
 * Invariants and why:
 *  - Strands run (and exit) while we read them. Every read of a strand's memory (its control
 *    block, its stack frames) goes through safe_read(), which uses process_vm_readv on our
 *    own pid: memory that was unmapped meanwhile gives an error instead of a fault, and the
 *    sanitizers do not see (and do not report) these deliberately racy reads.
 *  - A frame walk only follows frame pointers that stay 8-aligned, strictly increase and lie
 *    inside [lo, record) of that strand's stack, for at most DUMP_FRAMES frames.
 *  - Runs on the diagnostics thread (SIGQUIT, watchdog) or the caller's thread, never inside
 *    a signal handler (dladdr and clock_gettime are used).
 */
#include "diag.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define DUMP_FRAMES 32

/* ------------------------------------------------------------------ safe reads */

static int vm_read_works = 1; /* 0 once process_vm_readv turned out unavailable */

static bool safe_read(void *dst, const void *src, size_t len)
{
    if (__atomic_load_n(&vm_read_works, __ATOMIC_RELAXED)) {
        struct iovec local = { dst, len };
        struct iovec remote = { (void *)src, len };
        ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (n == (ssize_t)len)
            return true;
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return false;
        __atomic_store_n(&vm_read_works, 0, __ATOMIC_RELAXED);
    }
    /* Fallback (seccomp forbids the call): a plain copy; the registry keeps control blocks
     * of live strands mapped, so this only risks stale values, not a fault. */
    memcpy(dst, src, len);
    return true;
}

bool strand__snapshot(const struct strand *s, struct strand *copy)
{
    return safe_read(copy, s, sizeof *copy);
}

int64_t strand__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ weak fallbacks */

/* sched_counters.c gives the real one; without it the dump prints no worker numbers. */
__attribute__((weak)) int strand__worker_index(const struct strand__worker *w)
{
    (void)w;
    return -1;
}

/* ------------------------------------------------------------------ text */

typedef struct out {
    int    fd;
    int    err;       /* first write error, negative */
    size_t len;
    char   buf[8192];
} out;

static void out_flush(out *o)
{
    size_t off = 0;
    while (off < o->len && o->err == 0) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            o->err = -errno;
            break;
        }
        off += (size_t)n;
    }
    o->len = 0;
}

__attribute__((format(printf, 2, 3))) static void out_printf(out *o, const char *fmt, ...)
{
    if (sizeof o->buf - o->len < 1024)
        out_flush(o);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t room = sizeof o->buf - o->len;
    o->len += (size_t)n < room ? (size_t)n : room - 1;
}

static const char *state_name(int st)
{
    switch (st) {
    case STRAND__RUNNING:  return "running";
    case STRAND__PARKING:  return "parking";
    case STRAND__PARKED:   return "parked";
    case STRAND__RUNNABLE: return "runnable";
    case STRAND__DONE:     return "done";
    default:               return "?";
    }
}

static const char *prio_name(int p)
{
    switch (p) {
    case STRAND_PRIO_NORMAL: return "normal";
    case STRAND_PRIO_MAX:    return "max";
    case STRAND_PRIO_HIGH:   return "high";
    case STRAND_PRIO_LOW:    return "low";
    default:                 return "?";
    }
}

/* "what it waits on", into buf. */
static void wait_text(const struct strand *c, int64_t now, char *buf, size_t cap)
{
    const void *o = c->wait_obj;
    int64_t a = c->wait_arg;
    switch (c->wait_kind) {
    case STRAND__WAIT_JOIN:      snprintf(buf, cap, "join of strand %lld", (long long)a); break;
    case STRAND__WAIT_CHAN_SEND: snprintf(buf, cap, "channel %p (send)", o); break;
    case STRAND__WAIT_CHAN_RECV: snprintf(buf, cap, "channel %p (recv)", o); break;
    case STRAND__WAIT_SELECT:    snprintf(buf, cap, "select of %lld cases", (long long)a); break;
    case STRAND__WAIT_MAILBOX:   snprintf(buf, cap, "mailbox"); break;
    case STRAND__WAIT_MUTEX:     snprintf(buf, cap, "mutex %p", o); break;
    case STRAND__WAIT_COND:      snprintf(buf, cap, "cond %p", o); break;
    case STRAND__WAIT_WG:        snprintf(buf, cap, "wait group %p", o); break;
    case STRAND__WAIT_SEM:       snprintf(buf, cap, "semaphore %p", o); break;
    case STRAND__WAIT_SLEEP:
        if (a < 0)
            snprintf(buf, cap, "timer (forever)");
        else
            snprintf(buf, cap, "timer (due in %.3fs)", (double)(a - now) / 1e9);
        break;
    case STRAND__WAIT_FD_READ:   snprintf(buf, cap, "fd %lld (read)", (long long)a); break;
    case STRAND__WAIT_FD_WRITE:  snprintf(buf, cap, "fd %lld (write)", (long long)a); break;
    case STRAND__WAIT_BLOCKING:  snprintf(buf, cap, "off-load pool call"); break;
    default:                     snprintf(buf, cap, "unknown (%d)", c->wait_kind); break;
    }
}

/* Worker running `orig` now, else -1. */
static int running_on(const struct strand *orig)
{
    int n = strand__worker_count();
    for (int i = 0; i < n; i++) {
        uint64_t sw;
        if (strand__worker_current(i, &sw) == orig)
            return i;
    }
    return -1;
}

size_t strand__dump_line(const struct strand *c, const struct strand *orig, int64_t now,
                         char *buf, size_t cap)
{
    char name[STRAND__NAME_MAX + 1];
    memcpy(name, c->name, STRAND__NAME_MAX);
    name[STRAND__NAME_MAX] = '\0';
    for (char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"')
            *p = '?';

    int st = atomic_load_explicit(&((struct strand *)c)->state, memory_order_relaxed);
    int w = running_on(orig);
    if (w < 0 && c->worker != NULL)
        w = strand__worker_index(c->worker);

    char wbuf[32] = "-";
    if (w >= 0)
        snprintf(wbuf, sizeof wbuf, "%d", w);
    char pin[32] = "";
    if (c->pinned >= 0)
        snprintf(pin, sizeof pin, " pinned=%d", c->pinned);
    char waits[96] = "";
    if (st == STRAND__PARKED || st == STRAND__PARKING) {
        char t[80];
        wait_text(c, now, t, sizeof t);
        snprintf(waits, sizeof waits, " waits on: %s", t);
    }
    int n = snprintf(buf, cap, "strand %lld \"%s\" [%s] prio=%s worker=%s%s age=%.3fs%s",
                     (long long)c->id, name, state_name(st), prio_name(c->prio), wbuf, pin,
                     (double)(now - c->created_ns) / 1e9, waits);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ------------------------------------------------------------------ threads */

int strand__thread_blocked(int tid)
{
    if (tid <= 0)
        return -1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    if (p == NULL || p[1] != ' ')
        return -1;
    return p[2] == 'S' || p[2] == 'D' ? 1 : 0;
}

/* "in a blocking call for 1.2 s, strand 17" or "running strand 17 without yielding for
 * 1.2 s": a thread asleep in the kernel is in a call, one on a CPU computes. */
static void held_text(const strand__thread_info *t, long long id, int64_t now, char *buf,
                      size_t cap)
{
    double secs = t->stuck_since > 0 ? (double)(now - t->stuck_since) / 1e9 : -1;
    char dur[32] = "";
    if (secs >= 0)
        snprintf(dur, sizeof dur, " for %.1f s", secs);
    if (strand__thread_blocked(t->tid) == 0)
        snprintf(buf, cap, "running strand %lld without yielding%s", id, dur);
    else
        snprintf(buf, cap, "in a blocking call%s, strand %lld", dur, id);
}

size_t strand__thread_line(int i, int64_t now, char *buf, size_t cap)
{
    strand__thread_info t;
    if (!strand__thread_info_get(i, &t) || (t.spare && t.gone))
        return 0;
    struct strand c;
    long long id = -1;
    if (t.current != NULL && strand__snapshot(t.current, &c))
        id = (long long)c.id;
    char held[128];
    int n;
    if (!t.spare) {
        if (t.standin >= 0 && id >= 0) {
            held_text(&t, id, now, held, sizeof held);
            n = snprintf(buf, cap, "worker %d: %s; its queue runs on spare thread %d (%u "
                         "queued here)", i, held, t.standin, t.queued);
        } else if (t.standin >= 0) {
            n = snprintf(buf, cap, "worker %d: back from a hand-off, waiting for spare thread "
                         "%d to give its role back", i, t.standin);
        } else if (id >= 0) {
            n = snprintf(buf, cap, "worker %d: running strand %lld, %llu switches, %u queued",
                         i, id, (unsigned long long)t.switches, t.queued);
        } else {
            n = snprintf(buf, cap, "worker %d: idle, %llu switches", i,
                         (unsigned long long)t.switches);
        }
    } else if (t.parked) {
        n = snprintf(buf, cap, "spare thread %d: parked", i);
    } else if (t.charge >= 0) {
        char what[64] = "idle";
        if (id >= 0)
            snprintf(what, sizeof what, "running strand %lld", id);
        n = snprintf(buf, cap, "spare thread %d: standing in for worker %d, %s, %llu switches, "
                     "%u queued", i, t.charge, what, (unsigned long long)t.switches, t.queued);
    } else if (id >= 0) {
        held_text(&t, id, now, held, sizeof held);
        n = snprintf(buf, cap, "spare thread %d: %s (its role went to another thread; %u "
                     "queued here)", i, held, t.queued);
    } else {
        n = snprintf(buf, cap, "spare thread %d: giving its role back", i);
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ------------------------------------------------------------------ backtrace */

static void print_frame(out *o, int k, uintptr_t pc)
{
    Dl_info info;
    /* A return address points after the call: look up pc-1 so a call at the very end of a
     * function is attributed to it. */
    if (k > 0 && pc > 0 && dladdr((void *)(pc - 1), &info) != 0 && info.dli_fname != NULL) {
        /* fallthrough to print below */
    } else if (dladdr((void *)pc, &info) == 0 || info.dli_fname == NULL) {
        out_printf(o, "    #%-2d 0x%016lx\n", k, (unsigned long)pc);
        return;
    }
    const char *mod = strrchr(info.dli_fname, '/');
    mod = mod != NULL ? mod + 1 : info.dli_fname;
    const char *sym = NULL;
    uintptr_t off = 0;
    uintptr_t at = k > 0 && pc > 0 ? pc - 1 : pc;
    if (strand__symtab_name(at, info.dli_fname, info.dli_fbase, &sym, &off)) /* statics too */
        out_printf(o, "    #%-2d 0x%016lx %s+0x%lx (%s)\n", k, (unsigned long)pc, sym,
                   (unsigned long)(off + (pc - at)), mod);
    else if (info.dli_sname != NULL)
        out_printf(o, "    #%-2d 0x%016lx %s+0x%lx (%s)\n", k, (unsigned long)pc,
                   info.dli_sname, (unsigned long)(pc - (uintptr_t)info.dli_saddr), mod);
    else
        out_printf(o, "    #%-2d 0x%016lx (%s+0x%lx)\n", k, (unsigned long)pc, mod,
                   (unsigned long)(pc - (uintptr_t)info.dli_fbase));
}

static void backtrace_of(out *o, const struct strand *c, const struct strand *orig)
{
    (void)orig;
    strand__stack st; /* the stack's record sits at the top of its usable memory */
    if (c->stack == NULL || !safe_read(&st, c->stack, sizeof st))
        return; /* not run yet (no stack), or gone */
    uintptr_t lo = (uintptr_t)st.lo;
    uintptr_t hi = (uintptr_t)c->stack;
    uintptr_t fp = strand__ctx_fp(&c->ctx);
    uintptr_t pc = strand__ctx_pc(&c->ctx);
    if (lo == 0 || hi <= lo)
        return;
    int k = 0;
    if (pc != 0)
        print_frame(o, k++, pc);
    while (k < DUMP_FRAMES) {
        if (fp < lo || fp + 2 * sizeof(uintptr_t) > hi || (fp & (sizeof(uintptr_t) - 1)))
            break;
        uintptr_t rec[2];
        if (!safe_read(rec, (const void *)fp, sizeof rec))
            break;
        if (rec[1] == 0)
            break;
        print_frame(o, k++, rec[1]);
        if (rec[0] <= fp)
            break; /* frames must move toward the stack's top */
        fp = rec[0];
    }
}

/* ------------------------------------------------------------------ fate */

/* Up to FATE_MAX ids of a list of strand__watch records (fate.h), read with safe_read as
 * everything else here: the lists change under us, so this is a best-effort picture. */
#define FATE_MAX 8

static void watch_list(out *o, const char *label, const strand__watch *w, bool refs)
{
    if (w == NULL)
        return;
    out_printf(o, "    %s:", label);
    int n = 0;
    while (w != NULL && n < FATE_MAX) {
        strand__watch c;
        if (!safe_read(&c, w, sizeof c))
            break;
        if (refs)
            out_printf(o, " %lld (ref %lld)", (long long)c.peer, (long long)c.ref);
        else
            out_printf(o, " %lld", (long long)c.peer);
        w = c.next;
        n++;
    }
    out_printf(o, "%s\n", w != NULL ? " ..." : "");
}

/* The supervision tree and the links, as JEP 505's dump shows a thread's scopes. */
static void fate_of(out *o, const struct strand *c)
{
    const struct strand__fate *f = &c->fate;
    int cancelled = atomic_load_explicit(&((struct strand *)c)->fate.cancelled,
                                         memory_order_relaxed);
    if (cancelled || f->shield || f->trap_exits)
        out_printf(o, "    %s%s%s\n", cancelled ? "[cancelled]" : "",
                   f->shield ? "[shielded]" : "", f->trap_exits ? "[traps exits]" : "");
    if (f->supervisor != 0)
        out_printf(o, "    supervised by: %lld\n", (long long)f->supervisor);
    watch_list(o, "linked to", f->links, false);
    watch_list(o, "monitors", f->watching, true);
    watch_list(o, "monitored by", f->watchers, true);
}

/* ------------------------------------------------------------------ the dump */

typedef struct dump_ctx {
    out    *o;
    int64_t now;
    int     count;
} dump_ctx;

static void dump_one(struct strand *s, void *arg)
{
    dump_ctx *d = arg;
    struct strand c;
    if (!strand__snapshot(s, &c) || c.id <= 0)
        return;
    int st = atomic_load_explicit(&c.state, memory_order_relaxed);
    if (st == STRAND__DONE)
        return;
    char line[256];
    strand__dump_line(&c, s, d->now, line, sizeof line);
    out_printf(d->o, "%s\n", line);
    fate_of(d->o, &c);
    if (st == STRAND__PARKED || st == STRAND__RUNNABLE)
        backtrace_of(d->o, &c, s);
    out_printf(d->o, "\n");
    d->count++;
}

int strand_dump(int fd)
{
    if (fd < 0)
        return -EBADF;
    static out o; /* 8 KiB: kept off the caller's (possibly small strand) stack */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    o.fd = fd;
    o.err = 0;
    o.len = 0;

    dump_ctx d = { &o, strand__mono_ns(), 0 };
    uint64_t active = strand__active();
    int workers = strand__worker_count();
    out_printf(&o, "=== strand dump: %llu live strands (%llu not tracked: registry full), "
                   "%d workers ===\n", (unsigned long long)active,
               (unsigned long long)strand__registry_untracked(), workers);
    int threads = strand__thread_count();
    for (int i = 0; i < threads; i++) {
        char line[256];
        if (strand__thread_line(i, d.now, line, sizeof line) > 0)
            out_printf(&o, "%s\n", line);
    }
    out_printf(&o, "\n");
    strand__registry_each(dump_one, &d);
    out_printf(&o, "=== end of strand dump (%d listed) ===\n", d.count);
    out_flush(&o);
    int rc = o.err != 0 ? o.err : d.count;
    pthread_mutex_unlock(&lock);
    return rc;
}
