/*
 * worker.h - the worker and its run queues, shared by sched.c (the scheduler), strand.c
 * (spawn and exit use the worker's caches) and stack.c.
 *
 * Ownership. A worker's run queues are single-producer (the owner pushes at `tail`),
 * multi-consumer (the owner and thieves take from `head` with a CAS), as Go's runq. Its
 * caches (stacks, id slots), counters and `prev`/`prev_action` are touched by the owning
 * thread only; counters are relaxed atomics so strand_stats() may read them from anywhere.
 * `runnext` is taken with an exchange so a thief may empty it too.
 */
#ifndef STRAND_WORKER_H
#define STRAND_WORKER_H

#include "internal.h"

#define RUNQ_SIZE   256 /* a power of two */
#define STACK_CACHE 128
#define SLOT_CACHE  128
#define PRIOS       4

typedef struct strand__runq {
    _Alignas(STRAND__CACHELINE) atomic_uint head; /* consumers, by CAS */
    _Alignas(STRAND__CACHELINE) atomic_uint tail; /* owner only */
    _Atomic(struct strand *) buf[RUNQ_SIZE];
} strand__runq;

/* What the strand that just switched away asked for; done by whoever runs next on this
 * worker (finish_switch), off that strand's stack. */
enum { PREV_NONE = 0, PREV_YIELD, PREV_PARK, PREV_EXIT };

struct strand__worker {
    int              index;
    bool             host;        /* host-driven: the host's thread, no worker thread */
    bool             spinning;
    strand__ctx      sched_ctx;   /* the worker's own stack: idle loop */
    struct strand   *prev;
    int              prev_action;
    _Atomic(struct strand *) current;
    _Atomic(struct strand *) runnext;
    strand__runq     q[PRIOS];
    unsigned         prio_mask;   /* owner's hint: which non-normal queues may hold work */
    strand__spinlock inbox_lock;  /* strands pinned to this worker */
    struct strand   *inbox_head, *inbox_tail;
    atomic_uint      inbox_n;
    atomic_uint      wake;        /* futex: 1 = woken by wakep */
    atomic_bool      idle;        /* on the idle list */
    atomic_bool      in_poll;     /* blocked in strand__netpoll */
    uint32_t         tick;
    uint64_t         rng;         /* victim choice */
    uint64_t         seed_rng;    /* deterministic mode's choice among runnable strands */
    struct strand   *stacks[STACK_CACHE];
    int              nstacks;
    uint32_t         slots[SLOT_CACHE];
    int              nslots;
    atomic_ullong    stat[STRAND__STAT_COUNT];
    pthread_t        thread;
    void            *g0_lo;       /* the worker thread's own stack, for ASan */
    size_t           g0_size;
    void            *g0_fake;
    void            *g0_fiber;    /* TSan */
    struct strand__worker *idle_next;
};

static inline void strand__worker_stat(struct strand__worker *w, int which, uint64_t n)
{
    /* relaxed load + store, not an RMW: only the owner writes it */
    uint64_t v = atomic_load_explicit(&w->stat[which], memory_order_relaxed);
    atomic_store_explicit(&w->stat[which], v + n, memory_order_relaxed);
}

static inline struct strand *strand__worker_stack_pop(struct strand__worker *w)
{
    return w->nstacks ? w->stacks[--w->nstacks] : NULL;
}

static inline bool strand__worker_stack_push(struct strand__worker *w, struct strand *s)
{
    if (w->nstacks == STACK_CACHE)
        return false;
    w->stacks[w->nstacks++] = s;
    return true;
}

/* Queue a strand made runnable on this worker (spawn, yield, wake). */
void strand__sched_push(struct strand__worker *w, struct strand *s, bool next);
/* Kick an idle worker if no worker is looking for work (design notes §3). */
void strand__wakep(void);
/* Called by timer.c when the earliest deadline moved earlier. */
void strand__sched_timer_changed(void);
/* Switch the current strand away; the worker does `action` with it afterwards. */
void strand__schedule(struct strand *self, int action) ;
/* First code of every strand, on its own stack. */
void strand__entry_finish(void);

int  strand__sched_start(void);
void strand__sched_stop(void);
bool strand__sched_stopping(void);
bool strand__sched_host(void);
void strand__sched_spawn(struct strand *s);
int  strand__sched_wait_quiet(void);   /* until no strand is alive */
void strand__count_spawn(void);
uint64_t strand__active(void);

extern struct strand__worker **strand__workers;
extern int strand__nworkers;

#endif
