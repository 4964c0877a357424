/* bench_parse.c: parser throughput: a generated body of N rows (default 1,000,000) in each
 * format, fed through rowparse in 64 KB chunks; prints rows/s and MB/s (best of three). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "date.h"
#include "rowparse.h"

#define BENCH_CHUNK 65536

static const char *const bench_ports[] = { "CNSGH", "NLRTM", "DEHAM", "USNYC", "CNYTN",
                                           "GBFXT", "SGSIN", "BEANR" };

/* Builds the body into a malloc'd buffer; returns it and its length in *len. */
static char *bench_body(enum rowparse_format fmt, size_t rows, size_t *len)
{
    size_t cap = rows * 100 + 64, n = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    if (fmt == ROWPARSE_CSV)
        n += (size_t)snprintf(b + n, cap - n, "orig_code,dest_code,day,price\n");
    if (fmt == ROWPARSE_JSON)
        b[n++] = '[';
    for (size_t i = 0; i < rows; i++) {
        const char *o = bench_ports[i % 8], *d = bench_ports[(i / 8 + 1 + i) % 8];
        char day[11];
        date_format(date_from_civil(2016, 1, 1) + (int32_t)(i % 700), day);
        unsigned price = 100 + (unsigned)(i * 7919 % 5000);
        if (fmt == ROWPARSE_CSV)
            n += (size_t)snprintf(b + n, cap - n, "%s,%s,%s,%u\n", o, d, day, price);
        else
            n += (size_t)snprintf(b + n, cap - n,
                                  "%s{\"orig_code\":\"%s\",\"dest_code\":\"%s\",\"day\":\"%s\",\"price\":%u}%s",
                                  fmt == ROWPARSE_JSON && i ? ",\n" : "", o, d, day, price,
                                  fmt == ROWPARSE_NDJSON ? "\n" : "");
    }
    if (fmt == ROWPARSE_JSON)
        b[n++] = ']';
    *len = n;
    return b;
}

static int bench_count(void *ctx, const struct rowparse_row *r)
{
    (*(uint64_t *)ctx) += (uint64_t)r->price;
    return 0;
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    static const char *const names[] = { "csv", "ndjson", "json" };
    for (int f = ROWPARSE_CSV; f <= ROWPARSE_JSON; f++) {
        size_t len = 0;
        char *body = bench_body((enum rowparse_format)f, rows, &len);
        if (!body)
            return 1;
        double best = 1e30;
        uint64_t got = 0, errors = 0;
        for (int run = 0; run < 3; run++) {
            uint64_t sum = 0;
            struct rowparse *p = rowparse_new((enum rowparse_format)f, bench_count, NULL, &sum);
            if (!p)
                return 1;
            uint64_t t0 = clock_mono_ns();
            for (size_t at = 0; at < len; at += BENCH_CHUNK) {
                size_t n = len - at < BENCH_CHUNK ? len - at : BENCH_CHUNK;
                if (rowparse_feed(p, body + at, n) != 0)
                    return 1;
            }
            if (rowparse_finish(p) != 0)
                return 1;
            double s = (double)(clock_mono_ns() - t0) / 1e9;
            best = s < best ? s : best;
            got = rowparse_rows(p);
            errors = rowparse_errors(p);
            rowparse_free(p);
        }
        printf("bench-parse %-6s %8zu rows %7.1f MB  %6.3f s  %10.0f rows/s  %7.1f MB/s%s\n",
               names[f], (size_t)got, (double)len / 1e6, best, (double)got / best,
               (double)len / 1e6 / best, errors || got != rows ? "  (ROWS OR ERRORS WRONG)" : "");
        free(body);
    }
    return 0;
}
