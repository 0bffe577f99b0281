/*
 * context.c - the C side of the assembly context back ends: building a new context and
 * checking that strand__ctx (context.h) matches the offsets the .S files use.
 *
 * A new context starts in strand__ctx_trampoline (in the .S file) with the entry and its
 * argument in callee-saved registers, a 16-byte aligned stack whose first frame has a null
 * return address and a null frame pointer (so frame-pointer walks and unwinders stop
 * there), and the default floating-point control state (MXCSR 0x1F80, x87 CW 0x037F).
 */
#include "context.h"

#if !defined(STRAND_CTX_UCONTEXT)

void strand__ctx_trampoline(void);

static uintptr_t stack_top(void *lo, size_t size)
{
    return ((uintptr_t)lo + size) & ~(uintptr_t)15;
}

#if defined(__x86_64__)
_Static_assert(offsetof(strand__ctx, rsp) == 0, "CTX_RSP");
_Static_assert(offsetof(strand__ctx, rbx) == 8, "CTX_RBX");
_Static_assert(offsetof(strand__ctx, rbp) == 16, "CTX_RBP");
_Static_assert(offsetof(strand__ctx, r12) == 24, "CTX_R12");
_Static_assert(offsetof(strand__ctx, r13) == 32, "CTX_R13");
_Static_assert(offsetof(strand__ctx, r14) == 40, "CTX_R14");
_Static_assert(offsetof(strand__ctx, r15) == 48, "CTX_R15");
_Static_assert(offsetof(strand__ctx, rip) == 56, "CTX_RIP");
_Static_assert(offsetof(strand__ctx, mxcsr) == 64, "CTX_MXCSR");
_Static_assert(offsetof(strand__ctx, fpucw) == 68, "CTX_FPUCW");

void strand__ctx_prepare(strand__ctx *c, strand__ctx_entry entry, void *arg)
{
    *c = (strand__ctx){0};
    c->rip = (uint64_t)(uintptr_t)strand__ctx_trampoline;
    c->r12 = (uint64_t)(uintptr_t)arg;
    c->r13 = (uint64_t)(uintptr_t)entry;
    c->mxcsr = 0x1F80;
    c->fpucw = 0x037F;
}

void strand__ctx_place(strand__ctx *c, void *lo, size_t size)
{
    uintptr_t top = stack_top(lo, size);
    /* The trampoline is entered by a jump with rsp 16-aligned, so its call of the entry
     * sees the alignment the ABI promises. The slot above holds a null return address. */
    c->rsp = top - 16;
    *(uint64_t *)(top - 8) = 0;
}

uintptr_t strand__ctx_fp(const strand__ctx *c)
{
    return (uintptr_t)c->rbp;
}

uintptr_t strand__ctx_pc(const strand__ctx *c)
{
    return (uintptr_t)c->rip;
}

#elif defined(__aarch64__)
_Static_assert(offsetof(strand__ctx, x19_x28) == 0, "x19");
_Static_assert(offsetof(strand__ctx, fp) == 80, "x29");
_Static_assert(offsetof(strand__ctx, lr) == 88, "x30");
_Static_assert(offsetof(strand__ctx, sp) == 96, "sp");
_Static_assert(offsetof(strand__ctx, d8_d15) == 104, "d8");
_Static_assert(offsetof(strand__ctx, fpcr) == 168, "fpcr");

void strand__ctx_prepare(strand__ctx *c, strand__ctx_entry entry, void *arg)
{
    *c = (strand__ctx){0};
    c->lr = (uint64_t)(uintptr_t)strand__ctx_trampoline;
    c->x19_x28[0] = (uint64_t)(uintptr_t)arg;
    c->x19_x28[1] = (uint64_t)(uintptr_t)entry;
    c->fpcr = 0; /* round to nearest, no flush-to-zero: the AAPCS64 default */
}

void strand__ctx_place(strand__ctx *c, void *lo, size_t size)
{
    c->sp = stack_top(lo, size) - 16;
}

uintptr_t strand__ctx_fp(const strand__ctx *c)
{
    return (uintptr_t)c->fp;
}

uintptr_t strand__ctx_pc(const strand__ctx *c)
{
    return (uintptr_t)c->lr;
}
#endif

#endif /* !STRAND_CTX_UCONTEXT */

void strand__ctx_make(strand__ctx *c, void *lo, size_t size, strand__ctx_entry entry, void *arg)
{
    strand__ctx_prepare(c, entry, arg);
    strand__ctx_place(c, lo, size);
}
