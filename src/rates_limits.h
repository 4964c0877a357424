/* rates_limits.h: size limits that more than one layer depends on, in one place so that a
 * _Static_assert can tie them together (named rates_limits.h, not limits.h: with -Isrc a
 * src/limits.h would shadow the C library's <limits.h> for every file). */
#ifndef RATES_RATES_LIMITS_H
#define RATES_RATES_LIMITS_H

/* libmicrohttpd's memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT): it bounds the
 * request line and headers, and also the largest body chunk MHD hands the access handler. */
#define HTTP_MEMORY_LIMIT (64 * 1024)

/* The largest body chunk ingest.c copies for a worker: it must hold anything MHD hands over. */
#define INGEST_CHUNK_MAX (1024 * 1024)
/* The chunk buffer's first size (it grows to the chunk's size, up to INGEST_CHUNK_MAX). */
#define INGEST_CHUNK_MIN (64 * 1024)

_Static_assert(HTTP_MEMORY_LIMIT <= INGEST_CHUNK_MAX,
               "a body chunk from libmicrohttpd must fit the ingest chunk buffer");
_Static_assert(INGEST_CHUNK_MIN <= INGEST_CHUNK_MAX, "chunk buffer bounds");

#endif
