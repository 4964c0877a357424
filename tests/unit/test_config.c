/* test_config.c: the four configuration layers, bounds, secrets and their sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "app.h"
#include "config.h"

static const char *fake_env_names[16];
static const char *fake_env_values[16];
static int fake_env_n;

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < fake_env_n; i++)
        if (strcmp(fake_env_names[i], name) == 0)
            return fake_env_values[i];
    return NULL;
}

static void env_set(const char *n, const char *v)
{
    fake_env_names[fake_env_n] = n;
    fake_env_values[fake_env_n] = v;
    fake_env_n++;
}

static int reset(void **state)
{
    fake_env_n = 0;
    return 0;
}

static char *write_tmp(const char *content)
{
    static char path[64];
    strcpy(path, "/tmp/rates-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_OK);
    assert_string_equal(c.listen, "0.0.0.0:3000");
    assert_int_equal(c.max_span_days, 36600);
    assert_int_equal(c.pool_size, 8);
    assert_false(c.ingest_open);
    config_free(&c);
}

/* Issue 13: the lanes must all be able to hold a connection. */
static void test_pool_too_small_for_the_lanes(void **state)
{
    env_set("RATES_POOL_SIZE", "7"); /* default workers 4 + 4 batches need 8 */
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, "pool_size 7"));
    assert_non_null(strstr(err, "need 8"));
    config_free(&c);
    fake_env_n = 0;
    env_set("RATES_POOL_SIZE", "8");
    assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_OK);
    config_free(&c);
}

static void test_layers(void **state)
{
    char *file = write_tmp("# comment\n\npool_size = 3\nlisten = 127.0.0.1:1\nworkers=5\n");
    /* pool_size must hold workers + max_concurrent_batches (4): 12 >= 5 + 4 */
    char filearg[80];
    snprintf(filearg, sizeof filearg, "--config=%s", file);
    env_set("RATES_POOL_SIZE", "12");
    env_set("RATES_LISTEN", "127.0.0.1:2");
    const char *argv[] = { filearg, "--listen", "127.0.0.1:9", "--ingest-open" };
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 4, argv, fake_getenv, err, sizeof err), CONFIG_OK);
    assert_string_equal(c.listen, "127.0.0.1:9"); /* flag > env > file */
    assert_int_equal(c.pool_size, 12);            /* env > file */
    assert_int_equal(c.workers, 5);               /* file > default */
    assert_true(c.ingest_open);
    config_free(&c);
    unlink(file);
}

static void test_config_env_file(void **state)
{
    char *file = write_tmp("max_span_days = 10\n");
    env_set("RATES_CONFIG", file);
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_OK);
    assert_int_equal(c.max_span_days, 10);
    config_free(&c);
    unlink(file);
}

static void test_errors_name_source(void **state)
{
    struct {
        const char *env, *val, *want;
    } cases[] = {
        { "RATES_POOL_SIZE", "0", "RATES_POOL_SIZE" },
        { "RATES_POOL_SIZE", "abc", "pool_size" },
        { "RATES_POOL_SIZE", "5x", "RATES_POOL_SIZE" },
        { "RATES_LOG_LEVEL", "loud", "RATES_LOG_LEVEL" },
        { "RATES_LISTEN", "nohostport", "RATES_LISTEN" },
        { "RATES_INGEST_OPEN", "maybe", "RATES_INGEST_OPEN" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_env_n = 0;
        env_set(cases[i].env, cases[i].val);
        struct config c;
        char err[512] = "";
        assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_ERROR);
        if (!strstr(err, cases[i].want))
            fail_msg("error '%s' does not name '%s'", err, cases[i].want);
        config_free(&c);
    }
}

static void test_bad_file_line(void **state)
{
    char *file = write_tmp("pool_size = 2\nnot a setting\n");
    const char *argv[] = { "--config", file };
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 2, argv, fake_getenv, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, ":2"));
    config_free(&c);
    unlink(file);
}

static void test_secret_file_forms(void **state)
{
    char *file = write_tmp("postgresql://u@h/db\n");
    char path[64];
    strcpy(path, file);
    env_set("RATES_DATABASE_URL_FILE", path);
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_OK);
    assert_string_equal(c.database_url, "postgresql://u@h/db");
    config_free(&c);
    env_set("RATES_DATABASE_URL", "postgresql://x");
    assert_int_equal(config_load(&c, 0, NULL, fake_getenv, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, "RATES_DATABASE_URL_FILE"));
    config_free(&c);
    unlink(path);
}

static void test_secret_not_a_flag(void **state)
{
    const char *argv[] = { "--database-url=postgresql://x" };
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 1, argv, fake_getenv, err, sizeof err), CONFIG_ERROR);
    assert_non_null(strstr(err, "secret"));
    config_free(&c);
}

static void test_help_and_unknown(void **state)
{
    const char *help[] = { "--help" };
    const char *unknown[] = { "--nope=1" };
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, 1, help, fake_getenv, err, sizeof err), CONFIG_HELP);
    config_free(&c);
    assert_int_equal(config_load(&c, 1, unknown, fake_getenv, err, sizeof err), CONFIG_ERROR);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, reset),
        cmocka_unit_test_setup(test_layers, reset),
        cmocka_unit_test_setup(test_pool_too_small_for_the_lanes, reset),
        cmocka_unit_test_setup(test_config_env_file, reset),
        cmocka_unit_test_setup(test_errors_name_source, reset),
        cmocka_unit_test_setup(test_bad_file_line, reset),
        cmocka_unit_test_setup(test_secret_file_forms, reset),
        cmocka_unit_test_setup(test_secret_not_a_flag, reset),
        cmocka_unit_test_setup(test_help_and_unknown, reset),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
