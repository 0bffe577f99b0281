/*
 * blocking.c - the off-load pool: strand_blocking runs a call that would block its thread
 * (file I/O, getaddrinfo, anything without a non-blocking form) on a small pool of plain
 * threads, while the calling strand is parked and its worker runs other strands.
 *
 * The pool: a FIFO of jobs under one mutex; threads are created on demand when no idle
 * thread can take a new job, up to POOL_MAX, and exit after POOL_IDLE_NS without work.
 * A job lives on the calling strand's stack; the pool thread claims and wakes the job's
 * waiter when the call returns and never touches the job afterwards.
 *
 * From a plain thread (not a strand) strand_blocking just calls fn: blocking that thread
 * is what its caller asked for.
 */
#include "io_internal.h"
#include "wait.h"

#include <netdb.h>
#include <time.h>

#define POOL_MAX 64
#define POOL_IDLE_NS (10LL * 1000000000)

typedef struct job {
    strand_blocking_fn fn;
    void              *arg;
    void              *result;
    strand__wait_reg   r;          /* the caller's wait (wait.h) */
    struct job        *next;
} job;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  pool_cond;
static pthread_once_t  pool_once = PTHREAD_ONCE_INIT;
static job *q_head, *q_tail;   /* under pool_lock */
static int  q_len;             /* jobs queued, not yet taken */
static int  n_threads, n_idle; /* under pool_lock */

static void pool_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&pool_cond, &a);
    pthread_condattr_destroy(&a);
}

static job *take_job(void)
{
    job *j = q_head;
    q_head = j->next;
    if (q_head == NULL)
        q_tail = NULL;
    q_len--;
    return j;
}

static void *pool_thread(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        if (q_head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += POOL_IDLE_NS / 1000000000;
            n_idle++;
            int rc = pthread_cond_timedwait(&pool_cond, &pool_lock, &ts);
            n_idle--;
            if (rc == ETIMEDOUT && q_head == NULL)
                break;
            continue;
        }
        job *j = take_job();
        pthread_mutex_unlock(&pool_lock);
        j->result = j->fn(j->arg);
        if (strand__waiter_claim(&j->r.w)) {
            j->r.w.status = 0;
            strand__waiter_wake(&j->r.w); /* j is gone from here on */
        }
        pthread_mutex_lock(&pool_lock);
    }
    n_threads--;
    pthread_mutex_unlock(&pool_lock);
    return NULL;
}

/* Under pool_lock: make sure some thread will take the job just queued. false if there is
 * no thread at all and none can be created. */
static bool pool_dispatch(void)
{
    if (n_idle >= q_len) {
        pthread_cond_signal(&pool_cond);
        return true;
    }
    if (n_threads < POOL_MAX) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256 * 1024);
        int rc = pthread_create(&t, &a, pool_thread, NULL);
        pthread_attr_destroy(&a);
        if (rc == 0) {
            n_threads++;
            return true;
        }
    }
    if (n_idle > 0)
        pthread_cond_signal(&pool_cond);
    return n_threads > 0; /* busy threads will get to it */
}

/* How a caller waits for its job (wait.h). Publishing is queueing the job; nothing but
 * the pool thread that ran it can end the wait (no deadline), hence no unlink. */
static void pool_lock_obj(void *obj)
{
    (void)obj;
    pthread_mutex_lock(&pool_lock);
}

static void pool_unlock_obj(void *obj)
{
    (void)obj;
    pthread_mutex_unlock(&pool_lock);
}

static int pool_publish(void *obj, strand__waiter *w)
{
    job *j = obj;
    w->obj = j;
    if (q_tail)
        q_tail->next = j;
    else
        q_head = j;
    q_tail = j;
    q_len++;
    if (pool_dispatch())
        return 0;
    /* No thread could be made (so none holds or will take a job): take it back. */
    q_head = q_tail = NULL;
    q_len = 0;
    return -EAGAIN;
}

static const strand__wait_ops pool_ops = { pool_lock_obj, pool_unlock_obj, pool_publish, NULL };

int strand_blocking(strand_blocking_fn fn, void *arg, void **result)
{
    if (fn == NULL)
        return -EINVAL;
    if (strand__current() == NULL) {
        void *r = fn(arg);
        if (result)
            *result = r;
        return 0;
    }
    pthread_once(&pool_once, pool_init);
    job j = { .fn = fn, .arg = arg };
    pthread_mutex_lock(&pool_lock);
    /* No unlink: a cancel cannot end this wait (the call may use the strand's memory),
     * so a cancelled strand learns of it once the call has returned. */
    int rc = strand__wait(&j.r, &pool_ops, &j, STRAND_FOREVER, STRAND__WAIT_BLOCKING, 0);
    if (rc < 0)
        return rc;
    if (result)
        *result = j.result;
    struct strand *cur = strand__current();
    if (cur->fate.shield == 0 && atomic_load_explicit(&cur->fate.cancelled, memory_order_relaxed))
        return -ECANCELED;
    return 0;
}

/* ------------------------------------------------------------------ getaddrinfo */

typedef struct gai_job {
    const char *node, *service;
    const struct addrinfo *hints;
    struct addrinfo **res;
    int rc, err;
} gai_job;

static void *gai_run(void *arg)
{
    gai_job *g = arg;
    g->rc = getaddrinfo(g->node, g->service, g->hints, g->res);
    g->err = errno;
    return NULL;
}

/* getaddrinfo's EAI_* codes as negative errno codes (docs/io.md has the table). */
static int gai_to_errno(int rc, int err)
{
    switch (rc) {
    case 0:            return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
                       return -ENOENT;
    case EAI_AGAIN:    return -EAGAIN;
    case EAI_MEMORY:   return -ENOMEM;
    case EAI_SYSTEM:   return err > 0 ? -err : -EIO;
    case EAI_FAIL:     return -EIO;
    default:           return -EINVAL; /* EAI_BADFLAGS, EAI_FAMILY, EAI_SERVICE, EAI_SOCKTYPE */
    }
}

int strand_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    if (res == NULL || (node == NULL && service == NULL))
        return -EINVAL;
    gai_job g = { .node = node, .service = service, .hints = hints, .res = res };
    int rc = strand_blocking(gai_run, &g, NULL);
    if (rc < 0)
        return rc;
    return gai_to_errno(g.rc, g.err);
}
