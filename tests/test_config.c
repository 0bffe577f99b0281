/*
 * test_config.c - the STRAND_* environment parser and the settings resolution (config.c):
 * a table of good and bad values per variable, one warning per bad variable naming the
 * variable, the value and the default, strand_config fields over the environment, and the
 * checks on strand_config that strand_init relies on.
 *
 * Invariants: every test restores the environment it changed (unset_all), and warnings are
 * captured by pointing fd 2 at a memfd for the duration of one strand__settings_load.
 */
// ctest-timeout: 60
#include "test_util.h"
#include "test_settings.h"

#include "internal.h"

#include <sys/mman.h>

static const char *const all_vars[] = {
    "STRAND_WORKERS", "STRAND_STACK_SIZE", "STRAND_POOL_CAPACITY", "STRAND_YIELD_INTERVAL",
    "STRAND_REGISTRY_SIZE", "STRAND_WATCHDOG_SECS", "STRAND_SEED",
};

static void unset_all(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ------------------------------------------------------------------ parser table */

typedef struct good_case {
    int         var;
    const char *text;
    uint64_t    want;
} good_case;

static const good_case goods[] = {
    { STRAND__ENV_WORKERS, "1", 1 },
    { STRAND__ENV_WORKERS, "4", 4 },
    { STRAND__ENV_WORKERS, "0007", 7 },
    { STRAND__ENV_WORKERS, "1024", 1024 },
    { STRAND__ENV_STACK_SIZE, "16384", 16384 },
    { STRAND__ENV_STACK_SIZE, "20000", 20000 },
    { STRAND__ENV_STACK_SIZE, "16K", 16384 },
    { STRAND__ENV_STACK_SIZE, "128k", 131072 },
    { STRAND__ENV_STACK_SIZE, "1M", 1048576 },
    { STRAND__ENV_STACK_SIZE, "8m", 8388608 },
    { STRAND__ENV_STACK_SIZE, "1G", 1073741824 },
    { STRAND__ENV_STACK_SIZE, "1073741824", 1073741824 },
    { STRAND__ENV_POOL_CAPACITY, "0", 0 },
    { STRAND__ENV_POOL_CAPACITY, "10000", 10000 },
    { STRAND__ENV_YIELD_INTERVAL, "0", 0 },
    { STRAND__ENV_YIELD_INTERVAL, "100", 100 },
    { STRAND__ENV_YIELD_INTERVAL, "2147483647", 2147483647 },
    { STRAND__ENV_REGISTRY_SIZE, "0", 0 },
    { STRAND__ENV_REGISTRY_SIZE, "4096", 4096 },
    { STRAND__ENV_WATCHDOG_SECS, "0", 0 },
    { STRAND__ENV_WATCHDOG_SECS, "5", 5 },
    { STRAND__ENV_SEED, "0", 0 },
    { STRAND__ENV_SEED, "42", 42 },
    { STRAND__ENV_SEED, "18446744073709551615", UINT64_MAX },
    { STRAND__ENV_SHUTDOWN_MS, "0", 0 },
    { STRAND__ENV_SHUTDOWN_MS, "5000", 5000 },
    { STRAND__ENV_SHUTDOWN_MS, "86400000", 86400000 },
    { STRAND__ENV_REPORT, "0", 0 },
    { STRAND__ENV_REPORT, "1", 1 },
};

typedef struct bad_case {
    int         var;
    const char *text;
    int         want; /* -EINVAL or -ERANGE */
} bad_case;

static const bad_case bads[] = {
    { STRAND__ENV_WORKERS, "", -EINVAL },
    { STRAND__ENV_WORKERS, "-1", -EINVAL },
    { STRAND__ENV_WORKERS, "+4", -EINVAL },
    { STRAND__ENV_WORKERS, "abc", -EINVAL },
    { STRAND__ENV_WORKERS, "4abc", -EINVAL },
    { STRAND__ENV_WORKERS, "1.5", -EINVAL },
    { STRAND__ENV_WORKERS, " 4", -EINVAL },
    { STRAND__ENV_WORKERS, "4 ", -EINVAL },
    { STRAND__ENV_WORKERS, "0x10", -EINVAL },
    { STRAND__ENV_WORKERS, "4K", -EINVAL },   /* suffixes only for STACK_SIZE */
    { STRAND__ENV_WORKERS, "0", -ERANGE },    /* zero workers is meaningless */
    { STRAND__ENV_WORKERS, "1025", -ERANGE },
    { STRAND__ENV_WORKERS, "99999999999999999999999", -ERANGE },
    { STRAND__ENV_STACK_SIZE, "", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "K", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "16KB", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "16K5", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "-16K", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "1.5M", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "16T", -EINVAL },
    { STRAND__ENV_STACK_SIZE, "0", -ERANGE },
    { STRAND__ENV_STACK_SIZE, "4096", -ERANGE },  /* below 16 KiB */
    { STRAND__ENV_STACK_SIZE, "2G", -ERANGE },    /* above 1 GiB */
    { STRAND__ENV_STACK_SIZE, "99999999999999999999G", -ERANGE },
    { STRAND__ENV_STACK_SIZE, "18446744073709551615K", -ERANGE },
    { STRAND__ENV_POOL_CAPACITY, "-5", -EINVAL },
    { STRAND__ENV_POOL_CAPACITY, "ten", -EINVAL },
    { STRAND__ENV_YIELD_INTERVAL, "2147483648", -ERANGE },
    { STRAND__ENV_REGISTRY_SIZE, "99999999", -ERANGE },
    { STRAND__ENV_WATCHDOG_SECS, "1s", -EINVAL },
    { STRAND__ENV_SEED, "18446744073709551616", -ERANGE },
    { STRAND__ENV_SEED, "-1", -EINVAL },
    { STRAND__ENV_SHUTDOWN_MS, "86400001", -ERANGE },
    { STRAND__ENV_SHUTDOWN_MS, "5s", -EINVAL },
    { STRAND__ENV_SHUTDOWN_MS, "-1", -EINVAL },
    { STRAND__ENV_REPORT, "2", -ERANGE },
    { STRAND__ENV_REPORT, "yes", -EINVAL },
};

static void test_parse_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        uint64_t v = 12345;
        int rc = strand__env_parse(goods[i].var, goods[i].text, &v);
        if (rc != 0 || v != goods[i].want)
            fail_msg("%s=\"%s\": rc %d value %llu, want 0 and %llu",
                     strand__env_name(goods[i].var), goods[i].text, rc, (unsigned long long)v,
                     (unsigned long long)goods[i].want);
    }
}

