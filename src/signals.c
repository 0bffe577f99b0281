/*
 * signals.c - the diagnostics thread and strand's signal handlers:
 *   SIGINT          exit(130) from the diagnostics thread (stdio flushed, atexit run), even
 *                   when every worker is stuck in a loop; a second SIGINT _exit(130)s at once.
 *   SIGQUIT         strand_dump(2) from the diagnostics thread; the program keeps running.
 *   SIGSEGV/SIGBUS  on an alternate signal stack: a fault in a strand's guard page is a stack
 *                   overflow: report it with write(2) and abort(); any other fault goes to the
 *                   handler that was there before (restored, then the fault re-executes).
 * It implements strand__diag_start/stop (called at runtime init/shutdown) and
 * strand__diag_thread_start (each worker thread, to get an alternate signal stack).
 *
 * Policy (documented in docs/debugging.md):
 *  - strand_config.no_signals = 1: no SIGINT/SIGQUIT handlers. The fault handler is still
 *    installed (it only adds a report before a crash that would happen anyway).
 *  - A program that installed its own SIGINT or SIGQUIT handler before init keeps it. An
 *    inherited SIG_IGN for SIGINT is kept too (a shell starts background jobs that way, and
 *    they must not die of the terminal's ^C); SIGQUIT is taken even when ignored, so `kill -3`
 *    dumps a background server (Go makes the same two choices).
 *
 * Invariants:
 *  - Handlers call only async-signal-safe functions (write, sigaction, raise, _exit, abort)
 *    and save errno. They talk to the diagnostics thread through a non-blocking pipe: one
 *    byte per event ('i' SIGINT, 'q' SIGQUIT, 'x' stop).
 *  - The diagnostics thread blocks every asynchronous signal, so handlers run on workers or
 *    the program's threads; it is the only thread that runs the dump and the watchdog.
 *  - `diag_lock` serialises start/stop; the handlers read only the pipe fd (an atomic) and
 *    the saved previous actions (written before the handler is installed).
 */
#include "diag.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t diag_lock = PTHREAD_MUTEX_INITIALIZER;
static bool            diag_running;
static pthread_t       diag_thread;
static bool            diag_have_thread;
static int             pipe_rd = -1;
static atomic_int      pipe_wr = -1;
static atomic_int      sigint_seen;

static bool             own_int, own_quit, own_fault;
static struct sigaction old_int, old_quit, old_segv, old_bus;

/* ------------------------------------------------------------------ async-signal-safe text */

typedef struct sbuf {
    char   b[512];
    size_t n;
} sbuf;

static void s_str(sbuf *s, const char *t)
{
    while (*t && s->n < sizeof s->b)
        s->b[s->n++] = *t++;
}

static void s_strn(sbuf *s, const char *t, size_t max)
{
    for (size_t i = 0; i < max && t[i] && s->n < sizeof s->b; i++)
        s->b[s->n++] = t[i];
}

static void s_u64(sbuf *s, uint64_t v)
{
    char d[24];
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (k > 0 && s->n < sizeof s->b)
        s->b[s->n++] = d[--k];
}

