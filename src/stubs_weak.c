/*
 * stubs_weak.c - TEMPORARY weak do-nothing versions of hooks whose real versions live in
 * other files being written in parallel (timers, netpoll, registry, arena, mailbox,
 * diagnostics, settings). A strong definition elsewhere replaces each. This file is
 * deleted once every part exists.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

#define WEAK __attribute__((weak))


WEAK void strand__settings_load(strand__settings *out, const strand_config *cfg)
{
    strand__settings s = {0};
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *e = getenv("STRAND_WORKERS");
    s.workers = e ? atoi(e) : (int)(n > 0 ? n : 1);
    s.stack_size = 128 * 1024;
    s.pool_capacity = 10000;
    s.registry_size = 1024;
    if (cfg) {
        if (cfg->workers > 0) s.workers = cfg->workers;
        if (cfg->stack_size) s.stack_size = cfg->stack_size;
        if (cfg->pool_capacity) s.pool_capacity = cfg->pool_capacity;
        s.yield_interval = cfg->yield_interval;
        s.host_driven = cfg->host_driven;
        s.seed = cfg->seed;
    }
    if (s.workers <= 0) s.workers = 1;
    *out = s;
}

/* timers and netpoll: real versions in timer.c and netpoll_epoll.c (a weak stub here would
 * win over them when linking the static library, which pulls archive members lazily). */
WEAK void strand__registry_add(struct strand *s) { (void)s; }
WEAK void strand__registry_remove(struct strand *s) { (void)s; }
WEAK void strand__arena_release(struct strand *s) { (void)s; }
WEAK void strand__mailbox_drain(struct strand *s) { (void)s; }
WEAK void strand__diag_start(void) {}
WEAK void strand__diag_stop(void) {}
WEAK void strand__diag_thread_start(void) {}