static void test_parse_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        uint64_t v = 777;
        int rc = strand__env_parse(bads[i].var, bads[i].text, &v);
        if (rc != bads[i].want || v != 777)
            fail_msg("%s=\"%s\": rc %d (value %llu), want %d and no value",
                     strand__env_name(bads[i].var), bads[i].text, rc, (unsigned long long)v,
                     bads[i].want);
    }
}

static void test_parse_bad_arguments(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(strand__env_parse(-1, "1", &v), -EINVAL);
    assert_int_equal(strand__env_parse(STRAND__ENV_COUNT, "1", &v), -EINVAL);
    assert_int_equal(strand__env_parse(STRAND__ENV_WORKERS, NULL, &v), -EINVAL);
    assert_int_equal(strand__env_parse(STRAND__ENV_WORKERS, "1", NULL), -EINVAL);
    assert_null(strand__env_name(-1));
    assert_string_equal(strand__env_name(STRAND__ENV_SEED), "STRAND_SEED");
}

/* ------------------------------------------------------------------ resolution */

static void test_defaults(void **state)
{
    (void)state;
    unset_all();
    strand__settings s;
    char err[4096];
    load_capture(&s, NULL, err, sizeof err);
    assert_string_equal(err, "");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(s.workers >= 1 && s.workers <= cpus);
    assert_int_equal(s.stack_size, 128 * 1024);
    assert_int_equal(s.pool_capacity, 10000);
    assert_int_equal(s.yield_interval, 0);
    assert_int_equal(s.registry_size, 1024);
    assert_int_equal(s.watchdog_secs, 0);
    assert_int_equal(s.seed, 0);
    assert_int_equal(s.host_driven, 0);
    assert_int_equal(s.no_signals, 0);
}

