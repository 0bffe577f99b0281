/*
 * switch_aarch64.S - context switch for aarch64 (AAPCS64).
 *
 * strand__ctx_switch(from, to) saves the callee-saved registers x19-x28, the frame pointer
 * x29, the link register x30 (where `from` resumes), sp, the low halves of v8-v15 (d8-d15,
 * the only callee-saved part of the vector registers) and the floating-point control
 * register FPCR (rounding mode, flush-to-zero: a strand's own, as MXCSR is on x86_64) into
 * *from and loads them from *to, then returns through the loaded x30. The offsets are the layout of strand__ctx
 * in src/context.h, checked from context.c.
 */
#if defined(__aarch64__) && !defined(STRAND_CTX_UCONTEXT)

    .text
    .globl  strand__ctx_switch
    .hidden strand__ctx_switch
    .type   strand__ctx_switch, %function
    .p2align 4
strand__ctx_switch:
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    mov     x9, sp
    str     x9, [x0, #96]
    stp     d8, d9, [x0, #104]
    stp     d10, d11, [x0, #120]
    stp     d12, d13, [x0, #136]
    stp     d14, d15, [x0, #152]
    mrs     x9, fpcr
    str     x9, [x0, #168]

    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ldr     x9, [x1, #96]
    mov     sp, x9
    ldp     d8, d9, [x1, #104]
    ldp     d10, d11, [x1, #120]
    ldp     d12, d13, [x1, #136]
    ldp     d14, d15, [x1, #152]
    ldr     x9, [x1, #168]
    msr     fpcr, x9
    ret
    .size   strand__ctx_switch, .-strand__ctx_switch

/* First code run by a new context: x19 holds the argument, x20 the entry. */
    .globl  strand__ctx_trampoline
    .hidden strand__ctx_trampoline
    .type   strand__ctx_trampoline, %function
    .p2align 4
strand__ctx_trampoline:
    mov     x0, x19
    blr     x20
    brk     #0
    .size   strand__ctx_trampoline, .-strand__ctx_trampoline

#endif

    .section .note.GNU-stack, "", %progbits
