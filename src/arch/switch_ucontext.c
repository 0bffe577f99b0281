/*
 * switch_ucontext.c - the portable context back end (getcontext/makecontext/swapcontext).
 *
 * Used on CPUs without an assembly back end, or when STRAND_CTX_UCONTEXT is forced to test
 * this path. swapcontext saves and restores the signal mask with a system call on every
 * switch, so this is an order of magnitude slower than the assembly; it is a fallback, never
 * the fast path. makecontext passes only int arguments, so the entry and its argument travel
 * as two halves each.
 */
#include "context.h"

#if defined(STRAND_CTX_UCONTEXT)

#include <stdlib.h>

static void *join_halves(unsigned hi, unsigned lo)
{
    return (void *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
}

static void trampoline(unsigned ehi, unsigned elo, unsigned ahi, unsigned alo)
{
    strand__ctx_entry entry;
    void *fn = join_halves(ehi, elo);
    *(void **)&entry = fn;
    entry(join_halves(ahi, alo));
    abort(); /* an entry never returns */
}

void strand__ctx_prepare(strand__ctx *c, strand__ctx_entry entry, void *arg)
{
    c->entry = entry;
    c->arg = arg;
}

void strand__ctx_place(strand__ctx *c, void *lo, size_t size)
{
    strand__ctx_entry entry = c->entry;
    uintptr_t e = (uintptr_t)*(void **)&entry, a = (uintptr_t)c->arg;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, (void (*)(void))trampoline, 4, (unsigned)(e >> 32), (unsigned)e,
                (unsigned)(a >> 32), (unsigned)a);
}

void strand__ctx_switch(strand__ctx *from, strand__ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}

uintptr_t strand__ctx_fp(const strand__ctx *c)
{
    (void)c;
    return 0;
}

uintptr_t strand__ctx_pc(const strand__ctx *c)
{
    (void)c;
    return 0;
}

#endif
