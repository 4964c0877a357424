/* inflate.c: streaming gzip decoding on zlib, in bounded output pieces (see inflate.h). */
#include "inflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define INFLATE_OUT_MAX (16u * 1024 * 1024)
#define INFLATE_WBITS (15 + 16) /* a 32 KiB window, gzip wrapper only (no zlib, no raw) */

enum inflate_state {
    INFLATE_IN_MEMBER = 0, /* inside a gzip member (or before the first) */
    INFLATE_AT_END,        /* a member has just ended: more input starts another */
    INFLATE_FAILED,        /* corrupt: nothing more is read */
    INFLATE_HALTED         /* the sink stopped it */
};

struct inflate_stream {
    z_stream zs;
    bool zs_ready;
    enum inflate_state state;
    uint64_t members; /* gzip members completed */
    uint64_t in_total, out_total;
    char *out; /* owned, out_cap bytes */
    size_t out_cap;
    char error[160];
};

struct inflate_stream *inflate_new(size_t out_cap)
{
    if (out_cap == 0 || out_cap > INFLATE_OUT_MAX)
        return NULL;
    struct inflate_stream *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->out = malloc(out_cap);
    z->out_cap = out_cap;
    if (!z->out || inflateInit2(&z->zs, INFLATE_WBITS) != Z_OK) {
        free(z->out);
        free(z);
        return NULL;
    }
    z->zs_ready = true;
    return z;
}

void inflate_free(struct inflate_stream *z)
{
    if (!z)
        return;
    if (z->zs_ready)
        inflateEnd(&z->zs);
    free(z->out);
    free(z);
}

/* Records the failure once; offset is the compressed byte where zlib stopped. */
static int inflate_fail(struct inflate_stream *z, const char *why)
{
    z->state = INFLATE_FAILED;
    snprintf(z->error, sizeof z->error, "The gzip body is corrupt at compressed byte %llu: %s",
             (unsigned long long)z->in_total, why);
    return INFLATE_CORRUPT;
}

/* Hands the produced output (out .. next_out) to the sink and rewinds the buffer. */
static int inflate_flush(struct inflate_stream *z, inflate_sink sink, void *ctx)
{
    size_t n = z->out_cap - z->zs.avail_out;
    z->zs.next_out = (Bytef *)z->out;
    z->zs.avail_out = (uInt)z->out_cap;
    if (n == 0)
        return 0;
    z->out_total += n;
    if (sink(ctx, z->out, n) != 0) {
        z->state = INFLATE_HALTED;
        return INFLATE_STOPPED;
    }
    return 0;
}

int inflate_feed(struct inflate_stream *z, const void *in, size_t len, inflate_sink sink, void *ctx)
{
    if (z->state == INFLATE_FAILED)
        return INFLATE_CORRUPT;
    if (z->state == INFLATE_HALTED)
        return INFLATE_STOPPED;
    const unsigned char *p = in;
    while (len > 0) {
        /* zlib counts in uInt: feed at most 1 GiB per round. */
        uInt take = len > (1u << 30) ? (1u << 30) : (uInt)len;
        if (z->state == INFLATE_AT_END) {
            /* Another member follows (gzip -c a b > ab); anything else (zero padding, junk)
             * is named for what it is before zlib calls it a bad header. */
            if (p[0] != 0x1f)
                return inflate_fail(z, "data after the end of the gzip stream");
            if (inflateReset(&z->zs) != Z_OK)
                return inflate_fail(z, "cannot restart the decoder");
            z->state = INFLATE_IN_MEMBER;
        }
        z->zs.next_in = (Bytef *)(uintptr_t)p;
        z->zs.avail_in = take;
        z->zs.next_out = (Bytef *)z->out;
        z->zs.avail_out = (uInt)z->out_cap;
        int rc = Z_OK;
        bool more = true;
        while (more) {
            uInt before = z->zs.avail_in;
            rc = inflate(&z->zs, Z_NO_FLUSH);
            z->in_total += before - z->zs.avail_in;
            if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR) {
                const char *msg = z->zs.msg ? z->zs.msg : "invalid data";
                if (z->members == 0 && strcmp(msg, "incorrect header check") == 0)
                    msg = "not gzip data (incorrect header check)";
                return inflate_fail(z, msg);
            }
            if (rc == Z_MEM_ERROR)
                return INFLATE_NOMEM;
            /* A full buffer may leave output inside zlib even with no input left: go on. */
            bool full = z->zs.avail_out == 0;
            if (full || rc == Z_STREAM_END) {
                int f = inflate_flush(z, sink, ctx);
                if (f)
                    return f;
            }
            if (rc == Z_STREAM_END || rc == Z_BUF_ERROR)
                break; /* the member's end, or no progress possible (nothing pending) */
            more = z->zs.avail_in > 0 || full;
        }
        int f = inflate_flush(z, sink, ctx);
        if (f)
            return f;
        size_t used = take - z->zs.avail_in;
        p += used;
        len -= used;
        if (rc == Z_STREAM_END) {
            z->members++;
            z->state = INFLATE_AT_END;
        } else if (used == 0 && len > 0) {
            return inflate_fail(z, "the decoder made no progress");
        }
    }
    return INFLATE_OK;
}

int inflate_finish(struct inflate_stream *z)
{
    if (z->state == INFLATE_FAILED)
        return INFLATE_CORRUPT;
    if (z->state == INFLATE_AT_END)
        return INFLATE_OK;
    if (z->state == INFLATE_HALTED)
        return INFLATE_STOPPED;
    z->state = INFLATE_FAILED;
    if (z->in_total == 0)
        str_copy(z->error, sizeof z->error, "The gzip body is empty");
    else
        snprintf(z->error, sizeof z->error,
                 "The gzip body is truncated: it ends after %llu compressed bytes, inside a "
                 "gzip member",
                 (unsigned long long)z->in_total);
    return INFLATE_CORRUPT;
}

const char *inflate_error(const struct inflate_stream *z)
{
    return z->error;
}

uint64_t inflate_total_in(const struct inflate_stream *z)
{
    return z->in_total;
}

uint64_t inflate_total_out(const struct inflate_stream *z)
{
    return z->out_total;
}
