/*
 * switch_x86_64.S - context switch for x86_64 (System V ABI).
 *
 * strand__ctx_switch(from, to) saves what the ABI says a callee must preserve (rbx, rbp,
 * r12-r15, the stack pointer, the return address, the MXCSR and the x87 control word) into
 * *from and loads the same from *to. Caller-saved registers need no saving: the caller of
 * this function already assumes them clobbered. The offsets below are the layout of
 * strand__ctx in src/context.h; context.c checks them with _Static_assert.
 */
#if defined(__x86_64__) && !defined(STRAND_CTX_UCONTEXT)

#define CTX_RSP   0
#define CTX_RBX   8
#define CTX_RBP   16
#define CTX_R12   24
#define CTX_R13   32
#define CTX_R14   40
#define CTX_R15   48
#define CTX_RIP   56
#define CTX_MXCSR 64
#define CTX_FPUCW 68

    .text
    .globl  strand__ctx_switch
    .hidden strand__ctx_switch
    .type   strand__ctx_switch, @function
    .p2align 4
strand__ctx_switch:
    .cfi_startproc
    movq    (%rsp), %rax            /* where to resume `from` */
    leaq    8(%rsp), %rdx           /* its stack pointer once "returned" */
    movq    %rdx, CTX_RSP(%rdi)
    movq    %rbx, CTX_RBX(%rdi)
    movq    %rbp, CTX_RBP(%rdi)
    movq    %r12, CTX_R12(%rdi)
    movq    %r13, CTX_R13(%rdi)
    movq    %r14, CTX_R14(%rdi)
    movq    %r15, CTX_R15(%rdi)
    movq    %rax, CTX_RIP(%rdi)
    stmxcsr CTX_MXCSR(%rdi)
    fnstcw  CTX_FPUCW(%rdi)

    movq    CTX_RBX(%rsi), %rbx
    movq    CTX_RBP(%rsi), %rbp
    movq    CTX_R12(%rsi), %r12
    movq    CTX_R13(%rsi), %r13
    movq    CTX_R14(%rsi), %r14
    movq    CTX_R15(%rsi), %r15
    ldmxcsr CTX_MXCSR(%rsi)
    fldcw   CTX_FPUCW(%rsi)
    movq    CTX_RSP(%rsi), %rsp
    jmpq    *CTX_RIP(%rsi)
    .cfi_endproc
    .size   strand__ctx_switch, .-strand__ctx_switch

/* First code run by a new context: r12 holds the argument, r13 the entry (set by
 * strand__ctx_make). The entry never returns; ud2 traps if it does. */
    .globl  strand__ctx_trampoline
    .hidden strand__ctx_trampoline
    .type   strand__ctx_trampoline, @function
    .p2align 4
strand__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip              /* outermost frame: unwinders stop here */
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   strand__ctx_trampoline, .-strand__ctx_trampoline

#endif

    .section .note.GNU-stack, "", @progbits
