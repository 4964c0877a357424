/* test_sqlstate.c: the one SQLSTATE map of the write paths (src/sqlstate.h). Both
 * POST /batches and DELETE /batches/{id} answer from it, so a lock timeout is 503 on both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "sqlstate.h"

static const struct {
    const char *state;
    bool broken;
    enum sqlstate_kind kind;
    int status;
} cases[] = {
    { NULL, false, SQLSTATE_UNAVAILABLE, 503 },    /* the send failed on the socket */
    { "42P01", true, SQLSTATE_UNAVAILABLE, 503 },  /* a broken connection wins */
    { "08006", false, SQLSTATE_UNAVAILABLE, 503 }, /* connection failure */
    { "57P01", false, SQLSTATE_UNAVAILABLE, 503 }, /* admin shutdown */
    { "25006", false, SQLSTATE_UNAVAILABLE, 503 }, /* read-only standby */
    { "53300", false, SQLSTATE_UNAVAILABLE, 503 }, /* too many connections */
    { "55P03", false, SQLSTATE_BUSY, 503 },        /* lock timeout */
    { "57014", false, SQLSTATE_BUSY, 503 },        /* statement timeout */
    { "40001", false, SQLSTATE_BUSY, 503 },        /* serialization failure */
    { "40P01", false, SQLSTATE_BUSY, 503 },        /* deadlock */
    { "23505", false, SQLSTATE_UNIQUE, 409 },
    { "23503", false, SQLSTATE_FOREIGN_KEY, 409 },
    { "42501", false, SQLSTATE_OTHER, 500 }, /* insufficient privilege: our bug, not retryable */
    { "22P02", false, SQLSTATE_OTHER, 500 },
    { "57", false, SQLSTATE_OTHER, 500 }, /* truncated: not a prefix match on 57P */
};

static void test_map(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum sqlstate_kind k = sqlstate_classify(cases[i].state, cases[i].broken);
        assert_int_equal(k, cases[i].kind);
        assert_int_equal(sqlstate_status(k), cases[i].status);
    }
}

static void test_messages_say_retry_only_when_retryable(void **state)
{
    (void)state;
    assert_non_null(strstr(sqlstate_message(SQLSTATE_UNAVAILABLE), "retry later"));
    assert_non_null(strstr(sqlstate_message(SQLSTATE_BUSY), "retry later"));
    assert_null(strstr(sqlstate_message(SQLSTATE_OTHER), "retry"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_messages_say_retry_only_when_retryable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
