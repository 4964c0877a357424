/* rowparse.h: streaming parsers for batch bodies (text/csv, application/x-ndjson,
 * application/json array). Bytes go in as they arrive, in chunks of any size (a row, a
 * quoted field, a UTF-8 sequence or a JSON token may span chunks); complete rows come out
 * through a callback. Memory is bounded by the longest row (ROWPARSE_MAX_ROW), never by the
 * body. Each row is checked for shape: exactly the four fields, strict YYYY-MM-DD date that
 * exists, price an integer 1..2147483647 (no sign, fraction, exponent), codes non-empty valid
 * UTF-8 without NUL of at most ROWPARSE_MAX_CODE bytes. Whether a code exists in ports is
 * not the parser's business (the database checks that set-wise). */
#ifndef RATES_ROWPARSE_H
#define RATES_ROWPARSE_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

#define ROWPARSE_MAX_ROW 4096
#define ROWPARSE_MAX_CODE 64

enum rowparse_format { ROWPARSE_CSV = 0, ROWPARSE_NDJSON, ROWPARSE_JSON };

struct rowparse_row {
    const char *orig; /* valid only during the callback; not NUL-terminated */
    size_t orig_len;
    const char *dest;
    size_t dest_len;
    int32_t day; /* days since 1970-01-01 (see date.h) */
    int32_t price;
    uint64_t line; /* 1-based line of the body where the row starts */
};

/* Returns 0 to go on, non-zero to stop parsing (rowparse_feed then returns -1). */
typedef int (*rowparse_row_fn)(void *ctx, const struct rowparse_row *row);
/* One invalid row or syntax error: field is "orig_code", "dest_code", "day", "price", "row"
 * (wrong number of fields or keys) or "body" (syntax). message is human-readable. */
typedef void (*rowparse_error_fn)(void *ctx, uint64_t line, const char *field, const char *message);

struct rowparse;

/* Maps a Content-Type (parameters such as "; charset=utf-8" ignored) to a format; -1 if none. */
int rowparse_format_from_content_type(const char *content_type);
struct rowparse *rowparse_new(enum rowparse_format fmt, rowparse_row_fn on_row,
                              rowparse_error_fn on_error, void *ctx);
/* Feeds the next bytes. Returns 0, or -1 when parsing cannot go on (a syntax error after
 * which rows cannot be delimited, or on_row asked to stop). Invalid rows that can be skipped
 * are reported through on_error and parsing goes on, so that every error is counted. */
int rowparse_feed(struct rowparse *p, const char *data, size_t len) WUR;
/* Ends the body (reports an unterminated quote, array or a last row without newline is a
 * complete row). Returns 0 or -1 like rowparse_feed. */
int rowparse_finish(struct rowparse *p) WUR;
uint64_t rowparse_rows(const struct rowparse *p);   /* valid rows delivered */
uint64_t rowparse_errors(const struct rowparse *p); /* errors reported */
void rowparse_free(struct rowparse *p);

#endif
