/*
 * switch_raw.c - the bare context switch (src/context.h, internal API): two contexts
 * switching back and forth with strand__ctx_switch, no scheduler; ns per switch.
 *
 * Usage: switch_raw [switch_raw] [N]. C only (Go has no equivalent). Links against the
 * static library, where strand__ctx_* are hidden but visible to a static link.
 */
#include "bench_util.h"

#include "../src/context.h"

#define STACK_SIZE (64 * 1024)

static strand__ctx g_main, g_co;
static long g_n;

static void co_entry(void *arg)
{
    (void)arg;
    for (;;)
        strand__ctx_switch(&g_co, &g_main);
}

int main(int argc, char **argv)
{
    g_n = bench_arg(argc, argv, 2, 20000000);
    void *stack = aligned_alloc(4096, STACK_SIZE);
    if (!stack)
        return 1;
    strand__ctx_make(&g_co, stack, STACK_SIZE, co_entry, NULL);
    for (long i = 0; i < 1000; i++) /* warm caches and the branch predictor */
        strand__ctx_switch(&g_main, &g_co);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < g_n; i++)
        strand__ctx_switch(&g_main, &g_co);
    int64_t el = bench_now_ns() - t0;
    printf("switch_raw: %ld round trips (2 switches each)\n", g_n);
    bench_result("switch_raw", (double)el / (2.0 * (double)g_n), "ns/switch");
    free(stack);
    return 0;
}
