/*
 * fuzz_env.c - libFuzzer target for the STRAND_* environment parser (config.c).
 *
 * Input: first byte picks the variable (mod STRAND__ENV_COUNT), the rest is the value text.
 * Checked on every input, besides the sanitizers' own checks:
 *  - the parser answers 0, -EINVAL or -ERANGE and writes *out only on success;
 *  - an accepted value lies in the variable's range and is the number the text spells:
 *    re-deriving it with strtoull (plus the K/M/G scale for STACK_SIZE) gives the same value;
 *  - text with anything but digits (and one trailing suffix letter for STACK_SIZE) is refused.
 * Then the full settings resolution runs on it through the environment, with stderr muted, to
 * exercise the warning path. A violated property aborts (a finding).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static void check(int ok, const char *what, int var, const char *text)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_env: %s for %s=\"%s\"\n", what, strand__env_name(var), text);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int var = data[0] % STRAND__ENV_COUNT;
    char text[256];
    size_t n = size - 1 < sizeof text - 1 ? size - 1 : sizeof text - 1;
    memcpy(text, data + 1, n);
    text[n] = '\0';

    uint64_t v = 0xdeadbeef;
    int rc = strand__env_parse(var, text, &v);
    check(rc == 0 || rc == -EINVAL || rc == -ERANGE, "unexpected code", var, text);
    if (rc != 0) {
        check(v == 0xdeadbeef, "wrote a value on failure", var, text);
    } else {
        size_t len = strlen(text);
        check(len > 0, "accepted empty text", var, text);
        uint64_t scale = 1;
        char digits[256];
        memcpy(digits, text, len + 1);
        char last = digits[len - 1];
        if (var == STRAND__ENV_STACK_SIZE && (last < '0' || last > '9')) {
            scale = (last == 'k' || last == 'K') ? 1024 : (last == 'm' || last == 'M') ? 1 << 20
                  : (last == 'g' || last == 'G') ? 1 << 30 : 0;
            check(scale != 0, "accepted a bad suffix", var, text);
            digits[--len] = '\0';
        }
        for (size_t i = 0; i < len; i++)
            check(digits[i] >= '0' && digits[i] <= '9', "accepted a non-digit", var, text);
        errno = 0;
        unsigned long long ref = strtoull(digits, NULL, 10);
        check(errno == 0, "accepted an overflowing number", var, text);
        check(ref * scale == v && (scale == 1 || ref <= UINT64_MAX / scale),
              "value differs from the text", var, text);
        if (var == STRAND__ENV_WORKERS)
            check(v >= 1 && v <= 1024, "workers out of range", var, text);
        if (var == STRAND__ENV_STACK_SIZE)
            check(v >= STRAND__STACK_MIN && v <= STRAND__STACK_MAX, "stack out of range", var,
                  text);
    }

    /* The resolution through the real environment (warnings muted). */
    static int devnull = -2;
    if (devnull == -2)
        devnull = open("/dev/null", 0);
    int saved = dup(2);
    dup2(devnull, 2);
    setenv(strand__env_name(var), text, 1);
    strand__settings s;
    strand__settings_load(&s, NULL);
    unsetenv(strand__env_name(var));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    check(s.workers >= 1 && s.workers <= 1024, "resolved workers out of range", var, text);
    check(s.stack_size >= STRAND__STACK_MIN && s.stack_size <= STRAND__STACK_MAX,
          "resolved stack size out of range", var, text);
    check(s.stack_size % (size_t)sysconf(_SC_PAGESIZE) == 0, "stack size not whole pages", var,
          text);
    if (rc == 0 && var == STRAND__ENV_WORKERS)
        check((uint64_t)s.workers == v, "parsed workers not used", var, text);
    return 0;
}
