/* rowparse_obj.c: yajl callbacks that check JSON objects {orig_code,dest_code,day,price}
 * and emit them as rows; shared by the NDJSON and JSON array parsers. */
#include "rowparse_obj.h"

#include <string.h>

enum obj_kind { OBJ_STRING, OBJ_NUMBER, OBJ_NULL, OBJ_BOOL, OBJ_OBJECT, OBJ_ARRAY };

static const char *const obj_kind_names[] = { "a string",  "a number",  "null",
                                              "a boolean", "an object", "an array" };

void rowparse_obj_reset(struct rowparse_obj *o)
{
    o->depth = 0;
    o->values = 0;
    o->fatal = NULL;
    o->base = 0;
    o->last_event = 0;
    o->in_obj = 0;
    o->key = -1;
    o->bad = 0;
    o->seen = 0;
    o->blen = 0;
}

/* Body offset just after the token being reported. */
static uint64_t obj_pos(const struct rowparse_obj *o)
{
    return o->base + yajl_get_bytes_consumed(o->h);
}

int rowparse_obj_check_gap(struct rowparse_obj *o, uint64_t pos)
{
    if (pos - o->last_event <= ROWPARSE_MAX_GAP)
        return 0;
    o->fatal = "more than 16384 bytes without a complete JSON value";
    o->line = o->last_line;
    return -1;
}

/* Every callback starts here: keeps the event offsets, enforces the gap. 1 on, 0 cancel. */
static int obj_event(struct rowparse_obj *o)
{
    uint64_t pos = obj_pos(o);
    if (rowparse_obj_check_gap(o, pos) != 0)
        return 0;
    o->last_event = pos;
    o->last_line = o->line;
    return 1;
}

static void obj_begin_row(struct rowparse_obj *o)
{
    o->in_obj = 1;
    o->key = -1;
    o->bad = 0;
    o->seen = 0;
    o->blen = 0;
    o->row_line = o->line;
    o->row_start = o->last_event - 1;
    memset(o->flen, 0, sizeof o->flen);
    memset(o->fstart, 0, sizeof o->fstart);
}

/* Ends the row object: reports missing keys or emits the row. 1 to go on, 0 to stop. */
static int obj_end_row(struct rowparse_obj *o)
{
    o->in_obj = 0;
    if (o->last_event - o->row_start > ROWPARSE_MAX_ROW && !o->bad) {
        o->bad = 1;
        rowparse_error(o->p, o->row_line, "row", "row is longer than %d bytes", ROWPARSE_MAX_ROW);
    }
    for (int i = 0; i < RP_NFIELDS; i++) {
        if (!(o->seen & (1u << i))) {
            o->bad = 1;
            rowparse_error(o->p, o->row_line, "row", "missing key \"%s\"", rowparse_field_names[i]);
        }
    }
    if (o->bad)
        return 1;
    struct rowparse_span f[RP_NFIELDS];
    for (int i = 0; i < RP_NFIELDS; i++) {
        f[i].s = o->buf + o->fstart[i];
        f[i].len = o->flen[i];
    }
    if (rowparse_emit(o->p, o->row_line, f) != 0) {
        o->stop = 1;
        return 0;
    }
    return 1;
}

/* A member's value inside a row object. */
static void obj_member(struct rowparse_obj *o, enum obj_kind kind, const char *s, size_t len)
{
    int k = o->key;
    o->key = -1;
    if (k < 0)
        return;
    enum obj_kind want = k == RP_PRICE ? OBJ_NUMBER : OBJ_STRING;
    if (kind != want) {
        rowparse_error(o->p, o->row_line, rowparse_field_names[k], "%s must be a JSON %s, not %s",
                       rowparse_field_names[k], k == RP_PRICE ? "integer" : "string",
                       obj_kind_names[kind]);
        o->bad = 1;
        return;
    }
    if (len > sizeof o->buf - o->blen) {
        if (!o->bad)
            rowparse_error(o->p, o->row_line, "row", "row is longer than %d bytes",
                           ROWPARSE_MAX_ROW);
        o->bad = 1;
        return;
    }
    memcpy(o->buf + o->blen, s, len);
    o->fstart[k] = o->blen;
    o->flen[k] = len;
    o->blen += len;
}

