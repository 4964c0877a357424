/* test_mhdlog.c: the status read from libmicrohttpd's refusal log lines (src/mhdlog.h), pinned
 * to 0.9.75's wording, and the start-up self-check against the library linked here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "mhdlog.h"

static void test_wording_of_0_9_75(void **state)
{
    (void)state;
    /* connection.c's transmit_error_response_len(), with the messages it is given */
    assert_int_equal(mhdlog_refusal_status("Error processing request (HTTP response code is 431 "
                                           "('<html><head><title>Request too big</title>')). "
                                           "Closing connection.\n"),
                     431);
    assert_int_equal(mhdlog_refusal_status("Error processing request (HTTP response code is 414 "
                                           "('x')). Closing connection.\n"),
                     414);
    assert_int_equal(mhdlog_refusal_status("Error processing request (HTTP response code is 400 "
                                           "('')). Closing connection."),
                     400);
}

static void test_other_lines_count_nothing(void **state)
{
    (void)state;
    const char *lines[] = {
        NULL,
        "",
        "Failed to send data in request for `/rates'.\n",
        "Error processing request (HTTP response code is 43 ('x')).",   /* two digits */
        "Error processing request (HTTP response code is 4310 ('x')).", /* four */
        "Error processing request (HTTP response code is 099 ('x')).",  /* out of range */
        "Error processing request (HTTP response code is 600 ('x')).",  /* out of range */
        "Error processing request (HTTP response code is abc ('x')).",
        "Error processing request (HTTP response code is 431).", /* the wording moved */
        "Error processing request (HTTP status 431 ('x')). Closing connection.",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_int_equal(mhdlog_refusal_status(lines[i]), 0);
}

static void test_selfcheck_agrees_with_the_library(void **state)
{
    (void)state;
    char err[256] = "";
    int rc = mhdlog_selfcheck(err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "selfcheck: %s\n", err);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wording_of_0_9_75),
        cmocka_unit_test(test_other_lines_count_nothing),
        cmocka_unit_test(test_selfcheck_agrees_with_the_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
