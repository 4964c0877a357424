/* rowparse_ndjson.c: streaming NDJSON (application/x-ndjson): one JSON object a line.
 *
 * Lines end with LF (a CR before it is dropped); a line of only whitespace is ignored, as is
 * a last line without LF that is empty. Each line is parsed on its own (yajl), so a syntax
 * error or an overlong line (more than ROWPARSE_MAX_ROW bytes, not kept) is one error and
 * parsing goes on at the next line. A line that is complete inside one chunk is parsed in
 * place; only a line split across chunks is copied, into a buffer of ROWPARSE_MAX_ROW. */
#include "rowparse_obj.h"

#include <stdlib.h>
#include <string.h>

struct ndjson {
    struct rowparse_obj obj;
    yajl_handle h;                  /* reused from line to line (yajl_alloc per line costs ~1 us); a
                            line that fails leaves it unusable: it is then replaced */
    uint64_t line;                  /* line of the bytes being collected, 1-based */
    int overflow;                   /* the current line passed ROWPARSE_MAX_ROW: skipping to LF */
    size_t len;                     /* bytes of a split line held in buf */
    char buf[ROWPARSE_MAX_ROW + 1]; /* room for a CR before the LF */
};

static int ndjson_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static void ndjson_overflow(struct rowparse *p, struct ndjson *n)
{
    rowparse_error(p, n->line, "row", "row is longer than %d bytes", ROWPARSE_MAX_ROW);
    n->overflow = 1;
    n->len = 0;
}

/* Parses one complete line (without its LF). Returns 0, or -1 when on_row asked to stop
 * or memory ran out. */
static int ndjson_line(struct rowparse *p, struct ndjson *n, const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (ndjson_blank(s, len))
        return 0;
    if (len > ROWPARSE_MAX_ROW) {
        ndjson_overflow(p, n);
        return 0;
    }
    struct rowparse_obj *o = &n->obj;
    rowparse_obj_reset(o);
    o->line = n->line;
    if (!n->h) {
        n->h = rowparse_obj_yajl(o);
        if (!n->h)
            return -1;
        yajl_config(n->h, yajl_allow_multiple_values, 1);
    }
    o->h = n->h;
    yajl_status st = yajl_parse(n->h, (const unsigned char *)s, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(n->h);
    if (st == yajl_status_error)
        rowparse_obj_syntax(o, n->h, n->line, "invalid JSON");
    else if (st == yajl_status_client_canceled && o->fatal)
        rowparse_error(p, n->line, "body", "%s", o->fatal);
    if (st != yajl_status_ok) {
        yajl_free(n->h);
        n->h = NULL;
    }
    return o->stop ? -1 : 0;
}

static int ndjson_feed(struct rowparse *p, const char *data, size_t len)
{
    struct ndjson *n = p->impl;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t part = nl ? (size_t)(nl - data) : len;
        if (n->overflow) {
            /* skipping the rest of an overlong line */
        } else if (part > sizeof n->buf - n->len) {
            ndjson_overflow(p, n);
        } else if (nl && n->len == 0) {
            if (ndjson_line(p, n, data, part) != 0)
                return -1;
        } else {
            memcpy(n->buf + n->len, data, part);
            n->len += part;
            if (nl && ndjson_line(p, n, n->buf, n->len) != 0)
                return -1;
        }
        if (!nl)
            return 0;
        n->line++;
        n->len = 0;
        n->overflow = 0;
        data = nl + 1;
        len -= part + 1;
    }
    return 0;
}

static int ndjson_finish(struct rowparse *p)
{
    struct ndjson *n = p->impl;
    if (n->overflow || n->len == 0)
        return 0;
    int rc = ndjson_line(p, n, n->buf, n->len);
    n->len = 0;
    return rc;
}

static void ndjson_free(struct rowparse *p)
{
    struct ndjson *n = p->impl;
    if (n && n->h)
        yajl_free(n->h);
    free(p->impl);
    p->impl = NULL;
}

static const struct rowparse_ops ndjson_ops = { ndjson_feed, ndjson_finish, ndjson_free };

int rowparse_ndjson_init(struct rowparse *p)
{
    struct ndjson *n = calloc(1, sizeof *n);
    if (!n)
        return -1;
    n->line = 1;
    n->obj.p = p;
    n->obj.row_depth = 0;
    p->impl = n; /* owned by p, released by ndjson_free */
    p->ops = &ndjson_ops;
    return 0;
}