static void test_env_values_used(void **state)
{
    (void)state;
    unset_all();
    setenv("STRAND_WORKERS", "3", 1);
    setenv("STRAND_STACK_SIZE", "20000", 1); /* rounded up to whole pages */
    setenv("STRAND_POOL_CAPACITY", "0", 1);
    setenv("STRAND_YIELD_INTERVAL", "64", 1);
    setenv("STRAND_REGISTRY_SIZE", "4096", 1);
    setenv("STRAND_WATCHDOG_SECS", "7", 1);
    setenv("STRAND_SEED", "99", 1);
    strand__settings s;
    char err[4096];
    load_capture(&s, NULL, err, sizeof err);
    unset_all();
    assert_string_equal(err, "");
    long pg = sysconf(_SC_PAGESIZE);
    assert_int_equal(s.workers, 3);
    assert_int_equal(s.stack_size, (20000 + pg - 1) / pg * pg);
    assert_int_equal(s.pool_capacity, 0);
    assert_int_equal(s.yield_interval, 64);
    assert_int_equal(s.registry_size, 4096);
    assert_int_equal(s.watchdog_secs, 7);
    assert_int_equal(s.seed, 99);
}

static void test_suffix_env(void **state)
{
    (void)state;
    unset_all();
    setenv("STRAND_STACK_SIZE", "1M", 1);
    strand__settings s;
    char err[1024];
    load_capture(&s, NULL, err, sizeof err);
    unset_all();
    assert_string_equal(err, "");
    assert_int_equal(s.stack_size, 1024 * 1024);
}

static void test_config_overrides_env(void **state)
{
    (void)state;
    unset_all();
    setenv("STRAND_WORKERS", "3", 1);
    setenv("STRAND_STACK_SIZE", "64K", 1);
    setenv("STRAND_WATCHDOG_SECS", "7", 1);
    setenv("STRAND_SEED", "5", 1);
    strand_config cfg = { .workers = 2, .stack_size = 256 * 1024, .watchdog_secs = 1,
                          .seed = 11, .no_signals = 1, .registry_size = 16,
                          .pool_capacity = 3, .yield_interval = 9 };
    strand__settings s;
    char err[1024];
    load_capture(&s, &cfg, err, sizeof err);
    unset_all();
    assert_string_equal(err, "");
    assert_int_equal(s.workers, 2);
    assert_int_equal(s.stack_size, 256 * 1024);
    assert_int_equal(s.watchdog_secs, 1);
    assert_int_equal(s.seed, 11);
    assert_int_equal(s.no_signals, 1);
    assert_int_equal(s.registry_size, 16);
    assert_int_equal(s.pool_capacity, 3);
    assert_int_equal(s.yield_interval, 9);
}

static void test_config_stack_clamped(void **state)
{
    (void)state;
    unset_all();
    strand_config cfg = { .stack_size = 100 };
    strand__settings s;
    char err[1024];
    load_capture(&s, &cfg, err, sizeof err);
    assert_int_equal(s.stack_size, 16 * 1024);
    cfg.stack_size = 70000;
    load_capture(&s, &cfg, err, sizeof err);
    long pg = sysconf(_SC_PAGESIZE);
    assert_int_equal(s.stack_size, (70000 + pg - 1) / pg * pg);
}

/* One bad variable: one line naming it, its value and the default used; the program goes on
 * with the default. */
static void check_one_warning(const char *var, const char *value, const char *default_text)
{
    unset_all();
    setenv(var, value, 1);
    strand__settings s;
    char err[4096];
    load_capture(&s, NULL, err, sizeof err);
    unset_all();
    if (count_lines(err) != 1 || strstr(err, var) == NULL || strstr(err, value) == NULL ||
        strstr(err, "default") == NULL || strstr(err, default_text) == NULL)
        fail_msg("%s=\"%s\": expected one warning naming it, the value and the default %s; "
                 "got:\n%s", var, value, default_text, err);
}

