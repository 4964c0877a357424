/* dynbuf.c: growable byte buffer with a hard maximum. */
#include "dynbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void dynbuf_init(struct dynbuf *b, size_t max)
{
    b->buf = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void dynbuf_free(struct dynbuf *b)
{
    free(b->buf);
    dynbuf_init(b, b->max);
}

void dynbuf_reset(struct dynbuf *b)
{
    b->len = 0;
    if (b->buf)
        b->buf[0] = '\0';
}

static int dynbuf_reserve(struct dynbuf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->buf, cap);
    if (!p)
        return -1;
    b->buf = p;
    b->cap = cap;
    return 0;
}

int dynbuf_add(struct dynbuf *b, const void *data, size_t len)
{
    if (dynbuf_reserve(b, len) != 0)
        return -1;
    if (len)
        memcpy(b->buf + b->len, data, len);
    b->len += len;
    b->buf[b->len] = '\0';
    return 0;
}

int dynbuf_adds(struct dynbuf *b, const char *s)
{
    return dynbuf_add(b, s, strlen(s));
}

int dynbuf_printf(struct dynbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return dynbuf_add(b, small, (size_t)n);
    if (dynbuf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int dynbuf_add_json_string(struct dynbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (dynbuf_add(b, "\"", 1) != 0)
        return -1;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = utf8_valid_prefix(s + i, len - i);
            if (n == 0) {
                if (dynbuf_add(b, "\xEF\xBF\xBD", 3) != 0)
                    return -1;
                i++;
            } else {
                if (dynbuf_add(b, s + i, n) != 0)
                    return -1;
                i += n;
            }
            continue;
        }
        int rc;
        switch (c) {
        case '"':
            rc = dynbuf_add(b, "\\\"", 2);
            break;
        case '\\':
            rc = dynbuf_add(b, "\\\\", 2);
            break;
        case '\n':
            rc = dynbuf_add(b, "\\n", 2);
            break;
        case '\r':
            rc = dynbuf_add(b, "\\r", 2);
            break;
        case '\t':
            rc = dynbuf_add(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
                rc = dynbuf_add(b, esc, 6);
            } else {
                rc = dynbuf_add(b, &s[i], 1);
            }
        }
        if (rc != 0)
            return -1;
        i++;
    }
    return dynbuf_add(b, "\"", 1);
}

char *dynbuf_take(struct dynbuf *b, size_t *len)
{
    if (!b->buf && dynbuf_reserve(b, 0) != 0)
        return NULL;
    if (!b->buf)
        return NULL;
    b->buf[b->len] = '\0';
    char *p = b->buf;
    if (len)
        *len = b->len;
    b->buf = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

char *dynbuf_finish(struct dynbuf *b, int rc, const char *tail, size_t *len)
{
    if (rc == 0)
        rc = dynbuf_adds(b, tail);
    if (rc != 0) {
        dynbuf_free(b);
        return NULL;
    }
    return dynbuf_take(b, len);
}
