/*
 * spawn_outside.c - spawning from outside the runtime: two plain pthreads call
 * strand_spawn_attr (detached) N/2 times each at once, then main waits with
 * strand_wait_all(); ns per spawn over the whole run (spawn + run + exit).
 *
 * Usage: spawn_outside [spawn_outside] [N]. Go twin: bench/go/micro spawn_outside
 * (two goroutines spawning). Detached strands: nobody joins them, so none linger.
 */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <strand.h>

static long g_half;
static atomic_long g_ran;

static void *trivial(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&g_ran, 1, memory_order_relaxed);
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    strand_attr attr = { .detached = 1 };
    for (long i = 0; i < g_half; i++)
        BENCH_CHECK(strand_spawn_attr(trivial, NULL, &attr));
    return NULL;
}

int main(int argc, char **argv)
{
    g_half = bench_arg(argc, argv, 2, 1000000) / 2;
    BENCH_CHECK(strand_init(NULL));
    pthread_t th[2];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, spawner, NULL) != 0)
            return 1;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    BENCH_CHECK(strand_wait_all());
    int64_t el = bench_now_ns() - t0;
    long ran = atomic_load(&g_ran);
    strand_shutdown();
    if (ran != 2 * g_half) {
        fprintf(stderr, "spawn_outside: %ld of %ld strands ran\n", ran, 2 * g_half);
        return 1;
    }
    printf("spawn_outside: %ld strands from 2 threads in %.1f ms\n", ran, el / 1e6);
    bench_result("spawn_outside", (double)el / (double)ran, "ns/spawn");
    return 0;
}
