/* test_load_outcome.c: rates-load's retry and exit-code policy (src/load_outcome.c): every
 * exit code of docs/exit-codes.md, which answers and curl errors are retried and which are
 * final, the retry budget, the back-off and its bounds, and Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "load_outcome.h"

#define IN_PROGRESS "{\"error\": \"busy\", \"code\": \"idempotency_key_in_progress\"}"
#define RETRACTED "{\"error\": \"gone\", \"code\": \"batch_retracted\"}"

/* An HTTP answer with a JSON reply whose code is code (or no reply). */
static struct load_answer http(long status, const char *reply, const char *code)
{
    return (struct load_answer){ .curl = CURLE_OK,
                                 .status = status,
                                 .reply = reply,
                                 .reply_len = reply ? strlen(reply) : 0,
                                 .code = code };
}

static struct load_answer broken(CURLcode c)
{
    return (struct load_answer){ .curl = c };
}

static void test_exit_codes_are_the_documented_numbers(void **state)
{
    (void)state;
    /* docs/exit-codes.md and man/rates-load.1.in: scripts depend on the numbers. */
    assert_int_equal(LOAD_EXIT_OK, 0);
    assert_int_equal(LOAD_EXIT_LOCAL, 1);
    assert_int_equal(LOAD_EXIT_USAGE, 2);
    assert_int_equal(LOAD_EXIT_REJECTED, 3);
    assert_int_equal(LOAD_EXIT_KEY_REUSED, 4);
    assert_int_equal(LOAD_EXIT_AUTH, 5);
    assert_int_equal(LOAD_EXIT_REFUSED, 6);
    assert_int_equal(LOAD_EXIT_GAVE_UP, 7);
    assert_int_equal(LOAD_EXIT_CONFLICT, 8);
}

static void test_status_exit_codes(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *code;
        int want;
    } cases[] = {
        { 200, NULL, 0 },
        { 201, NULL, 0 },
        { 201, "anything", 0 },
        { 401, NULL, 5 },
        { 403, "forbidden", 5 },
        { 422, "idempotency_key_reused", 4 },
        { 422, "invalid_rows", 3 },
        { 422, "empty_batch", 3 },
        { 422, NULL, 3 },
        { 422, "idempotency_key_reused_not", 3 }, /* the whole code, not a prefix */
        { 409, "batch_retracted", 8 },
        { 409, "port_removed", 8 },
        { 409, "idempotency_key_in_progress", 8 }, /* final once the retries are spent */
        { 409, NULL, 8 },
        { 413, NULL, 6 },
        { 415, "unsupported_media_type", 6 },
        { 400, NULL, 6 },
        { 404, NULL, 6 },
        { 429, NULL, 6 },
        { 400, "idempotency_key_reused", 6 }, /* the code counts with a 422 only */
        { 500, NULL, 6 },
        { 501, NULL, 6 },
        { 202, NULL, 6 }, /* only 200 and 201 mean committed */
        { 204, NULL, 6 },
        { 301, NULL, 6 },
        { 0, NULL, 6 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = load_outcome_status_exit(cases[i].status, cases[i].code);
        if (got != cases[i].want)
            fail_msg("HTTP %ld code %s: exit %d, want %d", cases[i].status,
                     cases[i].code ? cases[i].code : "(none)", got, cases[i].want);
    }
}

static void test_retryable_statuses(void **state)
{
    (void)state;
    for (long s = 100; s < 600; s++) {
        bool want = s == 502 || s == 503 || s == 504;
        assert_int_equal(load_outcome_status_retryable(s, NULL, 0), want);
        assert_int_equal(load_outcome_status_retryable(s, "{}", 2), want);
    }
    /* A 409 is retried only while the same key is in flight, as the reply says. */
    assert_true(load_outcome_status_retryable(409, IN_PROGRESS, strlen(IN_PROGRESS)));
    assert_false(load_outcome_status_retryable(409, RETRACTED, strlen(RETRACTED)));
    assert_false(load_outcome_status_retryable(409, "{\"code\": \"port_removed\"}", 24));
    assert_false(load_outcome_status_retryable(409, NULL, 0));
    assert_false(load_outcome_status_retryable(409, "", 0));
    assert_false(load_outcome_status_retryable(409, IN_PROGRESS, 0));
    /* The quoted name, within reply_len: a bare word or a cut-off name is not enough. */
    assert_false(load_outcome_status_retryable(409, "idempotency_key_in_progress", 27));
    assert_false(load_outcome_status_retryable(409, IN_PROGRESS, strlen(IN_PROGRESS) - 3));
    /* Other statuses never look at the reply. */
    assert_false(load_outcome_status_retryable(422, IN_PROGRESS, strlen(IN_PROGRESS)));
    assert_false(load_outcome_status_retryable(500, IN_PROGRESS, strlen(IN_PROGRESS)));
}

