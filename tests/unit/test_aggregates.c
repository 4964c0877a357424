/* test_aggregates.c: the `ratesd aggregates` sub-command words and their help lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aggregates.h"

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(aggregates_parse("check"), AGGREGATES_CHECK);
    assert_int_equal(aggregates_parse("rebuild"), AGGREGATES_REBUILD);
    const char *bad[] = { NULL, "", "Check", "checks", "rebuild ", "-h", "--help", "serve" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(aggregates_parse(bad[i]), AGGREGATES_NONE);
}

static void test_usage_names_both(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    aggregates_usage(f);
    fclose(f);
    assert_non_null(strstr(buf, "ratesd aggregates check"));
    assert_non_null(strstr(buf, "ratesd aggregates rebuild"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_usage_names_both),
    };
    return cmocka_run_group_tests_name("aggregates", tests, NULL, NULL);
}