static void test_bad_values_warn_once(void **state)
{
    (void)state;
    char cpus[16];
    strand__settings d;
    unset_all();
    strand__settings_load(&d, NULL);
    snprintf(cpus, sizeof cpus, "%d", d.workers);

    check_one_warning("STRAND_WORKERS", "abc", cpus);
    check_one_warning("STRAND_WORKERS", "0", cpus);
    check_one_warning("STRAND_WORKERS", "-2", cpus);
    check_one_warning("STRAND_WORKERS", "2000", cpus);
    check_one_warning("STRAND_WORKERS", "1.5", cpus);
    check_one_warning("STRAND_WORKERS", "99999999999999999999999999", cpus);
    check_one_warning("STRAND_STACK_SIZE", "12", "131072");
    check_one_warning("STRAND_STACK_SIZE", "lots", "131072");
    check_one_warning("STRAND_POOL_CAPACITY", "-1", "10000");
    check_one_warning("STRAND_YIELD_INTERVAL", "often", "0");
    check_one_warning("STRAND_REGISTRY_SIZE", "1e3", "1024");
    check_one_warning("STRAND_WATCHDOG_SECS", "5s", "0");
    check_one_warning("STRAND_SEED", "random", "0");

    /* Empty is bad too (set but empty), and the value goes on with the default. */
    unset_all();
    setenv("STRAND_WORKERS", "", 1);
    strand__settings s;
    char err[4096];
    load_capture(&s, NULL, err, sizeof err);
    unset_all();
    assert_int_equal(count_lines(err), 1);
    assert_non_null(strstr(err, "STRAND_WORKERS=\"\""));
    assert_int_equal(s.workers, d.workers);
}

static void test_several_bad_one_line_each(void **state)
{
    (void)state;
    unset_all();
    setenv("STRAND_WORKERS", "x", 1);
    setenv("STRAND_SEED", "y", 1);
    setenv("STRAND_STACK_SIZE", "64K", 1); /* good: no line */
    strand__settings s;
    char err[4096];
    load_capture(&s, NULL, err, sizeof err);
    unset_all();
    assert_int_equal(count_lines(err), 2);
    assert_int_equal(s.stack_size, 64 * 1024);
    assert_int_equal(s.seed, 0);
}

static void test_bad_env_overridden_by_config_still_warns(void **state)
{
    (void)state;
    unset_all();
    setenv("STRAND_WORKERS", "many", 1);
    strand_config cfg = { .workers = 2 };
    strand__settings s;
    char err[4096];
    load_capture(&s, &cfg, err, sizeof err);
    unset_all();
    assert_int_equal(count_lines(err), 1);
    assert_int_equal(s.workers, 2);
}

static void test_config_check(void **state)
{
    (void)state;
    assert_int_equal(strand__config_check(NULL), 0);
    strand_config ok = { 0 };
    assert_int_equal(strand__config_check(&ok), 0);
    strand_config c;
    c = ok; c.workers = -1;             assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.workers = 1025;           assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.yield_interval = -1;      assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.registry_size = -1;       assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.watchdog_secs = -3;       assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.stack_size = (size_t)-1;  assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.host_driven = 2;          assert_int_equal(strand__config_check(&c), -EINVAL);
    c = ok; c.workers = 1024;           assert_int_equal(strand__config_check(&c), 0);
}

/* The public entry point refuses a bad config before starting anything. */
static void test_init_rejects_bad_config(void **state)
{
    (void)state;
    strand_config c = { .workers = -1 };
    assert_int_equal(strand_init(&c), -EINVAL);
    strand_config d = { .watchdog_secs = -1 };
    assert_int_equal(strand_init(&d), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_bad_arguments),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_values_used),
        cmocka_unit_test(test_suffix_env),
        cmocka_unit_test(test_config_overrides_env),
        cmocka_unit_test(test_config_stack_clamped),
        cmocka_unit_test(test_bad_values_warn_once),
        cmocka_unit_test(test_several_bad_one_line_each),
        cmocka_unit_test(test_bad_env_overridden_by_config_still_warns),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_init_rejects_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
