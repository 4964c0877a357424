/* test_retry.c: the schedule of tries after a dead database connection (src/retry.c), which
 * reads and the readiness monitor share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "retry.h"

/* The tries of an outage that never ends, each taking `cost` ms: when each begins. */
static int schedule(long cost, long *starts, int cap)
{
    long t = 0;
    int n = 0;
    for (int tries = 0; n < cap; tries++) {
        long pause = retry_pause_ms(tries, t);
        if (pause < 0)
            break;
        t += pause;
        starts[n++] = t;
        t += cost;
    }
    return n;
}

static void test_at_once_then_doubling_within_the_window(void **state)
{
    (void)state;
    long starts[16];
    int n = schedule(0, starts, 16);
    assert_int_equal(n, 4);
    assert_int_equal(starts[0], 0);
    assert_int_equal(starts[1], 100);
    assert_int_equal(starts[2], 300);
    assert_int_equal(starts[3], 700);
}

static void test_no_try_begins_past_the_window(void **state)
{
    (void)state;
    long starts[16];
    /* A connect that fails after 150 ms: 0, 250, 600; the next would begin at 1150. */
    int n = schedule(150, starts, 16);
    assert_int_equal(n, 3);
    assert_int_equal(starts[2], 600);
    for (long cost = 0; cost <= 3000; cost += 7) {
        n = schedule(cost, starts, 16);
        assert_true(n >= 1);
        assert_true(starts[n - 1] <= RETRY_WINDOW_MS);
    }
    /* A connect that hangs past the window (the connect timeout): one try, no more. */
    assert_int_equal(schedule(2000, starts, 16), 1);
}

static void test_edges(void **state)
{
    (void)state;
    assert_int_equal(retry_pause_ms(0, RETRY_WINDOW_MS), 0);
    assert_int_equal(retry_pause_ms(0, RETRY_WINDOW_MS + 1), -1);
    assert_int_equal(retry_pause_ms(1, RETRY_WINDOW_MS - 100), 100);
    assert_int_equal(retry_pause_ms(1, RETRY_WINDOW_MS - 99), -1);
    assert_int_equal(retry_pause_ms(-1, 0), -1);
    assert_int_equal(retry_pause_ms(1, -5), -1);
    assert_int_equal(retry_pause_ms(64, 0), -1);
    assert_int_equal(retry_pause_ms(1 << 30, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_once_then_doubling_within_the_window),
        cmocka_unit_test(test_no_try_begins_past_the_window),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
