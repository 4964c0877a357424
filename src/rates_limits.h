/* rates_limits.h: size limits that more than one layer depends on, in one place so that a
 * _Static_assert can tie them together (named rates_limits.h, not limits.h: with -Isrc a
 * src/limits.h would shadow the C library's <limits.h> for every file). */
#ifndef RATES_RATES_LIMITS_H
#define RATES_RATES_LIMITS_H

/* libmicrohttpd's memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT): it bounds the
 * request line and headers, and also the largest body chunk MHD hands the access handler.
 * libmicrohttpd 0.9.75 zeroes the whole pool before every request of a keep-alive
 * connection (MHD_pool_reset), so its size is paid per request: at 64 KiB that memset was
 * 12% of a cached /rates answer's CPU (perf, docs/cache.md). 32 KiB (MHD's own default)
 * still holds the longest request line ratesd answers itself (414 with a JSON body past
 * HTTP_URI_MAX, 8 KiB) with its headers. */
#define HTTP_MEMORY_LIMIT (32 * 1024)

/* The largest body chunk ingest.c copies for a worker: it must hold anything MHD hands over. */
#define INGEST_CHUNK_MAX (1024 * 1024)
/* The chunk buffer's first size (it grows to the chunk's size, up to INGEST_CHUNK_MAX). */
#define INGEST_CHUNK_MIN (64 * 1024)

_Static_assert(HTTP_MEMORY_LIMIT <= INGEST_CHUNK_MAX,
               "a body chunk from libmicrohttpd must fit the ingest chunk buffer");
_Static_assert(INGEST_CHUNK_MIN <= INGEST_CHUNK_MAX, "chunk buffer bounds");

#endif