static void s_hex(sbuf *s, uintptr_t v)
{
    s_str(s, "0x");
    char d[2 * sizeof v];
    int k = 0;
    do {
        d[k++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    while (k > 0 && s->n < sizeof s->b)
        s->b[s->n++] = d[--k];
}

static void s_write(const sbuf *s)
{
    size_t off = 0;
    while (off < s->n) {
        ssize_t w = write(2, s->b + off, s->n - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* ------------------------------------------------------------------ handlers */

static void notify(char what)
{
    int fd = atomic_load_explicit(&pipe_wr, memory_order_acquire);
    if (fd >= 0) {
        ssize_t r = write(fd, &what, 1);
        (void)r;
    }
}

static void on_sigint(int sig)
{
    (void)sig;
    int saved = errno;
    /* The second one, or no thread to do an orderly exit: leave now. */
    if (atomic_fetch_add(&sigint_seen, 1) > 0 || atomic_load(&pipe_wr) < 0)
        _exit(130);
    notify('i');
    errno = saved;
}

static void on_sigquit(int sig)
{
    (void)sig;
    int saved = errno;
    notify('q');
    errno = saved;
}

static void overflow_report(const struct strand *s, size_t size, const void *addr)
{
    sbuf b = { .n = 0 };
    s_str(&b, "\nstrand: stack overflow in strand ");
    s_u64(&b, (uint64_t)s->id);
    s_str(&b, " \"");
    s_strn(&b, s->name, STRAND__NAME_MAX);
    s_str(&b, "\": its stack of ");
    s_u64(&b, (uint64_t)size);
    s_str(&b, " bytes is too small (fault at ");
    s_hex(&b, (uintptr_t)addr);
    s_str(&b, ").\nstrand: raise STRAND_STACK_SIZE (e.g. STRAND_STACK_SIZE=");
    uint64_t more = (uint64_t)size * 4 / 1024;
    if (more > 1024 * 1024)
        more = 1024 * 1024;
    s_u64(&b, more);
    s_str(&b, "K), strand_config.stack_size or strand_attr.stack_size.\n");
    s_write(&b);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    /* si_code > 0: raised by the kernel for a real fault (not kill/raise/sigqueue). */
    if (si != NULL && si->si_code > 0) {
        strand__stack *st = strand__stack_find(si->si_addr);
        /* relaxed: the owner was stored by this thread when it bound the stack */
        struct strand *s = st ? atomic_load_explicit(&st->owner, memory_order_relaxed) : NULL;
        if (s != NULL) {
            overflow_report(s, st->size, si->si_addr);
            abort();
        }
    }
    /* Not ours: put the previous action back. A real fault re-executes and meets it (the
     * default action dumps core as usual); a sent signal has to be sent again. */
    sigaction(sig, sig == SIGBUS ? &old_bus : &old_segv, NULL);
    if (si == NULL || si->si_code <= 0)
        raise(sig);
    errno = saved;
}

/* ------------------------------------------------------------------ alternate stacks */

static pthread_key_t  alt_key;
static pthread_once_t alt_once = PTHREAD_ONCE_INIT;

typedef struct alt_stack {
    void  *mem;
    size_t size;
} alt_stack;

static void alt_release(void *p)
{
    alt_stack *a = p;
    stack_t off = { .ss_flags = SS_DISABLE };
    stack_t cur;
    /* Only turn it off if it is still ours (the thread may have replaced it). */
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == a->mem)
        sigaltstack(&off, NULL);
    munmap(a->mem, a->size);
    free(a);
}

static void alt_key_make(void)
{
    pthread_key_create(&alt_key, alt_release);
}

void strand__diag_thread_start(void)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the thread has one already (ours or the program's) */
    pthread_once(&alt_once, alt_key_make);
    long min = sysconf(_SC_MINSIGSTKSZ);
    size_t size = 64 * 1024;
    if (min > 0 && (size_t)min * 4 > size)
        size = (size_t)min * 4;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                     -1, 0);
    if (mem == MAP_FAILED)
        return;
    alt_stack *a = malloc(sizeof *a);
    if (a == NULL) {
        munmap(mem, size);
        return;
    }
    a->mem = mem;
    a->size = size;
    stack_t ss = { .ss_sp = mem, .ss_size = size, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, size);
        free(a);
        return;
    }
    pthread_setspecific(alt_key, a);
}

/* ------------------------------------------------------------------ the diagnostics thread */

static void *exit_guard(void *arg)
{
    (void)arg;
    struct timespec ts = { .tv_sec = 2, .tv_nsec = 0 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    _exit(130);
}

/* exit() flushes stdio and runs the program's atexit handlers. If that hangs (an atexit
 * handler waiting for a strand that spins, a stdio lock held by a stuck worker), a guard
 * thread ends the process 2 s later, and a second SIGINT ends it at once (on_sigint). */
static _Noreturn void sigint_exit(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, exit_guard, NULL);
    pthread_attr_destroy(&attr);
    exit(130);
}

static void on_event(char what)
{
    switch (what) {
    case 'i':
        sigint_exit();
        break;
    case 'q':
        strand_dump(2);
        break;
    default:
        break;
    }
}

static void *diag_main(void *arg)
{
    (void)arg;
    for (;;) {
        int period = strand__watchdog_period_ms();
        struct pollfd p = { .fd = pipe_rd, .events = POLLIN };
        int n = poll(&p, 1, period);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0) {
            char ev[16];
            ssize_t got = read(pipe_rd, ev, sizeof ev);
            for (ssize_t i = 0; i < got; i++) {
                if (ev[i] == 'x')
                    return NULL;
                on_event(ev[i]);
            }
        }
        if (period > 0)
            strand__watchdog_tick(strand__mono_ns());
    }
    return NULL;
}

/* Take `sig` only if the program has no handler of its own (and, unless `over_ignore`, only
 * if it is not ignored): returns true if installed, saving the old action. */
static bool take_if_default(int sig, void (*fn)(int), struct sigaction *old, bool over_ignore)
{
    if (sigaction(sig, NULL, old) != 0)
        return false;
    if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
        !(over_ignore && old->sa_handler == SIG_IGN))
        return false;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction != NULL)
        return false;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(sig, &sa, NULL) == 0;
}

