/* deflate.c: one-shot gzip of a response body with zlib, and the Accept-Encoding test. */
#include "deflate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

char *deflate_gzip(const char *in, size_t len, size_t *outlen)
{
    if (len == 0 || len > (size_t)1 << 30)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer; level 6: zlib's default trade-off. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t n = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || n >= len) {
        free(out);
        return NULL;
    }
    *outlen = n;
    return out;
}

/* True when the token at s (length n) is name. */
static bool deflate_token_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

bool deflate_accepts_gzip(const char *ae)
{
    if (!ae)
        return false;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - tok);
        bool zero = false;
        while (*p && *p != ',') {
            if (*p == ';') {
                const char *q = p + 1;
                while (*q == ' ')
                    q++;
                if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                    double v = strtod(q + 2, NULL);
                    zero = v <= 0.0;
                }
            }
            p++;
        }
        if (n && (deflate_token_is(tok, n, "gzip") || deflate_token_is(tok, n, "x-gzip") ||
                  deflate_token_is(tok, n, "*")))
            return !zero;
    }
    return false;
}