static void test_retryable_curl_errors(void **state)
{
    (void)state;
    static const CURLcode final[] = {
        CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT,
        CURLE_READ_ERROR,           CURLE_ABORTED_BY_CALLBACK,
        CURLE_WRITE_ERROR,          CURLE_OUT_OF_MEMORY,
        CURLE_SSL_CERTPROBLEM,      CURLE_PEER_FAILED_VERIFICATION,
    };
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        assert_false(load_outcome_curl_retryable(final[i]));
    /* Broken links, timeouts and refused connections are retried with the same key. */
    static const CURLcode transient[] = {
        CURLE_COULDNT_CONNECT,
        CURLE_COULDNT_RESOLVE_HOST,
        CURLE_COULDNT_RESOLVE_PROXY,
        CURLE_OPERATION_TIMEDOUT,
        CURLE_SEND_ERROR,
        CURLE_RECV_ERROR,
        CURLE_GOT_NOTHING,
        CURLE_PARTIAL_FILE,
        CURLE_SSL_CONNECT_ERROR,
        CURLE_HTTP2,
    };
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        assert_true(load_outcome_curl_retryable(transient[i]));
    /* Exactly those eight are final among all the codes this libcurl knows. */
    int finals = 0;
    for (int c = 1; c < CURL_LAST; c++)
        finals += !load_outcome_curl_retryable((CURLcode)c);
    assert_int_equal(finals, 8);
}

struct decide_case {
    const char *what;
    struct load_answer a;
    int attempt, retries;
    enum load_verdict verdict;
    int exit_code;
};

