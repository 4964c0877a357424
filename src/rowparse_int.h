/* rowparse_int.h: internals shared by rowparse.c, rowparse_field.c and the format parsers. */
#ifndef RATES_ROWPARSE_INT_H
#define RATES_ROWPARSE_INT_H

#include "common.h"
#include "rowparse.h"

#include <stddef.h>
#include <stdint.h>

/* The four fields in order; index into rowparse_field_names. */
enum { RP_ORIG = 0, RP_DEST, RP_DAY, RP_PRICE, RP_NFIELDS };
extern const char *const rowparse_field_names[RP_NFIELDS];

/* One field's raw text; points into a parser's buffer, valid until the row is emitted. */
struct rowparse_span {
    const char *s;
    size_t len;
};

/* A format's hooks. feed/finish return 0 or -1 (stop); free releases impl only. */
struct rowparse_ops {
    int (*feed)(struct rowparse *p, const char *data, size_t len);
    int (*finish)(struct rowparse *p);
    void (*free)(struct rowparse *p);
};

struct rowparse {
    enum rowparse_format fmt;
    rowparse_row_fn on_row;
    rowparse_error_fn on_error;
    void *ctx;
    uint64_t rows;
    uint64_t errors;
    int stopped;    /* fatal error or on_row asked to stop: every later call fails */
    int bom_done;   /* the leading UTF-8 BOM (if any) has been dealt with */
    size_t bom_len; /* bytes of a possible BOM held back so far */
    unsigned char bom[3];
    const struct rowparse_ops *ops;
    void *impl; /* the format's state, owned by the format (ops->free) */
};

/* Reports one error (counted) with a printf-formatted message capped at 256 bytes. */
void rowparse_error(struct rowparse *p, uint64_t line, const char *field, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

/* Validates the four fields of a row that starts at line; reports every invalid field,
 * or hands the row to on_row. Returns 0 to go on, -1 when on_row asked to stop. */
int rowparse_emit(struct rowparse *p, uint64_t line, const struct rowparse_span f[RP_NFIELDS]) WUR;

/* Field checks (rowparse_field.c). Each returns 0, or -1 with a message in msg. */
int rowparse_check_code(const char *s, size_t len, const char *name, char *msg, size_t cap) WUR;
int rowparse_check_day(const char *s, size_t len, int32_t *days, char *msg, size_t cap) WUR;
int rowparse_check_price(const char *s, size_t len, int32_t *price, char *msg, size_t cap) WUR;
/* Writes a quoted, printable-ASCII rendering of s (shortened) into out, for messages. */
void rowparse_show(char *out, size_t cap, const char *s, size_t len);

/* Format constructors: set p->ops and p->impl. Return 0, or -1 when out of memory. */
int rowparse_csv_init(struct rowparse *p) WUR;
int rowparse_ndjson_init(struct rowparse *p) WUR;
int rowparse_json_init(struct rowparse *p) WUR;

#endif
