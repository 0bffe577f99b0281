/*
 * context.h - saved machine contexts and the switch between them.
 *
 * A context is the set of registers the calling convention says survive a call
 * (callee-saved registers, the stack pointer, the resume address and the floating-point
 * control state). strand__ctx_switch(from, to) saves the caller's into `from` and resumes
 * `to`; it returns when something switches back to `from`. The layout of strand__ctx is
 * also written, as offsets, in the assembly file of each CPU; the _Static_asserts in
 * context.c keep the two in step.
 *
 * Back ends, chosen at build time:
 *   src/arch/switch_x86_64.S   System V x86_64: rbx rbp r12-r15 rsp rip, MXCSR, x87 CW
 *   src/arch/switch_aarch64.S  AAPCS64: x19-x28, x29 (fp), x30 (lr), sp, d8-d15, FPCR
 *   src/arch/switch_ucontext.c portable fallback (getcontext/makecontext/swapcontext);
 *                              slow (a signal-mask system call per switch), never the default
 *                              where assembly exists. Selected by STRAND_CTX_UCONTEXT.
 */
#ifndef STRAND_CONTEXT_H
#define STRAND_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#if !defined(STRAND_CTX_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define STRAND_CTX_UCONTEXT 1
#endif

#if defined(STRAND_CTX_UCONTEXT)
#include <ucontext.h>
typedef struct strand__ctx {
    ucontext_t uc;
    void (*entry)(void *); /* kept from prepare to place (makecontext needs the stack) */
    void *arg;
} strand__ctx;
#elif defined(__x86_64__)
typedef struct strand__ctx {
    uint64_t rsp, rbx, rbp, r12, r13, r14, r15, rip; /* offsets 0..56 */
    uint32_t mxcsr;                                  /* 64 */
    uint16_t fpucw;                                  /* 68 */
    uint16_t pad;
} strand__ctx;
#elif defined(__aarch64__)
typedef struct strand__ctx {
    uint64_t x19_x28[10]; /* 0..72 */
    uint64_t fp;          /* 80 */
    uint64_t lr;          /* 88 */
    uint64_t sp;          /* 96 */
    uint64_t d8_d15[8];   /* 104..160 */
    uint64_t fpcr;        /* 168 */
} strand__ctx;
#endif

/* Entry of a new context: runs on the new stack, must never return. */
typedef void (*strand__ctx_entry)(void *arg);

/* Prepare `c` to run entry(arg) on the stack [lo, lo + size) when first switched to. */
void strand__ctx_make(strand__ctx *c, void *lo, size_t size, strand__ctx_entry entry, void *arg);
/* The same in two steps, so that a context can be made before it has a stack (a strand
 * gets its stack when it first runs): prepare records the entry, place gives it the stack
 * [lo, lo + size) (it writes the first frame there). make = prepare + place. */
void strand__ctx_prepare(strand__ctx *c, strand__ctx_entry entry, void *arg);
void strand__ctx_place(strand__ctx *c, void *lo, size_t size);

/* Save the current context into `from`, resume `to`. */
void strand__ctx_switch(strand__ctx *from, strand__ctx *to);

/* The saved frame pointer and resume address of a context that is switched out: where a
 * backtrace of a parked strand starts (0 when the back end cannot tell). */
uintptr_t strand__ctx_fp(const strand__ctx *c);
uintptr_t strand__ctx_pc(const strand__ctx *c);

#endif
