/* fuzz_driver.h: the libFuzzer entry shared by the three parser targets (each defines
 * FUZZ_FORMAT and includes this). Every input is parsed whole and again in chunks whose
 * sizes come from the input's hash; both runs must give the same rows and errors, and
 * every row delivered must satisfy the parser's contract. */
#ifndef RATES_FUZZ_DRIVER_H
#define RATES_FUZZ_DRIVER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rowparse.h"
#include "utf8.h"

struct fuzz_log {
    uint64_t hash;   /* FNV-1a over everything delivered */
    uint64_t rows;
    uint64_t errors;
    uint64_t last_line;
};

static void fuzz_mix(struct fuzz_log *l, const void *data, size_t len)
{
    const unsigned char *d = data;
    for (size_t i = 0; i < len; i++) {
        l->hash ^= d[i];
        l->hash *= 1099511628211u;
    }
}

static int fuzz_on_row(void *ctx, const struct rowparse_row *r)
{
    struct fuzz_log *l = ctx;
    if (r->orig_len == 0 || r->orig_len > ROWPARSE_MAX_CODE || !utf8_valid(r->orig, r->orig_len) ||
        memchr(r->orig, 0, r->orig_len) || r->dest_len == 0 || r->dest_len > ROWPARSE_MAX_CODE ||
        !utf8_valid(r->dest, r->dest_len) || memchr(r->dest, 0, r->dest_len) || r->price < 1 ||
        r->line < 1 || r->line < l->last_line)
        abort();
    l->last_line = r->line;
    l->rows++;
    fuzz_mix(l, r->orig, r->orig_len);
    fuzz_mix(l, r->dest, r->dest_len);
    fuzz_mix(l, &r->day, sizeof r->day);
    fuzz_mix(l, &r->price, sizeof r->price);
    fuzz_mix(l, &r->line, sizeof r->line);
    return 0;
}

static void fuzz_on_error(void *ctx, uint64_t line, const char *field, const char *message)
{
    struct fuzz_log *l = ctx;
    if (line < 1 || !field || !message || !utf8_valid(message, strlen(message)))
        abort();
    l->errors++;
    fuzz_mix(l, &line, sizeof line);
    fuzz_mix(l, field, strlen(field));
    fuzz_mix(l, message, strlen(message));
}

static int fuzz_run(const uint8_t *data, size_t size, uint64_t seed, struct fuzz_log *l)
{
    memset(l, 0, sizeof *l);
    l->hash = 1469598103934665603u;
    struct rowparse *p = rowparse_new(FUZZ_FORMAT, fuzz_on_row, fuzz_on_error, l);
    if (!p)
        abort();
    int rc = 0;
    size_t at = 0;
    while (rc == 0 && at < size) {
        size_t n = size - at;
        if (seed) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t c = (size_t)(seed >> 33) % 64 + 1;
            n = n < c ? n : c;
        }
        rc = rowparse_feed(p, (const char *)data + at, n);
        at += n;
    }
    if (rc == 0)
        rc = rowparse_finish(p);
    if (rowparse_rows(p) != l->rows || rowparse_errors(p) != l->errors)
        abort();
    rowparse_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_log whole, chunked;
    int rc1 = fuzz_run(data, size, 0, &whole);
    uint64_t seed = size + 1;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = seed * 31 + data[i];
    int rc2 = fuzz_run(data, size, seed | 1, &chunked);
    if (rc1 != rc2 || whole.hash != chunked.hash || whole.rows != chunked.rows ||
        whole.errors != chunked.errors)
        abort(); /* chunking changed the result */
    return 0;
}

#endif
