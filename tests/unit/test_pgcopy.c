/* test_pgcopy.c: the binary COPY reader (src/pgcopy.c): the header, rows, NULLs, the trailer,
 * and every way a message can be short, long or malformed (refused, nothing read past it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pgcopy.h"

static const unsigned char header[19] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n',
                                          0,   0,   0,   0,   0,   0,   0,    0,    0 };

static void test_header(void **state)
{
    (void)state;
    unsigned char h[32];
    memcpy(h, header, sizeof header);
    assert_int_equal(pgcopy_header(h, sizeof header), 19);
    assert_int_equal(pgcopy_header(h, 18), 0); /* short */
    h[18] = 4;                                 /* a 4-byte extension area */
    memset(h + 19, 0xee, 4);
    assert_int_equal(pgcopy_header(h, 23), 23);
    assert_int_equal(pgcopy_header(h, 22), 0); /* its area cut short */
    memcpy(h, header, sizeof header);
    h[13] = 0x01; /* flag bit 16: OIDs in every row */
    assert_int_equal(pgcopy_header(h, sizeof header), 0);
    memcpy(h, header, sizeof header);
    h[0] = 'X';
    assert_int_equal(pgcopy_header(h, sizeof header), 0);
}

static void test_rows(void **state)
{
    (void)state;
    /* 3 fields: "CNSHA", NULL, int4 -2. */
    const unsigned char row[] = { 0,    3,    0,    0, 0, 5, 'C', 'N',  'S',  'H',  'A', 0xff,
                                  0xff, 0xff, 0xff, 0, 0, 0, 4,   0xff, 0xff, 0xff, 0xfe };
    struct pgcopy_field f[3];
    assert_int_equal(pgcopy_row(row, sizeof row, f, 3), PGCOPY_ROW);
    assert_int_equal(f[0].len, 5);
    assert_memory_equal(f[0].data, "CNSHA", 5);
    assert_int_equal(f[1].len, -1);
    int32_t v = 0;
    assert_false(pgcopy_int32(&f[0], &v)); /* not 4 bytes */
    assert_false(pgcopy_int32(&f[1], &v)); /* NULL */
    assert_true(pgcopy_int32(&f[2], &v));
    assert_int_equal(v, -2);
    /* Every shorter prefix is refused; so is a byte too many, and another field count. */
    for (size_t n = 0; n < sizeof row; n++)
        assert_int_equal(pgcopy_row(row, n, f, 3), PGCOPY_BAD);
    unsigned char longer[sizeof row + 1];
    memcpy(longer, row, sizeof row);
    longer[sizeof row] = 0;
    assert_int_equal(pgcopy_row(longer, sizeof longer, f, 3), PGCOPY_BAD);
    assert_int_equal(pgcopy_row(row, sizeof row, f, 2), PGCOPY_BAD);
    /* A length below -1, and one past the message. */
    unsigned char bad[sizeof row];
    memcpy(bad, row, sizeof row);
    bad[5] = 0xfe, bad[2] = bad[3] = bad[4] = 0xff;
    assert_int_equal(pgcopy_row(bad, sizeof bad, f, 3), PGCOPY_BAD);
    memcpy(bad, row, sizeof row);
    bad[5] = 200;
    assert_int_equal(pgcopy_row(bad, sizeof bad, f, 3), PGCOPY_BAD);
}

static void test_trailer(void **state)
{
    (void)state;
    const unsigned char end[] = { 0xff, 0xff, 0 };
    struct pgcopy_field f[1];
    assert_int_equal(pgcopy_row(end, 2, f, 1), PGCOPY_END);
    assert_int_equal(pgcopy_row(end, 3, f, 1), PGCOPY_BAD); /* bytes after it */
    assert_int_equal(pgcopy_row(end, 1, f, 1), PGCOPY_BAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_trailer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
