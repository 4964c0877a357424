/* inflate.h: streaming gzip decoder with bounded output (POST /batches Content-Encoding: gzip). */
#ifndef RATES_INFLATE_H
#define RATES_INFLATE_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One gzip stream (RFC 1952; several members in a row are one stream, as gzip(1) reads
 * them). The decoder owns its zlib state and one output buffer of out_cap bytes: however
 * much a chunk expands (a zip bomb), it hands the sink at most out_cap bytes at a time, so
 * its memory never depends on the data; the caller bounds the total in the sink. */
struct inflate_stream;

/* Receives the next out <= out_cap decompressed bytes (valid during the call only).
 * Returns 0 to go on, non-zero to stop: inflate_feed then returns INFLATE_STOPPED. */
typedef int (*inflate_sink)(void *ctx, const char *out, size_t len);

enum inflate_status {
    INFLATE_OK = 0,       /* all input consumed */
    INFLATE_STOPPED = 1,  /* the sink asked to stop; the rest of the input was not read */
    INFLATE_CORRUPT = -1, /* not gzip, or damaged: inflate_error() says how */
    INFLATE_NOMEM = -2
};

/* NULL when out of memory. out_cap: 1..16 MiB. Free with inflate_free(). */
struct inflate_stream *inflate_new(size_t out_cap) WUR;
void inflate_free(struct inflate_stream *z);

/* Decodes len bytes of compressed input, calling sink for each piece of output. After
 * INFLATE_CORRUPT (or STOPPED) every later call returns the same without reading. */
int inflate_feed(struct inflate_stream *z, const void *in, size_t len, inflate_sink sink,
                 void *ctx) WUR;

/* At the end of the input: INFLATE_OK when the stream ended exactly at the end of a gzip
 * member, INFLATE_CORRUPT when it is truncated (or empty, or was corrupt before). */
int inflate_finish(struct inflate_stream *z) WUR;

/* Why the stream is corrupt: one sentence naming the compressed byte offset, "" if not. */
const char *inflate_error(const struct inflate_stream *z);

/* Compressed bytes read and decompressed bytes produced so far. */
uint64_t inflate_total_in(const struct inflate_stream *z);
uint64_t inflate_total_out(const struct inflate_stream *z);

#endif
