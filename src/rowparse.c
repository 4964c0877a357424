/* rowparse.c: the parsers' common front: Content-Type mapping, BOM, dispatch, row emission. */
#include "rowparse_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const rowparse_field_names[RP_NFIELDS] = { "orig_code", "dest_code", "day", "price" };

static const struct {
    const char *type;
    enum rowparse_format fmt;
} rowparse_types[] = {
    { "text/csv", ROWPARSE_CSV },
    { "application/x-ndjson", ROWPARSE_NDJSON },
    { "application/ndjson", ROWPARSE_NDJSON },
    { "application/jsonlines", ROWPARSE_NDJSON },
    { "application/x-jsonlines", ROWPARSE_NDJSON },
    { "application/json", ROWPARSE_JSON },
};

int rowparse_format_from_content_type(const char *content_type)
{
    if (!content_type)
        return -1;
    const char *s = content_type;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strcspn(s, "; \t");
    for (size_t i = 0; i < ARRAY_LEN(rowparse_types); i++) {
        if (strlen(rowparse_types[i].type) == n && strncasecmp(s, rowparse_types[i].type, n) == 0)
            return (int)rowparse_types[i].fmt;
    }
    return -1;
}

struct rowparse *rowparse_new(enum rowparse_format fmt, rowparse_row_fn on_row,
                              rowparse_error_fn on_error, void *ctx)
{
    struct rowparse *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->fmt = fmt;
    p->on_row = on_row;
    p->on_error = on_error;
    p->ctx = ctx;
    int rc = -1;
    switch (fmt) {
    case ROWPARSE_CSV:
        rc = rowparse_csv_init(p);
        break;
    case ROWPARSE_NDJSON:
        rc = rowparse_ndjson_init(p);
        break;
    case ROWPARSE_JSON:
        rc = rowparse_json_init(p);
        break;
    }
    if (rc != 0)
        goto fail;
    return p;
fail:
    free(p);
    return NULL;
}

/* Holds back up to three leading bytes until they are known to be (dropped) or not to be
 * (replayed) the UTF-8 byte order mark. Advances data and len past what it took. */
static int rowparse_strip_bom(struct rowparse *p, const char **data, size_t *len)
{
    static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };
    while (!p->bom_done && *len > 0) {
        unsigned char c = (unsigned char)**data;
        if (c != bom[p->bom_len]) {
            p->bom_done = 1;
            size_t held = p->bom_len;
            p->bom_len = 0;
            return held ? p->ops->feed(p, (const char *)p->bom, held) : 0;
        }
        p->bom[p->bom_len++] = c;
        (*data)++;
        (*len)--;
        if (p->bom_len == sizeof bom) {
            p->bom_done = 1;
            p->bom_len = 0;
        }
    }
    return 0;
}

int rowparse_feed(struct rowparse *p, const char *data, size_t len)
{
    if (p->stopped)
        return -1;
    if (rowparse_strip_bom(p, &data, &len) != 0 || (len > 0 && p->ops->feed(p, data, len) != 0)) {
        p->stopped = 1;
        return -1;
    }
    return 0;
}

int rowparse_finish(struct rowparse *p)
{
    if (p->stopped)
        return -1;
    p->bom_done = 1;
    if (p->bom_len > 0) {
        size_t held = p->bom_len;
        p->bom_len = 0;
        if (p->ops->feed(p, (const char *)p->bom, held) != 0)
            goto fail;
    }
    if (p->ops->finish(p) != 0)
        goto fail;
    return 0;
fail:
    p->stopped = 1;
    return -1;
}

uint64_t rowparse_rows(const struct rowparse *p)
{
    return p->rows;
}

uint64_t rowparse_errors(const struct rowparse *p)
{
    return p->errors;
}

void rowparse_free(struct rowparse *p)
{
    if (!p)
        return;
    p->ops->free(p);
    free(p);
}

void rowparse_error(struct rowparse *p, uint64_t line, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->errors++;
    if (p->on_error)
        p->on_error(p->ctx, line, field, msg);
}

int rowparse_emit(struct rowparse *p, uint64_t line, const struct rowparse_span f[RP_NFIELDS])
{
    char msg[160];
    int bad = 0;
    for (int i = RP_ORIG; i <= RP_DEST; i++) {
        if (rowparse_check_code(f[i].s, f[i].len, rowparse_field_names[i], msg, sizeof msg) != 0) {
            rowparse_error(p, line, rowparse_field_names[i], "%s", msg);
            bad = 1;
        }
    }
    struct rowparse_row row = { .orig = f[RP_ORIG].s,
                                .orig_len = f[RP_ORIG].len,
                                .dest = f[RP_DEST].s,
                                .dest_len = f[RP_DEST].len,
                                .line = line };
    if (rowparse_check_day(f[RP_DAY].s, f[RP_DAY].len, &row.day, msg, sizeof msg) != 0) {
        rowparse_error(p, line, "day", "%s", msg);
        bad = 1;
    }
    if (rowparse_check_price(f[RP_PRICE].s, f[RP_PRICE].len, &row.price, msg, sizeof msg) != 0) {
        rowparse_error(p, line, "price", "%s", msg);
        bad = 1;
    }
    if (bad)
        return 0;
    p->rows++;
    if (p->on_row && p->on_row(p->ctx, &row) != 0)
        return -1;
    return 0;
}
