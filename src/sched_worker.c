/*
 * sched_worker.c - worker lifecycle: the scheduler's process-wide state, starting the
 * workers (threads, or one host-driven worker), a worker thread's loop, stopping them, and
 * queueing a newly spawned strand.
 *
 * strand__cfg.workers threads (or, host-driven, none: the host's thread acts as worker 0
 * inside strand_run_until_idle, sched_host.c). Start and stop run under the runtime's init
 * lock (runtime.c), never concurrently with each other; `workers`, `nworkers`, `host` and
 * `seeded` change only there, while no worker thread runs. Stop joins the threads; workers
 * whose control blocks may still be referenced (strands left parked) are leaked on purpose.
 * Spares (sched_monitor.c) run the same loop (strand__sched_run_loop) on structs of their
 * own after the configured workers in strand__workers; the monitor starts, parks and reaps
 * them, and stops them (waiting until each is done) before the workers are stopped here.
 */
#define STRAND__SCHED_INTERNAL
#include "sched_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct strand__sched strand__sched = {
    .idle_lock = PTHREAD_MUTEX_INITIALIZER,
    .gq = STRAND__GLOBALQ_INIT,
};
struct strand__worker **strand__workers;
int strand__nworkers;
atomic_int strand__nthreads;
int strand__nthreads_cap;

/* Run strands as w until the runtime stops, or (a spare) until w's role goes away. The
 * loop of every thread that runs strands, configured worker or spare (sched_monitor.c). */
void strand__sched_run_loop(struct strand__worker *w)
{
    for (;;) {
        struct strand *s = strand__sched_find_blocking(w);
        if (!s) {
            if (strand__sched_stopping())
                break;
            if (!strand__sched_on_leave(w))
                break; /* a spare whose role went back */
            continue;
        }
        if (w->spinning) {
            /* Found work while spinning: let another idle worker take over the search. */
            strand__sched_stop_spinning(w);
            strand__wakep();
        }
        strand__sched_run_from_idle(w, s);
    }
}

/* Become w on this thread: TLS, the sanitizers' idle context, the thread hook. */
void strand__sched_thread_enter(struct strand__worker *w)
{
    atomic_store_explicit(&w->tid, (int)syscall(SYS_gettid), memory_order_relaxed);
    strand__sched_set_worker(w);
    strand__sched_g0_bounds(w);
    if (strand__sched.thread_start)
        strand__sched.thread_start();
}

static void *worker_main(void *arg)
{
    struct strand__worker *w = arg;
    strand__sched_thread_enter(w);
    strand__sched_run_loop(w);
    strand__sched_set_worker(NULL);
    return NULL;
}

struct strand__worker *strand__sched_worker_new(int i, uint64_t seed)
{
    struct strand__worker *w = aligned_alloc(STRAND__CACHELINE,
                                             (sizeof *w + STRAND__CACHELINE - 1) &
                                                 ~(size_t)(STRAND__CACHELINE - 1));
    if (!w)
        return NULL;
    memset(w, 0, sizeof *w);
    w->index = i;
    w->rng = seed ? seed + (uint64_t)i * 0x9E3779B97F4A7C15ull
                  : (uint64_t)(uintptr_t)w ^ 0x9E3779B97F4A7C15ull;
    if (!w->rng)
        w->rng = 1;
    w->seed_rng = seed ? seed * 0x9E3779B97F4A7C15ull + 1 : 1;
    return w;
}

int strand__sched_start(void (*thread_start)(void))
{
    struct strand__sched *sc = &strand__sched;
    sc->thread_start = thread_start;
    int n = strand__cfg.host_driven ? 1 : strand__cfg.workers;
    sc->host = strand__cfg.host_driven;
    sc->seeded = strand__cfg.seed != 0 && n == 1;
    atomic_store(&sc->stopping, false);
    /* Room for the spares the monitor may start (sched_monitor.c); host-driven, none. */
    int cap = sc->host || strand__cfg.max_threads < n ? n : strand__cfg.max_threads;
    struct strand__worker **ws = calloc((size_t)cap, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        if (!(ws[i] = strand__sched_worker_new(i, strand__cfg.seed)))
            return -ENOMEM;
    ws[0]->host = sc->host;
    strand__workers = ws;
    strand__nworkers = n;
    strand__nthreads_cap = cap;
    atomic_store_explicit(&strand__nthreads, n, memory_order_release);
    if (sc->host)
        return 0;
    for (int i = 0; i < n; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        int rc = pthread_create(&ws[i]->thread, &a, worker_main, ws[i]);
        pthread_attr_destroy(&a);
        if (rc != 0)
            return -rc;
    }
    return strand__monitor_start();
}

void strand__sched_stop(void)
{
    struct strand__sched *sc = &strand__sched;
    atomic_store_explicit(&sc->stopping, true, memory_order_seq_cst);
    if (!sc->host) {
        /* The monitor first (it starts spares); it waits for the spares itself. */
        strand__monitor_stop();
        for (int i = 0; i < strand__nworkers; i++)
            strand__sched_wake_stop(strand__workers[i]);
        for (int i = 0; i < strand__nworkers; i++)
            pthread_join(strand__workers[i]->thread, NULL);
    }
    /* The counters of these workers live on, so that spawned - completed stays right for
     * the next runtime (strand_wait_all depends on it). */
    int nt = strand__sched_nthreads();
    for (int i = 0; i < nt; i++)
        strand__sched_retire_counters(strand__workers[i]);
    /* Workers are kept (leaked) if strands are still parked: their control blocks point at
     * them. Otherwise their stack caches go back to the pool and they are freed. */
    if (strand__active() == 0) {
        struct strand__worker **ws = strand__workers;
        int n = nt;
        atomic_store_explicit(&strand__nthreads, 0, memory_order_release);
        strand__nworkers = 0;
        strand__workers = NULL;
        for (int i = 0; i < n; i++) {
            strand__stack_cache_drain(&ws[i]->caches.stacks);
            strand__desc_cache_drain(&ws[i]->caches.descs);
            free(ws[i]);
        }
        free(ws);
    }
    sc->idle_head = NULL;
    atomic_store(&sc->nidle, 0);
    atomic_store(&sc->nspinning, 0);
}

bool strand__sched_stopping(void)
{
    return atomic_load_explicit(&strand__sched.stopping, memory_order_acquire);
}

/* Queue a new strand: on the calling worker ("run next" when a strand spawns, like Go),
 * else on the global queue (or its pinned worker's inbox). */
void strand__sched_spawn(struct strand *s)
{
    atomic_store_explicit(&s->state, STRAND__RUNNABLE, memory_order_relaxed);
    strand__sched_make_runnable(s, true);
}
