/* rowparse_json.c: streaming JSON (application/json): one top-level array of row objects.
 *
 * One yajl handle parses the whole body incrementally, never holding it: bytes go to yajl in
 * pieces that end at each LF (and at most JSON_PIECE bytes), so the current line is known
 * exactly when an object starts. Invalid rows (types, keys, field values, an object longer
 * than ROWPARSE_MAX_ROW bytes) are reported and parsing goes on. What ends parsing: any
 * syntax error (the array cannot be delimited after one), nesting deeper than 64, and more
 * than ROWPARSE_MAX_GAP bytes without a complete token (yajl would buffer that token, so
 * this bounds its memory). */
#include "rowparse_obj.h"

#include <stdlib.h>
#include <string.h>

#define JSON_PIECE 1024

struct json {
    struct rowparse_obj obj;
    yajl_handle h;
    int nonblank; /* a byte other than JSON whitespace has been seen */
};

static int json_fail(struct rowparse *p, struct json *j, const char *what)
{
    struct rowparse_obj *o = &j->obj;
    if (o->stop)
        return -1;
    if (o->fatal)
        rowparse_error(p, o->line, "body", "%s", o->fatal);
    else
        rowparse_obj_syntax(o, j->h, o->line, what);
    return -1;
}

static int json_piece(struct rowparse *p, struct json *j, const char *s, size_t len)
{
    struct rowparse_obj *o = &j->obj;
    if (!j->nonblank) {
        for (size_t i = 0; i < len && !j->nonblank; i++)
            j->nonblank = !memchr(" \t\r\n", s[i], 4);
    }
    if (yajl_parse(j->h, (const unsigned char *)s, len) != yajl_status_ok)
        return json_fail(p, j, "invalid JSON");
    o->base += len;
    if (rowparse_obj_check_gap(o, o->base) != 0)
        return json_fail(p, j, "");
    return 0;
}

static int json_feed(struct rowparse *p, const char *data, size_t len)
{
    struct json *j = p->impl;
    while (len > 0) {
        size_t n = len < JSON_PIECE ? len : JSON_PIECE;
        const char *nl = memchr(data, '\n', n);
        if (nl)
            n = (size_t)(nl - data) + 1;
        if (json_piece(p, j, data, n) != 0)
            return -1;
        if (nl)
            j->obj.line++;
        data += n;
        len -= n;
    }
    return 0;
}

static int json_finish(struct rowparse *p)
{
    struct json *j = p->impl;
    if (!j->nonblank) {
        rowparse_error(p, j->obj.line, "body", "empty body: expected a JSON array of objects");
        return -1;
    }
    if (yajl_complete_parse(j->h) != yajl_status_ok)
        return json_fail(p, j, "invalid JSON at the end of the body");
    return 0;
}

static void json_free(struct rowparse *p)
{
    struct json *j = p->impl;
    if (j && j->h)
        yajl_free(j->h);
    free(j);
    p->impl = NULL;
}

static const struct rowparse_ops json_ops = { json_feed, json_finish, json_free };

int rowparse_json_init(struct rowparse *p)
{
    struct json *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->obj.p = p;
    j->obj.row_depth = 1;
    j->obj.line = 1;
    j->h = rowparse_obj_yajl(&j->obj);
    if (!j->h)
        goto fail;
    p->impl = j; /* owned by p, released by json_free */
    p->ops = &json_ops;
    return 0;
fail:
    free(j);
    return -1;
}
