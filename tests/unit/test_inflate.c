/* test_inflate.c: the streaming gzip decoder of POST /batches (src/inflate.c): output in
 * pieces of at most out_cap, any input split, gzip members in a row, a sink that stops a zip
 * bomb, and precise errors for corrupt, truncated, empty and non-gzip input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "inflate.h"

/* Collects the output; stops once it holds more than limit bytes. */
struct sink {
    char *buf;
    size_t len, cap, limit, max_piece, calls;
};

static int sink_add(void *ctx, const char *out, size_t len)
{
    struct sink *s = ctx;
    s->calls++;
    if (len > s->max_piece)
        s->max_piece = len;
    if (s->len + len <= s->cap)
        memcpy(s->buf + s->len, out, len);
    s->len += len;
    return s->len > s->limit;
}

static void sink_init(struct sink *s, size_t cap, size_t limit)
{
    memset(s, 0, sizeof *s);
    s->buf = malloc(cap);
    assert_non_null(s->buf);
    s->cap = cap;
    s->limit = limit;
}

/* gzip of in (level 6, gzip wrapper) into a malloc'd buffer; *out_len its size. */
static unsigned char *gz(const void *in, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static char *text(size_t n)
{
    char *t = malloc(n);
    assert_non_null(t);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        t[i] = i % 40 == 39 ? '\n' : (char)('A' + (x >> 16) % 26);
    }
    return t;
}

/* The same output whatever the split of the input: whole, 1 byte at a time, 1000 at a time. */
static void test_round_trip_any_split(void **state)
{
    static const size_t steps[] = { 0, 1, 7, 1000 };
    size_t n = 300 * 1000, zlen;
    char *plain = text(n);
    unsigned char *z = gz(plain, n, &zlen);
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        struct inflate_stream *d = inflate_new(4096);
        assert_non_null(d);
        struct sink s;
        sink_init(&s, n, SIZE_MAX);
        size_t step = steps[k] ? steps[k] : zlen;
        for (size_t i = 0; i < zlen; i += step) {
            size_t m = zlen - i < step ? zlen - i : step;
            assert_int_equal(inflate_feed(d, z + i, m, sink_add, &s), INFLATE_OK);
        }
        assert_int_equal(inflate_finish(d), INFLATE_OK);
        assert_int_equal(s.len, n);
        assert_memory_equal(s.buf, plain, n);
        assert_true(s.max_piece <= 4096);
        assert_int_equal(inflate_total_in(d), zlen);
        assert_int_equal(inflate_total_out(d), n);
        assert_string_equal(inflate_error(d), "");
        inflate_free(d);
        free(s.buf);
    }
    free(z);
    free(plain);
}

/* Output still inside zlib when the input is used up (a long match at the end, an output
 * buffer of 1 or 7 bytes) is delivered before the call returns, whole or byte by byte. */
static void test_pending_output_at_end_of_input(void **state)
{
    static const size_t caps[] = { 1, 7, 4096 };
    size_t n = 100000, zlen;
    char *zeros = calloc(1, n);
    assert_non_null(zeros);
    unsigned char *z = gz(zeros, n, &zlen);
    for (size_t k = 0; k < 2 * sizeof caps / sizeof caps[0]; k++) {
        struct inflate_stream *d = inflate_new(caps[k / 2]);
        assert_non_null(d);
        struct sink s;
        sink_init(&s, n, SIZE_MAX);
        size_t step = k % 2 ? 1 : zlen;
        for (size_t i = 0; i < zlen; i += step)
            assert_int_equal(inflate_feed(d, z + i, step, sink_add, &s), INFLATE_OK);
        assert_int_equal(inflate_finish(d), INFLATE_OK);
        assert_int_equal(s.len, n);
        assert_memory_equal(s.buf, zeros, n);
        inflate_free(d);
        free(s.buf);
    }
    free(z);
    free(zeros);
}

/* gzip -c a b > ab: two members are one stream. */
static void test_two_members(void **state)
{
    size_t la, lb;
    unsigned char *a = gz("hello ", 6, &la), *b = gz("world\n", 6, &lb);
    unsigned char *ab = malloc(la + lb);
    assert_non_null(ab);
    memcpy(ab, a, la);
    memcpy(ab + la, b, lb);
    struct inflate_stream *d = inflate_new(3);
    assert_non_null(d);
    struct sink s;
    sink_init(&s, 64, SIZE_MAX);
    assert_int_equal(inflate_feed(d, ab, la + lb, sink_add, &s), INFLATE_OK);
    assert_int_equal(inflate_finish(d), INFLATE_OK);
    assert_int_equal(s.len, 12);
    assert_memory_equal(s.buf, "hello world\n", 12);
    assert_true(s.max_piece <= 3);
    inflate_free(d);
    free(s.buf);
    free(ab);
    free(a);
    free(b);
}

