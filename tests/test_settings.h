/*
 * test_settings.h - for tests of the STRAND_* settings: load them with stderr captured.
 *
 *   load_capture(out, cfg, err, cap)   strand__settings_load(out, cfg) with what it printed on
 *                                      stderr (its warnings) copied into err (cap bytes, ends
 *                                      with a NUL).
 *
 * Invariants: stderr is restored before it returns; static inline, for tests only (it needs
 * the runtime's internal.h).
 */
#ifndef STRAND_TEST_SETTINGS_H
#define STRAND_TEST_SETTINGS_H

#include "internal.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static inline void load_capture(strand__settings *out, const strand_config *cfg, char *err,
                                size_t cap)
{
    fflush(stderr);
    int mfd = memfd_create("stderr", 0);
    assert_true(mfd >= 0);
    int saved = dup(2);
    dup2(mfd, 2);
    strand__settings_load(out, cfg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(mfd, err, cap - 1, 0);
    close(mfd);
    err[n > 0 ? n : 0] = '\0';
}

#endif
