/* test_reqid.c: request ids are 32 hex digits, unique within a thread and across threads,
 * and never written past a short buffer. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "reqid.h"

#define IDS_PER_THREAD 50000

static int cmp_ids(const void *a, const void *b)
{
    return memcmp(a, b, REQID_LEN + 1);
}

static void test_format(void **state)
{
    (void)state;
    char id[REQID_LEN + 1];
    for (int n = 0; n < 1000; n++) {
        reqid_make(id, sizeof id);
        assert_int_equal(strlen(id), REQID_LEN);
        assert_int_equal(strspn(id, "0123456789abcdef"), REQID_LEN);
    }
}

static void test_short_buffer_untouched(void **state)
{
    (void)state;
    char buf[REQID_LEN + 8];
    memset(buf, 'x', sizeof buf);
    reqid_make(buf, REQID_LEN); /* one byte short: nothing written */
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'x');
}

static void *fill_ids(void *arg)
{
    char(*ids)[REQID_LEN + 1] = arg;
    for (int n = 0; n < IDS_PER_THREAD; n++)
        reqid_make(ids[n], REQID_LEN + 1);
    return NULL;
}

/* Two threads at once plus this one: every id of all three differs. */
static void test_unique_across_threads(void **state)
{
    (void)state;
    char(*ids)[REQID_LEN + 1] = calloc(3 * IDS_PER_THREAD, REQID_LEN + 1);
    assert_non_null(ids);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fill_ids, ids + (size_t)i * IDS_PER_THREAD),
                         0);
    fill_ids(ids + 2 * (size_t)IDS_PER_THREAD);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    qsort(ids, 3 * IDS_PER_THREAD, REQID_LEN + 1, cmp_ids);
    for (size_t i = 1; i < 3 * IDS_PER_THREAD; i++)
        assert_true(memcmp(ids[i - 1], ids[i], REQID_LEN + 1) != 0);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_short_buffer_untouched),
        cmocka_unit_test(test_unique_across_threads),
    };
    return cmocka_run_group_tests_name("reqid", tests, NULL, NULL);
}