static void install_fault_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    /* Save the previous actions before ours can run: the handler restores them. */
    if (sigaction(SIGSEGV, NULL, &old_segv) != 0 || sigaction(SIGBUS, NULL, &old_bus) != 0)
        return;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    own_fault = true;
}

static bool start_thread(void)
{
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    pipe_rd = p[0];
    /* The reader blocks in poll; only the handlers' writes must never block. */
    fcntl(pipe_rd, F_SETFL, 0);
    atomic_store_explicit(&pipe_wr, p[1], memory_order_release);

    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&diag_thread, &attr, diag_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_store(&pipe_wr, -1);
        close(p[0]);
        close(p[1]);
        pipe_rd = -1;
        return false;
    }
    pthread_setname_np(diag_thread, "strand-diag");
    return true;
}

/* A forked child has no diagnostics thread: make the handlers act alone there (SIGINT then
 * _exit(130)s at once, SIGQUIT does nothing) instead of writing to a pipe nobody reads. */
static void atfork_child(void)
{
    atomic_store(&pipe_wr, -1);
    diag_have_thread = false;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

void strand__diag_start(void)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&diag_lock);
    if (diag_running) {
        pthread_mutex_unlock(&diag_lock);
        return;
    }
    diag_running = true;
    strand__registry_setup(strand__cfg.registry_size);
    atomic_store(&sigint_seen, 0);
    strand__watchdog_reset();

    bool want_signals = !strand__cfg.no_signals;
    if (want_signals || strand__cfg.watchdog_secs > 0)
        diag_have_thread = start_thread();
    if (want_signals && diag_have_thread) {
        own_int = take_if_default(SIGINT, on_sigint, &old_int, false);
        own_quit = take_if_default(SIGQUIT, on_sigquit, &old_quit, true);
    }
    install_fault_handlers();
    /* The initialising thread may run strands too (strand_run, host-driven mode). */
    strand__diag_thread_start();
    pthread_mutex_unlock(&diag_lock);
}

void strand__diag_stop(void)
{
    pthread_mutex_lock(&diag_lock);
    if (!diag_running) {
        pthread_mutex_unlock(&diag_lock);
        return;
    }
    diag_running = false;
    if (own_int)
        sigaction(SIGINT, &old_int, NULL);
    if (own_quit)
        sigaction(SIGQUIT, &old_quit, NULL);
    own_int = own_quit = false;
    if (own_fault) {
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);
        own_fault = false;
    }
    if (diag_have_thread) {
        notify('x');
        pthread_join(diag_thread, NULL);
        int wr = atomic_exchange(&pipe_wr, -1);
        close(wr);
        close(pipe_rd);
        pipe_rd = -1;
        diag_have_thread = false;
    }
    strand__watchdog_reset();
    pthread_mutex_unlock(&diag_lock);
}
