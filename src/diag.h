/*
 * diag.h - what the diagnostics files (registry.c, dump.c, watchdog.c, signals.c, stats.c)
 * share among themselves. The runtime's other files use only the hooks in internal.h.
 *
 * Threads: the registry is written by spawning/exiting strands (lock-free); everything else
 * here runs on the one diagnostics thread ("strand-diag", signals.c) or in a caller of
 * strand_dump(), never on a worker's scheduling path.
 */
#ifndef STRAND_DIAG_H
#define STRAND_DIAG_H

#include "internal.h"

/* ---- registry.c */

/* The slot array, published once (release) and never freed or resized, so readers (the
 * dump, the gdb script) may read it at any time. NULL until the first use. */
extern struct strand *_Atomic *_Atomic strand__registry_slots;
extern uint32_t strand__registry_cap;

/* Allocate the slot array for `size` entries if not done yet (0 = registry off). */
void     strand__registry_setup(int size);
uint64_t strand__registry_overflow(void);   /* strands ever left untracked */
uint64_t strand__registry_untracked(void);  /* live strands not tracked now */
/* Call fn for every tracked strand (a racy snapshot: a strand may exit meanwhile). */
void     strand__registry_each(void (*fn)(struct strand *s, void *ctx), void *ctx);

/* ---- dump.c */

/* A copy of `s`'s control block taken without faulting even if the memory went away
 * (process_vm_readv); false if it could not be read. */
bool   strand__snapshot(const struct strand *s, struct strand *copy);
/* One dump line for the snapshot `c` (taken from `orig`), no backtrace, no newline.
 * Returns its length (truncated to cap-1). */
size_t strand__dump_line(const struct strand *c, const struct strand *orig, int64_t now,
                         char *buf, size_t cap);
int64_t strand__mono_ns(void);
/* 1 if kernel thread `tid` of this process sleeps in the kernel (a blocking call), 0 if it
 * runs, -1 if unknown. */
int    strand__thread_blocked(int tid);
/* The dump's line for thread i (strand__thread_info_get), no newline; 0 if it has none. */
size_t strand__thread_line(int i, int64_t now, char *buf, size_t cap);

/* ---- symtab.c: the function containing pc, from the ELF .symtab of the module dladdr()
 * found it in (static functions included): its name and pc's offset in it, or false. */
bool strand__symtab_name(uintptr_t pc, const char *module_path, const void *module_base,
                         const char **name, uintptr_t *offset);

/* ---- watchdog.c (called on the diagnostics thread) */

int  strand__watchdog_period_ms(void);   /* -1 = watchdog off */
void strand__watchdog_tick(int64_t now);
void strand__watchdog_reset(void);

#endif
