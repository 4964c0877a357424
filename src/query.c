/* query.c: query-string parsing, as browsers and WSGI servers decode forms. */
#include "query.h"

#include <string.h>

static int query_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long query_decode(const char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n) {
            int hi = query_hex(src[i + 1]), lo = query_hex(src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int query_get(const char *query, const char *key, char *out, size_t cap, size_t *len)
{
    if (!query)
        return QUERY_ABSENT;
    size_t keylen = strlen(key);
    const char *p = query;
    while (*p && *p != '#') {
        size_t seg = strcspn(p, "&#");
        const char *eq = memchr(p, '=', seg);
        size_t klen = eq ? (size_t)(eq - p) : seg;
        char kbuf[128];
        long kdec = query_decode(p, klen, kbuf, sizeof kbuf);
        if (kdec >= 0 && (size_t)kdec == keylen && memcmp(kbuf, key, keylen) == 0) {
            const char *v = eq ? eq + 1 : p + seg;
            size_t vlen = eq ? seg - klen - 1 : 0;
            long n = query_decode(v, vlen, out, cap);
            if (n < 0)
                return QUERY_TOO_LONG;
            *len = (size_t)n;
            return QUERY_FOUND;
        }
        p += seg;
        if (*p == '&')
            p++;
    }
    return QUERY_ABSENT;
}
