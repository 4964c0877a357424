/* test_statemove.c: the one policy for illegal state moves (src/statemove.c): refused,
 * counted in rates_illegal_state_moves_total{machine}, and fatal in the sanitizer builds.
 * Each case runs in a child process, since the sanitizer builds abort by design. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dynbuf.h"
#include "metrics.h"
#include "statemove.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WANT_ABORT 1
#else
#define WANT_ABORT 0
#endif

/* In the child: refuse one ingest move and one HTTP move, then exit 0 when the metric shows
 * exactly those two, 1 otherwise. */
static int child_refuse_and_count(void)
{
    metrics_init();
    statemove_refuse(MACHINE_INGEST, "DONE", "COPYING", "req-1");
    statemove_refuse(MACHINE_HTTP, "RESPONDED", "ROUTED", "");
    struct dynbuf out;
    dynbuf_init(&out, 1 << 20);
    if (metrics_render(&out) != 0 || dynbuf_add(&out, "", 1) != 0)
        return 1;
    int ok = strstr(out.buf, "rates_illegal_state_moves_total{machine=\"ingest\"} 1\n") &&
             strstr(out.buf, "rates_illegal_state_moves_total{machine=\"http\"} 1\n");
    dynbuf_free(&out);
    return ok ? 0 : 1;
}

static void test_refused_counted_or_fatal(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Keep the child's sanitizer report and log out of the test's output. */
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        _exit(child_refuse_and_count());
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WANT_ABORT) {
        assert_true(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
    } else {
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

static void test_machine_names(void **state)
{
    (void)state;
    assert_string_equal(metrics_machine_name(MACHINE_HTTP), "http");
    assert_string_equal(metrics_machine_name(MACHINE_INGEST), "ingest");
    assert_string_equal(metrics_machine_name(MACHINE_COUNT), "other");
    assert_string_equal(metrics_machine_name(-1), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_counted_or_fatal),
        cmocka_unit_test(test_machine_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
