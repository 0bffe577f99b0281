/*
 * supervisor.c - a small supervision tree, printed in plain words as it runs:
 *
 *   root (one_for_one)
 *    +- logger        permanent: collects what the workers report
 *    +- pool          a supervisor itself (one_for_one, at most 3 restarts in 1 s)
 *        +- worker-a  transient: does jobs, fails now and then
 *        +- worker-b  transient
 *
 * A worker that fails is restarted by the pool. Then a "storm" makes the workers fail at
 * every start: the pool gives up after 3 restarts in a second, ends FAILED, and the root
 * restarts the whole pool (that is how a tree escalates). Finally the root is cancelled:
 * every child is stopped, last started first. The random failures follow a fixed seed, so
 * each run tells the same story (timings aside).
 *
 * usage: supervisor [--help]
 */
#include "strand.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MS 1000000LL

static atomic_int storm;        /* > 0: that many more worker starts fail at once */
static atomic_int worker_starts;
static atomic_int pool_starts;
static int64_t t0;
static int64_t logger_id;       /* the current logger's id (for the workers' reports) */

/* One line, stamped with the time since the start (flockfile: lines never interleave). */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    flockfile(stdout);
    printf("%6.3f s  ", (double)(strand_now() - t0) / 1e9);
    vprintf(fmt, ap);
    printf("\n");
    funlockfile(stdout);
    fflush(stdout);
    va_end(ap);
}

/* A tiny deterministic generator per worker. */
static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void *worker(void *arg)
{
    const char *name = arg;
    unsigned seed = (unsigned)(name[7] * 7919 + atomic_fetch_add(&worker_starts, 1));
    say("%s started (strand %lld)", name, (long long)strand_self());
    for (long job = 1;; job++) {
        if (atomic_load(&storm) > 0 && atomic_fetch_sub(&storm, 1) > 0) {
            say("%s fails at once: the storm (code 99)", name);
            strand_fail(99);
        }
        if (strand_sleep((20 + next_rand(&seed) % 60) * MS) == -ECANCELED) {
            say("%s was cancelled during job %ld: cleaning up and ending", name, job);
            return NULL;
        }
        if (next_rand(&seed) % 25 == 0) {
            say("%s fails in job %ld (code %ld)", name, job, 40 + job);
            strand_fail((int)(40 + job));
        }
        strand_send(logger_id, &job, sizeof job);
    }
}

static void *logger(void *arg)
{
    (void)arg;
    logger_id = strand_self();
    long done = 0;
    for (;;) {
        long job;
        if (strand_recv(&job, sizeof job, NULL, STRAND_FOREVER) == -ECANCELED) {
            say("logger stopped after counting %ld jobs", done);
            return NULL;
        }
        done++;
    }
}

static const strand_child_spec pool_children[] = {
    { worker, "worker-a", "worker-a", STRAND_TRANSIENT, 100 * MS },
    { worker, "worker-b", "worker-b", STRAND_TRANSIENT, 100 * MS },
};
static const strand_sup_spec pool_spec = {
    STRAND_ONE_FOR_ONE, 3, 1000 * MS, pool_children, 2,
};

static void *pool(void *arg)
{
    (void)arg;
    int n = atomic_fetch_add(&pool_starts, 1) + 1;
    say("pool supervisor started (strand %lld, start %d)", (long long)strand_self(), n);
    strand_supervisor_run(&pool_spec); /* returns only when stopped; gives up by failing */
    say("pool supervisor stopped");
    return NULL;
}

static const strand_child_spec root_children[] = {
    { logger, NULL, "logger", STRAND_PERMANENT, 100 * MS },
    { pool, NULL, "pool", STRAND_PERMANENT, 1000 * MS },
};
static const strand_sup_spec root_spec = {
    STRAND_ONE_FOR_ONE, 5, 5000 * MS, root_children, 2,
};

static void *run(void *arg)
{
    (void)arg;
    t0 = strand_now();
    printf("A supervision tree: root -> { logger, pool -> { worker-a, worker-b } }.\n"
           "Workers fail now and then; the pool restarts them.\n\n");
    int64_t root = strand_supervise(&root_spec);
    if (root < 0) {
        fprintf(stderr, "supervisor: strand_supervise: %s\n", strerror((int)-root));
        return (void *)1;
    }
    int64_t ref = strand_monitor(root);
    strand_sleep(700 * MS);

    printf("\nA storm: the next 4 jobs fail at once. The pool may restart at most 3 times\n"
           "a second; past that it gives up, and the root restarts the pool.\n\n");
    atomic_store(&storm, 4); /* the next 4 starts fail: one more than the pool allows */
    strand_sleep(300 * MS);

    printf("\nCancelling the root: it stops its children, the last started first.\n\n");
    strand_cancel(root);
    strand_notice n;
    if (strand_recv(&n, sizeof n, NULL, strand_deadline_in(5000 * MS)) == sizeof n)
        say("root supervisor ended (%s)",
            n.reason == STRAND_EXIT_CANCELLED ? "cancelled" : "another reason");
    (void)ref;
    strand_join(root, NULL);
    printf("\nIn all: %d worker starts, %d pool starts; the tree is gone, nothing leaked.\n",
           atomic_load(&worker_starts), atomic_load(&pool_starts));
    return NULL;
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to,
            "usage: %s\n"
            "Runs a small supervision tree for about a second and tells what happens:\n"
            "workers failing and restarted, a supervisor giving up and being restarted by\n"
            "its own supervisor, and the whole tree stopped in order.\n",
            prog);
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, argv[0]);
        return 0;
    }
    if (argc != 1) {
        usage(stderr, argv[0]);
        return 2;
    }
    void *res = NULL;
    int rc = strand_run(run, NULL, &res);
    if (rc != 0) {
        fprintf(stderr, "supervisor: strand_run: %s\n", strerror(-rc));
        return 1;
    }
    return res == NULL ? 0 : 1;
}