static void test_decide_table(void **state)
{
    (void)state;
    const struct decide_case cases[] = {
        { "201", http(201, "{\"batch_id\": 1}", NULL), 0, 8, LOAD_VERDICT_COMMITTED, 0 },
        { "200 replay", http(200, "{}", NULL), 3, 8, LOAD_VERDICT_COMMITTED, 0 },
        { "201 on the last attempt", http(201, NULL, NULL), 8, 8, LOAD_VERDICT_COMMITTED, 0 },
        { "read error wins over a 201",
          { .read_error = true, .curl = CURLE_OK, .status = 201 },
          0,
          8,
          LOAD_VERDICT_READ_ERROR,
          1 },
        { "read error wins over the abort it caused",
          { .read_error = true, .curl = CURLE_ABORTED_BY_CALLBACK },
          0,
          8,
          LOAD_VERDICT_READ_ERROR,
          1 },
        { "422 invalid rows", http(422, "{}", "invalid_rows"), 0, 8, LOAD_VERDICT_ANSWERED, 3 },
        { "422 key reused", http(422, "{}", "idempotency_key_reused"), 0, 8, LOAD_VERDICT_ANSWERED,
          4 },
        { "401", http(401, NULL, NULL), 0, 8, LOAD_VERDICT_ANSWERED, 5 },
        { "403", http(403, NULL, NULL), 0, 8, LOAD_VERDICT_ANSWERED, 5 },
        { "413", http(413, NULL, NULL), 0, 8, LOAD_VERDICT_ANSWERED, 6 },
        { "415", http(415, NULL, NULL), 0, 8, LOAD_VERDICT_ANSWERED, 6 },
        { "500 is not retried", http(500, NULL, NULL), 0, 8, LOAD_VERDICT_ANSWERED, 6 },
        { "409 retracted", http(409, RETRACTED, "batch_retracted"), 0, 8, LOAD_VERDICT_ANSWERED,
          8 },
        { "409 port removed", http(409, "{\"code\": \"port_removed\"}", "port_removed"), 0, 8,
          LOAD_VERDICT_ANSWERED, 8 },
        { "409 in flight", http(409, IN_PROGRESS, "idempotency_key_in_progress"), 0, 8,
          LOAD_VERDICT_RETRY, -1 },
        { "409 in flight, last retry", http(409, IN_PROGRESS, NULL), 7, 8, LOAD_VERDICT_RETRY, -1 },
        { "409 in flight, spent", http(409, IN_PROGRESS, NULL), 8, 8, LOAD_VERDICT_GAVE_UP, 7 },
        { "503", http(503, "{\"error\": \"busy\"}", NULL), 0, 8, LOAD_VERDICT_RETRY, -1 },
        { "502", http(502, NULL, NULL), 1, 8, LOAD_VERDICT_RETRY, -1 },
        { "504", http(504, NULL, NULL), 2, 8, LOAD_VERDICT_RETRY, -1 },
        { "503 spent", http(503, NULL, NULL), 8, 8, LOAD_VERDICT_GAVE_UP, 7 },
        { "503 with --retries 0", http(503, NULL, NULL), 0, 0, LOAD_VERDICT_GAVE_UP, 7 },
        { "refused connection", broken(CURLE_COULDNT_CONNECT), 0, 8, LOAD_VERDICT_RETRY, -1 },
        { "broken link after the body", broken(CURLE_RECV_ERROR), 5, 8, LOAD_VERDICT_RETRY, -1 },
        { "empty reply, spent", broken(CURLE_GOT_NOTHING), 2, 2, LOAD_VERDICT_GAVE_UP, 7 },
        { "timeout, spent", broken(CURLE_OPERATION_TIMEDOUT), 100, 100, LOAD_VERDICT_GAVE_UP, 7 },
        { "bad URL: final at once", broken(CURLE_URL_MALFORMAT), 0, 8, LOAD_VERDICT_BROKEN, 6 },
        { "reply too large: final", broken(CURLE_WRITE_ERROR), 0, 8, LOAD_VERDICT_BROKEN, 6 },
        { "certificate: final even when spent", broken(CURLE_PEER_FAILED_VERIFICATION), 8, 8,
          LOAD_VERDICT_BROKEN, 6 },
        { "a curl error's status is ignored",
          { .curl = CURLE_COULDNT_CONNECT, .status = 201 },
          0,
          8,
          LOAD_VERDICT_RETRY,
          -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct decide_case *c = &cases[i];
        struct load_decision d = load_outcome_decide(&c->a, c->attempt, c->retries);
        if (d.verdict != c->verdict || d.exit_code != c->exit_code)
            fail_msg("%s: verdict %d exit %d, want verdict %d exit %d", c->what, d.verdict,
                     d.exit_code, c->verdict, c->exit_code);
    }
}

/* Whatever the answer, a decision to stop carries an exit code in 0..8 other than 2, and a
 * retry none. */
static void test_decide_exit_code_set(void **state)
{
    (void)state;
    bool seen[9] = { false };
    for (long s = 0; s < 600; s++)
        for (int attempt = 0; attempt <= 2; attempt++) {
            const char *replies[] = { NULL, IN_PROGRESS, RETRACTED };
            const char *codes[] = { NULL, "idempotency_key_reused", "batch_retracted" };
            for (size_t k = 0; k < 9; k++) {
                struct load_answer a = http(s, replies[k / 3], codes[k % 3]);
                struct load_decision d = load_outcome_decide(&a, attempt, 2);
                if (d.verdict == LOAD_VERDICT_RETRY) {
                    assert_int_equal(d.exit_code, -1);
                    continue;
                }
                assert_in_range(d.exit_code, 0, 8);
                assert_int_not_equal(d.exit_code, LOAD_EXIT_USAGE);
                seen[d.exit_code] = true;
            }
        }
    struct load_answer r = { .read_error = true };
    seen[load_outcome_decide(&r, 0, 8).exit_code] = true;
    for (int c = 0; c <= 8; c++)
        if (c != LOAD_EXIT_USAGE && !seen[c])
            fail_msg("exit code %d is never decided", c);
}

/* The loop in load_main.c: a transient failure every time gives retries + 1 attempts. */
static void test_retry_budget(void **state)
{
    (void)state;
    struct load_answer a = http(503, NULL, NULL);
    struct load_answer b = broken(CURLE_SEND_ERROR);
    for (int retries = 0; retries <= 100; retries++) {
        for (int which = 0; which < 2; which++) {
            int attempts = 0;
            struct load_decision d;
            do {
                d = load_outcome_decide(which ? &b : &a, attempts, retries);
                attempts++;
            } while (d.verdict == LOAD_VERDICT_RETRY && attempts < 1000);
            assert_int_equal(d.verdict, LOAD_VERDICT_GAVE_UP);
            assert_int_equal(d.exit_code, LOAD_EXIT_GAVE_UP);
            assert_int_equal(attempts, retries + 1);
        }
    }
}

static void test_backoff_doubles_to_the_cap(void **state)
{
    (void)state;
    /* No jitter (no random byte): 0.5 s doubling, capped at 30 s. */
    static const double want[] = { 0.5, 1, 2, 4, 8, 16, 30, 30, 30 };
    for (int a = 0; a < (int)(sizeof want / sizeof want[0]); a++)
        assert_float_equal(load_outcome_backoff_s(a, -1, -1), want[a], 0);
    assert_float_equal(load_outcome_backoff_s(100, -1, -1), 30, 0);
    assert_float_equal(load_outcome_backoff_s(2000000000, -1, -1), 30, 0);
    /* Jitter scales by 0.75 .. 1.25 (after the cap). */
    assert_float_equal(load_outcome_backoff_s(0, -1, 0), 0.375, 1e-12);
    assert_float_equal(load_outcome_backoff_s(0, -1, 255), 0.625, 1e-12);
    assert_float_equal(load_outcome_backoff_s(3, -1, 0), 3.0, 1e-12);
    assert_float_equal(load_outcome_backoff_s(20, -1, 0), 22.5, 1e-12);
    assert_float_equal(load_outcome_backoff_s(20, -1, 255), 37.5, 1e-12);
    assert_float_equal(load_outcome_backoff_s(20, -1, 300), 37.5, 1e-12); /* clamped */
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    for (int j = -1; j <= 255; j++) {
        double prev = 0;
        for (int a = 0; a <= 100; a++) {
            double s = load_outcome_backoff_s(a, -1, j);
            if (!(s >= 0.375 && s <= 37.5))
                fail_msg("attempt %d jitter %d: %g s out of 0.375..37.5", a, j, s);
            if (s < prev)
                fail_msg("attempt %d jitter %d: %g s shorter than before (%g)", a, j, s, prev);
            prev = s;
        }
    }
}

static void test_backoff_honours_retry_after(void **state)
{
    (void)state;
    /* Retry-After replaces the back-off: no doubling, no jitter. */
    assert_float_equal(load_outcome_backoff_s(0, 0, 255), 0, 0);
    assert_float_equal(load_outcome_backoff_s(7, 2.5, 0), 2.5, 0);
    assert_float_equal(load_outcome_backoff_s(0, 300, 128), 300, 0);
}

static void test_retry_after_values(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        double want;
    } cases[] = {
        { "0", 0 },
        { " 5\r\n", 5 },
        { "1.5", 1.5 },
        { "120", 120 },
        { "300", 300 },
        { "301", 300 }, /* capped */
        { "1e9", 300 },
        { "-1", -1 },
        { "-0.5", -1 },
        { "-5", -1 },
        { "", -1 },
        { "\r\n", -1 },
        { "soon", -1 },
        { " Wed, 21 Oct 2015 07:28:00 GMT", -1 }, /* a date: treated as absent */
        { "inf", -1 },
        { "nan", -1 },
        { "                                        7", -1 }, /* only 31 bytes are read */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = load_outcome_retry_after(cases[i].v, strlen(cases[i].v));
        if (got != cases[i].want)
            fail_msg("Retry-After '%s': %g, want %g", cases[i].v, got, cases[i].want);
    }
    /* The value is not NUL-terminated: len bounds it. */
    assert_float_equal(load_outcome_retry_after("12345", 2), 12, 0);
    assert_float_equal(load_outcome_retry_after(NULL, 0), -1, 0);
}

static void test_hint(void **state)
{
    (void)state;
    const char *h = load_outcome_hint(409, "batch_retracted");
    assert_non_null(h);
    assert_non_null(strstr(h, "retracted"));
    assert_non_null(strstr(h, "--new-key"));
    assert_null(load_outcome_hint(409, "port_removed"));
    assert_null(load_outcome_hint(409, NULL));
    assert_null(load_outcome_hint(422, "batch_retracted"));
    assert_null(load_outcome_hint(201, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes_are_the_documented_numbers),
        cmocka_unit_test(test_status_exit_codes),
        cmocka_unit_test(test_retryable_statuses),
        cmocka_unit_test(test_retryable_curl_errors),
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_decide_exit_code_set),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_honours_retry_after),
        cmocka_unit_test(test_retry_after_values),
        cmocka_unit_test(test_hint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
