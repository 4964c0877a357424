/* test_ingest_chunk.c: the body chunk buffer of POST /batches holds every chunk size that
 * libmicrohttpd can hand over (issue 13: a chunk between 64 KiB and 1 MiB overflowed it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ingest_int.h"
#include "rates_limits.h"

/* Stores each size in turn into one batch (the buffer grows and is reused, as in a real
 * upload) and checks the bytes and the capacity; the sanitizer build also sees any overflow. */
static void test_chunk_sizes(void **state)
{
    static const size_t sizes[] = { 0,
                                    1,
                                    4096,
                                    INGEST_CHUNK_MIN - 1,
                                    INGEST_CHUNK_MIN,
                                    INGEST_CHUNK_MIN + 1,
                                    100 * 1024,
                                    HTTP_MEMORY_LIMIT,
                                    512 * 1024,
                                    17,
                                    INGEST_CHUNK_MAX - 1,
                                    INGEST_CHUNK_MAX };
    char *src = malloc(INGEST_CHUNK_MAX);
    assert_non_null(src);
    for (size_t i = 0; i < INGEST_CHUNK_MAX; i++)
        src[i] = (char)(i * 31 + 7);
    struct ingest *b = calloc(1, sizeof *b);
    assert_non_null(b);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i];
        assert_int_equal(ingest_chunk_store(b, src + (i % 3), len > 3 ? len - (i % 3) : len), 0);
        size_t n = len > 3 ? len - (i % 3) : len;
        assert_int_equal(b->chunk_len, n);
        assert_true(b->chunk_cap >= n);
        assert_true(b->chunk_cap <= INGEST_CHUNK_MAX);
        if (n)
            assert_memory_equal(b->chunk, src + (i % 3), n);
    }
    free(b->chunk);
    free(b);
    free(src);
}

/* A chunk larger than the maximum is refused and leaves the buffer as it was. */
static void test_chunk_too_large(void **state)
{
    struct ingest *b = calloc(1, sizeof *b);
    assert_non_null(b);
    char small[8] = "abcdefg";
    assert_int_equal(ingest_chunk_store(b, small, sizeof small), 0);
    char *before = b->chunk;
    size_t cap = b->chunk_cap;
    assert_int_equal(ingest_chunk_store(b, small, (size_t)INGEST_CHUNK_MAX + 1), -1);
    assert_ptr_equal(b->chunk, before);
    assert_int_equal(b->chunk_cap, cap);
    assert_int_equal(b->chunk_len, sizeof small);
    free(b->chunk);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_sizes),
        cmocka_unit_test(test_chunk_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