/* 64 MiB of zeros in ~64 KiB of gzip: the sink stops it at its limit, the pieces stay
 * within out_cap, and nothing more is decoded afterwards. */
static void test_bomb_is_stopped_by_the_sink(void **state)
{
    size_t n = 64u << 20, zlen;
    char *zeros = calloc(1, n);
    assert_non_null(zeros);
    unsigned char *z = gz(zeros, n, &zlen);
    free(zeros);
    assert_true(zlen < n / 500);
    struct inflate_stream *d = inflate_new(65536);
    assert_non_null(d);
    struct sink s;
    sink_init(&s, 1 << 20, 1 << 20);
    assert_int_equal(inflate_feed(d, z, zlen, sink_add, &s), INFLATE_STOPPED);
    assert_true(s.len > (1u << 20) && s.len <= (1u << 20) + 65536);
    assert_true(s.max_piece <= 65536);
    size_t calls = s.calls;
    assert_int_equal(inflate_feed(d, z, zlen, sink_add, &s), INFLATE_STOPPED);
    assert_int_equal(s.calls, calls);
    assert_int_equal(inflate_finish(d), INFLATE_STOPPED);
    inflate_free(d);
    free(s.buf);
    free(z);
}

/* Feeds in, then finishes; returns the first error status and the message. */
static int decode_status(const void *in, size_t len, char *msg, size_t cap)
{
    struct inflate_stream *d = inflate_new(1024);
    assert_non_null(d);
    struct sink s;
    sink_init(&s, 1 << 20, SIZE_MAX);
    int rc = inflate_feed(d, in, len, sink_add, &s);
    if (rc == INFLATE_OK)
        rc = inflate_finish(d);
    strncpy(msg, inflate_error(d), cap - 1);
    msg[cap - 1] = '\0';
    inflate_free(d);
    free(s.buf);
    return rc;
}

static void test_errors_are_precise(void **state)
{
    size_t n = 20000, zlen;
    char *plain = text(n), msg[200];
    unsigned char *z = gz(plain, n, &zlen);

    assert_int_equal(decode_status(z, zlen - 10, msg, sizeof msg), INFLATE_CORRUPT);
    assert_non_null(strstr(msg, "truncated"));

    assert_int_equal(decode_status("", 0, msg, sizeof msg), INFLATE_CORRUPT);
    assert_string_equal(msg, "The gzip body is empty");

    assert_int_equal(decode_status(plain, n, msg, sizeof msg), INFLATE_CORRUPT);
    assert_non_null(strstr(msg, "not gzip data"));

    unsigned char *bad = malloc(zlen + 4);
    assert_non_null(bad);
    memcpy(bad, z, zlen);
    bad[zlen - 8] ^= 0xff; /* the CRC-32 of the trailer */
    assert_int_equal(decode_status(bad, zlen, msg, sizeof msg), INFLATE_CORRUPT);
    assert_non_null(strstr(msg, "incorrect data check"));
    assert_non_null(strstr(msg, "at compressed byte"));

    memcpy(bad, z, zlen);
    memcpy(bad + zlen, "junk", 4);
    assert_int_equal(decode_status(bad, zlen + 4, msg, sizeof msg), INFLATE_CORRUPT);
    assert_non_null(strstr(msg, "data after the end"));

    /* The same when the junk comes in a later piece of input. */
    struct inflate_stream *d = inflate_new(1024);
    assert_non_null(d);
    struct sink s;
    sink_init(&s, 1 << 20, SIZE_MAX);
    assert_int_equal(inflate_feed(d, z, zlen, sink_add, &s), INFLATE_OK);
    assert_int_equal(inflate_feed(d, "\0\0", 2, sink_add, &s), INFLATE_CORRUPT);
    assert_non_null(strstr(inflate_error(d), "data after the end"));
    assert_int_equal(inflate_finish(d), INFLATE_CORRUPT);
    inflate_free(d);
    free(s.buf);

    memcpy(bad, z, zlen);
    bad[3] = 0xe0; /* reserved header flags */
    assert_int_equal(decode_status(bad, zlen, msg, sizeof msg), INFLATE_CORRUPT);
    assert_true(msg[0] != '\0');

    free(bad);
    free(z);
    free(plain);
}

static void test_bounds_of_out_cap(void **state)
{
    assert_null(inflate_new(0));
    assert_null(inflate_new((16u << 20) + 1));
    struct inflate_stream *d = inflate_new(1);
    assert_non_null(d);
    inflate_free(d);
    inflate_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_any_split),
        cmocka_unit_test(test_pending_output_at_end_of_input),
        cmocka_unit_test(test_two_members),
        cmocka_unit_test(test_bomb_is_stopped_by_the_sink),
        cmocka_unit_test(test_errors_are_precise),
        cmocka_unit_test(test_bounds_of_out_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
