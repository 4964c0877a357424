/* test_query.c: query-string lookup and form decoding, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "query.h"

struct query_case {
    const char *query;
    const char *key;
    int rc;
    const char *value;
    size_t len;
};

static const struct query_case cases[] = {
    { "a=1&b=2", "a", QUERY_FOUND, "1", 1 },
    { "a=1&b=2", "b", QUERY_FOUND, "2", 1 },
    { "a=1&b=2", "c", QUERY_ABSENT, NULL, 0 },
    { "a=1&a=2", "a", QUERY_FOUND, "1", 1 },
    { "a", "a", QUERY_FOUND, "", 0 },
    { "a=", "a", QUERY_FOUND, "", 0 },
    { "=x&a=y", "a", QUERY_FOUND, "y", 1 },
    { "a=%43NGGZ", "a", QUERY_FOUND, "CNGGZ", 5 },
    { "a=CNGGZ+", "a", QUERY_FOUND, "CNGGZ ", 6 },
    { "a=%20x", "a", QUERY_FOUND, " x", 2 },
    { "a=%25", "a", QUERY_FOUND, "%", 1 },
    { "a=%zz", "a", QUERY_FOUND, "%zz", 3 },
    { "a=%4", "a", QUERY_FOUND, "%4", 2 },
    { "a=%", "a", QUERY_FOUND, "%", 1 },
    { "a=CNG%00GZ", "a", QUERY_FOUND, "CNG\0GZ", 6 },
    { "a=%FF", "a", QUERY_FOUND, "\xff", 1 },
    { "%61=1", "a", QUERY_FOUND, "1", 1 },
    { "a=1#frag&b=2", "b", QUERY_ABSENT, NULL, 0 },
    { "", "a", QUERY_ABSENT, NULL, 0 },
    { "aa=1&a=2", "a", QUERY_FOUND, "2", 1 },
    { "a=x=y", "a", QUERY_FOUND, "x=y", 3 },
    { "&&a=1&&", "a", QUERY_FOUND, "1", 1 },
};

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct query_case *c = &cases[i];
        char out[64];
        size_t len = 999;
        int rc = query_get(c->query, c->key, out, sizeof out, &len);
        if (rc != c->rc)
            fail_msg("case %zu (%s / %s): rc %d, want %d", i, c->query, c->key, rc, c->rc);
        if (rc == QUERY_FOUND) {
            assert_int_equal(len, c->len);
            assert_memory_equal(out, c->value, c->len);
            assert_int_equal(out[len], '\0');
        }
    }
}

static void test_too_long(void **state)
{
    char out[4];
    size_t len;
    assert_int_equal(query_get("a=12345", "a", out, sizeof out, &len), QUERY_TOO_LONG);
    assert_int_equal(query_get("a=123", "a", out, sizeof out, &len), QUERY_FOUND);
    assert_int_equal(query_get(NULL, "a", out, sizeof out, &len), QUERY_ABSENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests_name("query", tests, NULL, NULL);
}