/* Any value (scalar or the start of a container) at the current depth. 1 on, 0 cancel. */
static int obj_value(struct rowparse_obj *o, enum obj_kind kind, const char *s, size_t len)
{
    if (!obj_event(o))
        return 0;
    if (o->depth < o->row_depth) {
        if (kind == OBJ_ARRAY) {
            o->top_seen = 1;
            return 1;
        }
        o->fatal = "the body must be a JSON array of objects";
        return 0;
    }
    if (o->depth == o->row_depth) {
        if (o->row_depth == 0 && o->values++ > 0) {
            o->fatal = "more than one JSON value on the line";
            return 0;
        }
        if (kind == OBJ_OBJECT) {
            obj_begin_row(o);
            return 1;
        }
        o->row_line = o->line;
        rowparse_error(o->p, o->line, "row", "%s is %s, not a JSON object",
                       o->row_depth ? "array element" : "line", obj_kind_names[kind]);
        return 1;
    }
    if (o->in_obj && o->depth == o->row_depth + 1)
        obj_member(o, kind, s, len);
    return 1;
}

static int obj_open(struct rowparse_obj *o, enum obj_kind kind)
{
    if (!obj_value(o, kind, NULL, 0))
        return 0;
    if (o->depth >= ROWPARSE_MAX_DEPTH) {
        o->fatal = "JSON nested deeper than 64 levels";
        return 0;
    }
    o->depth++;
    return 1;
}

static int obj_close(struct rowparse_obj *o)
{
    if (!obj_event(o))
        return 0;
    o->depth--;
    if (o->in_obj && o->depth == o->row_depth)
        return obj_end_row(o);
    return 1;
}

static int obj_on_null(void *ctx)
{
    return obj_value(ctx, OBJ_NULL, NULL, 0);
}

static int obj_on_bool(void *ctx, int v)
{
    return obj_value(ctx, OBJ_BOOL, NULL, 0);
}

static int obj_on_number(void *ctx, const char *s, size_t len)
{
    return obj_value(ctx, OBJ_NUMBER, s, len);
}

static int obj_on_string(void *ctx, const unsigned char *s, size_t len)
{
    return obj_value(ctx, OBJ_STRING, (const char *)s, len);
}

static int obj_on_start_map(void *ctx)
{
    return obj_open(ctx, OBJ_OBJECT);
}

static int obj_on_start_array(void *ctx)
{
    return obj_open(ctx, OBJ_ARRAY);
}

static int obj_on_end(void *ctx)
{
    return obj_close(ctx);
}

static int obj_on_key(void *ctx, const unsigned char *key, size_t len)
{
    struct rowparse_obj *o = ctx;
    if (!obj_event(o))
        return 0;
    if (!o->in_obj || o->depth != o->row_depth + 1)
        return 1;
    char shown[40];
    o->key = -1;
    for (int i = 0; i < RP_NFIELDS; i++) {
        const char *name = rowparse_field_names[i];
        if (strlen(name) == len && memcmp(name, key, len) == 0) {
            if (o->seen & (1u << i)) {
                rowparse_error(o->p, o->row_line, "row", "duplicate key \"%s\"",
                               rowparse_field_names[i]);
                o->bad = 1;
                return 1;
            }
            o->seen |= 1u << i;
            o->key = i;
            return 1;
        }
    }
    rowparse_show(shown, sizeof shown, (const char *)key, len);
    rowparse_error(o->p, o->row_line, "row",
                   "unknown key %s (expected orig_code, dest_code, day, price)", shown);
    o->bad = 1;
    return 1;
}

const yajl_callbacks rowparse_obj_callbacks = {
    .yajl_null = obj_on_null,
    .yajl_boolean = obj_on_bool,
    .yajl_number = obj_on_number,
    .yajl_string = obj_on_string,
    .yajl_start_map = obj_on_start_map,
    .yajl_map_key = obj_on_key,
    .yajl_end_map = obj_on_end,
    .yajl_start_array = obj_on_start_array,
    .yajl_end_array = obj_on_end,
};

yajl_handle rowparse_obj_yajl(struct rowparse_obj *o)
{
    yajl_handle h = yajl_alloc(&rowparse_obj_callbacks, NULL, o);
    if (h)
        yajl_config(h, yajl_dont_validate_strings, 1);
    o->h = h;
    return h;
}

void rowparse_obj_syntax(struct rowparse_obj *o, yajl_handle h, uint64_t line, const char *what)
{
    unsigned char *e = yajl_get_error(h, 0, NULL, 0);
    char msg[160] = "syntax error";
    if (e) {
        size_t n = strcspn((const char *)e, "\n");
        if (n >= sizeof msg)
            n = sizeof msg - 1;
        memcpy(msg, e, n);
        msg[n] = '\0';
        yajl_free_error(h, e);
    }
    rowparse_error(o->p, line, "body", "%s: %s", what, msg);
}
