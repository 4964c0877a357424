/* rowparse_obj.h: yajl callbacks that turn JSON objects into rows (shared by NDJSON and JSON). */
#ifndef RATES_ROWPARSE_OBJ_H
#define RATES_ROWPARSE_OBJ_H

#include "rowparse_int.h"

#include <yajl/yajl_parse.h>

#define ROWPARSE_MAX_DEPTH 64
/* Bytes allowed between two JSON events (whitespace, or one token that yajl buffers). */
#define ROWPARSE_MAX_GAP (4 * ROWPARSE_MAX_ROW)

/* Builds rows from objects found at depth row_depth (0: NDJSON, one object a line; 1: JSON,
 * objects inside one top-level array). */
struct rowparse_obj {
    struct rowparse *p;
    int row_depth;
    int depth;           /* current nesting depth */
    int in_obj;          /* inside a row object */
    int key;             /* the member being read: RP_* or -1 (unknown, duplicate) */
    int bad;             /* the row already has an error */
    unsigned seen;       /* bit per RP_* key seen */
    int stop;            /* on_row asked to stop */
    int top_seen;        /* JSON: the top-level array has started */
    int values;          /* NDJSON: top-level values on the current line */
    const char *fatal;   /* a structure error that ends parsing (static text) */
    uint64_t line;       /* current line, kept up to date by the feeder */
    uint64_t row_line;   /* line where the row object started */
    uint64_t row_start;  /* body offset of the row object's '{' */
    uint64_t last_event; /* body offset where the last JSON event ended */
    uint64_t last_line;  /* line of the last JSON event */
    uint64_t base;       /* body offset of the piece being parsed (set by the feeder) */
    yajl_handle h;       /* the handle parsing now, for its byte offset */
    size_t fstart[RP_NFIELDS];
    size_t flen[RP_NFIELDS];
    size_t blen;
    char buf[ROWPARSE_MAX_ROW];
};

extern const yajl_callbacks rowparse_obj_callbacks;

/* Resets the per-document state (NDJSON: before each line). */
void rowparse_obj_reset(struct rowparse_obj *o);
/* Reports (fatal, once) when more than ROWPARSE_MAX_GAP bytes have passed without a JSON
 * event up to body offset pos. Returns 0, or -1 after reporting. */
int rowparse_obj_check_gap(struct rowparse_obj *o, uint64_t pos) WUR;
/* Allocates a yajl handle over o and sets o->h. Strings are not validated by yajl: the
 * field checks report invalid UTF-8 against the right field. NULL when out of memory. */
yajl_handle rowparse_obj_yajl(struct rowparse_obj *o);
/* Reports yajl's error for h as a "body" error at line, prefixed with what. */
void rowparse_obj_syntax(struct rowparse_obj *o, yajl_handle h, uint64_t line, const char *what);

#endif
