/* rowparse_csv.c: streaming RFC 4180 CSV (text/csv) into rows of four fields.
 *
 * Rules: fields separated by ',', records by LF or CRLF; a field may be quoted with '"',
 * with "" for a quote inside and commas, CR and LF allowed inside. The first record is
 * skipped when it is exactly the header orig_code,dest_code,day,price. Empty lines (no byte
 * before the line end, outside quotes) are ignored anywhere, so a trailing blank line is
 * fine; a line of spaces is a record with one field (an error). A last record without a line
 * end is a record. Lines are physical lines of the body (LF count + 1); a record's line is
 * where it starts. Syntax errors (a quote inside an unquoted field, a character after a
 * closing quote, a CR not followed by LF) invalidate only their record: parsing goes on at
 * the record's end. A record longer than ROWPARSE_MAX_ROW bytes is an error; its bytes are
 * not kept, so memory stays bounded, and parsing goes on after it. */
#include "rowparse_int.h"

#include <stdlib.h>
#include <string.h>

enum csv_state {
    CSV_FIELD_START, /* at the start of a field, outside quotes */
    CSV_UNQUOTED,    /* inside an unquoted field */
    CSV_QUOTED,      /* inside a quoted field */
    CSV_QUOTE_SEEN,  /* a '"' inside a quoted field: closes it, or the first of "" */
};

struct csv {
    enum csv_state st;
    uint64_t line;      /* current physical line, 1-based */
    uint64_t row_line;  /* line where the current record started */
    int in_row;         /* a byte of the current record has been seen */
    int pending_cr;     /* a CR outside quotes, waiting to see whether LF follows */
    int first_done;     /* the first record (maybe a header) has been handled */
    int overflow;       /* the record passed ROWPARSE_MAX_ROW bytes */
    const char *syntax; /* first syntax error of the record (static text) or NULL */
    size_t row_bytes;   /* raw bytes of the record so far */
    size_t nfields;     /* fields completed (may pass RP_NFIELDS) */
    size_t fstart[RP_NFIELDS];
    size_t flen[RP_NFIELDS];
    size_t cur_start; /* start of the current field in buf */
    size_t blen;      /* unescaped bytes in buf */
    char buf[ROWPARSE_MAX_ROW];
};

static void csv_add(struct csv *c, char ch)
{
    if (c->blen < sizeof c->buf)
        c->buf[c->blen++] = ch;
}

static void csv_syntax(struct csv *c, const char *msg)
{
    if (!c->syntax)
        c->syntax = msg;
}

static void csv_end_field(struct csv *c)
{
    if (c->nfields < RP_NFIELDS) {
        c->fstart[c->nfields] = c->cur_start;
        c->flen[c->nfields] = c->blen - c->cur_start;
    }
    c->nfields++;
    c->cur_start = c->blen;
    c->st = CSV_FIELD_START;
}

static int csv_is_header(const struct csv *c)
{
    for (int i = 0; i < RP_NFIELDS; i++) {
        const char *name = rowparse_field_names[i];
        if (c->flen[i] != strlen(name) || memcmp(c->buf + c->fstart[i], name, c->flen[i]) != 0)
            return 0;
    }
    return 1;
}

/* Ends the current record (if any byte of it was seen): reports it or emits it. */
static int csv_end_row(struct rowparse *p, struct csv *c)
{
    int rc = 0;
    if (!c->in_row)
        return 0;
    csv_end_field(c);
    int first = !c->first_done;
    c->first_done = 1;
    if (c->overflow) {
        rowparse_error(p, c->row_line, "row", "row is longer than %d bytes", ROWPARSE_MAX_ROW);
    } else if (c->syntax) {
        rowparse_error(p, c->row_line, "body", "%s", c->syntax);
    } else if (c->nfields != RP_NFIELDS) {
        rowparse_error(p, c->row_line, "row",
                       "expected 4 fields (orig_code,dest_code,day,price), found %zu", c->nfields);
    } else if (!(first && csv_is_header(c))) {
        struct rowparse_span f[RP_NFIELDS];
        for (int i = 0; i < RP_NFIELDS; i++) {
            f[i].s = c->buf + c->fstart[i];
            f[i].len = c->flen[i];
        }
        rc = rowparse_emit(p, c->row_line, f);
    }
    c->in_row = 0;
    c->overflow = 0;
    c->syntax = NULL;
    c->row_bytes = 0;
    c->nfields = 0;
    c->cur_start = 0;
    c->blen = 0;
    c->st = CSV_FIELD_START;
    return rc;
}

/* One byte outside quotes (states FIELD_START, UNQUOTED, QUOTE_SEEN). */
static int csv_outside(struct rowparse *p, struct csv *c, char ch)
{
    switch (ch) {
    case '\n':
        if (csv_end_row(p, c) != 0)
            return -1;
        c->line++;
        return 0;
    case '\r':
        c->pending_cr = 1;
        return 0;
    case ',':
        csv_end_field(c);
        return 0;
    case '"':
        if (c->st == CSV_FIELD_START) {
            c->st = CSV_QUOTED;
        } else if (c->st == CSV_QUOTE_SEEN) {
            csv_add(c, '"');
            c->st = CSV_QUOTED;
        } else {
            csv_syntax(c, "quote inside an unquoted field");
            csv_add(c, '"');
        }
        return 0;
    default:
        if (c->st == CSV_QUOTE_SEEN) {
            csv_syntax(c, "unexpected character after a closing quote");
        }
        c->st = CSV_UNQUOTED;
        csv_add(c, ch);
        return 0;
    }
}

/* Marks the start of a record at the current line when none has started yet. */
static void csv_start_row(struct csv *c)
{
    if (!c->in_row) {
        c->in_row = 1;
        c->row_line = c->line;
    }
}

static int csv_feed(struct rowparse *p, const char *data, size_t len)
{
    struct csv *c = p->impl;
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (c->pending_cr) {
            c->pending_cr = 0;
            if (ch != '\n') {
                csv_start_row(c);
                csv_syntax(c, "carriage return not followed by line feed");
            }
        }
        if (c->st == CSV_QUOTED) {
            /* Quoted CR and LF are data (and LF still starts a new physical line). */
            if (++c->row_bytes > ROWPARSE_MAX_ROW)
                c->overflow = 1;
            if (ch == '"') {
                c->st = CSV_QUOTE_SEEN;
                continue;
            }
            if (ch == '\n')
                c->line++;
            csv_add(c, ch);
            continue;
        }
        if (ch != '\n' && ch != '\r') {
            csv_start_row(c);
            if (++c->row_bytes > ROWPARSE_MAX_ROW)
                c->overflow = 1;
        }
        if (csv_outside(p, c, ch) != 0)
            return -1;
    }
    return 0;
}

static int csv_finish(struct rowparse *p)
{
    struct csv *c = p->impl;
    c->pending_cr = 0; /* a CR at the very end ends the last line */
    if (c->st == CSV_QUOTED) {
        rowparse_error(p, c->row_line, "body", "unterminated quoted field");
        c->in_row = 0;
        return 0;
    }
    return csv_end_row(p, c);
}

static void csv_free(struct rowparse *p)
{
    free(p->impl);
    p->impl = NULL;
}

static const struct rowparse_ops csv_ops = { csv_feed, csv_finish, csv_free };

int rowparse_csv_init(struct rowparse *p)
{
    struct csv *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->line = 1;
    c->st = CSV_FIELD_START;
    p->impl = c; /* owned by p, released by csv_free */
    p->ops = &csv_ops;
    return 0;
}
