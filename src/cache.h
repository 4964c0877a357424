/* cache.h: the in-process response cache (docs/cache.md): answers keyed by the normalised
 * request, labelled with the data version they were read at, bounded in bytes (CLOCK), with
 * single-flight fills. Knows nothing of HTTP or PostgreSQL; thread-safe (one mutex).
 *
 * Validity: an entry is served only while the cache is live (its listener is subscribed),
 * the entry belongs to the current generation (cache_invalidate() and a lost listener start a
 * new one) and its version is the newest the cache knows of (cache_note_version()). */
#ifndef RATES_CACHE_H
#define RATES_CACHE_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_MAX 640    /* fits the longest /rates key: two 256-byte slugs and two days */
#define CACHE_WAITERS_MAX 64 /* identical misses that wait for one fill; more query themselves */

struct cache;

struct cache_stats {
    uint64_t hits, misses, evictions, fills, invalidations, resets, waits, stale_skips;
    uint64_t admission_skips; /* large answers not stored on their first fill */
    uint64_t buckets;         /* the table's chains (it grows with the entries) */
    uint64_t bytes, entries, max_bytes;
    int64_t version; /* newest known data version, 0 when unknown */
    bool live;
};

/* A fill in progress, returned by cache_fill_begin(); passed back to cache_fill_end(). */
struct cache_ticket {
    uint64_t gen;
    bool leader;  /* this caller queries; the others waited */
    bool primary; /* the fill read the primary */
    char key[CACHE_KEY_MAX + 1];
};

/* max_bytes 0: a cache that stores nothing (every lookup misses, fills are dropped). */
struct cache *cache_new(size_t max_bytes);
void cache_free(struct cache *c);

/* Copies the entry for key into *body (malloc'd, caller frees): the gzip body when gzip is
 * true and the entry has one (then *gz true), else the identity body. Returns true on a hit
 * (also *version set), false on a miss (nothing allocated). Counts hits and misses. */
bool cache_get(struct cache *c, const char *key, bool gzip, char **body, size_t *len, bool *gz,
               int64_t *version);
/* cache_get for a request whose miss was counted already: counts a hit, never a miss. */
bool cache_get_again(struct cache *c, const char *key, bool gzip, char **body, size_t *len,
                     bool *gz, int64_t *version);
/* The newest data version the cache knows while live, else 0 (then no validator is known). */
int64_t cache_version(struct cache *c);

/* Single flight. Returns true when the caller is the leader (it queries, then calls
 * cache_fill_end), or after waiting at most wait_ms for the leader's fill: false, and the
 * caller calls cache_get again (a hit, or it queries itself without storing). Never more than
 * CACHE_WAITERS_MAX waiters on one key. */
bool cache_fill_begin(struct cache *c, const char *key, long wait_ms, struct cache_ticket *t);
/* Ends the leader's fill: stores the bodies (copied) when body is not NULL, the cache is
 * live, nothing invalidated it since cache_fill_begin and version is not older than the
 * newest known (which it raises); wakes the waiters. gz may be NULL. */
void cache_fill_end(struct cache *c, const struct cache_ticket *t, const char *body, size_t len,
                    const char *gz, size_t gzlen, int64_t version);
/* True after cache_invalidate() until a fill read on the primary, begun after it, has ended:
 * fills then read the primary, so that the version they raise the cache to includes the
 * write (a replica's older snapshot is then never stored). */
bool cache_needs_primary(struct cache *c);
/* The leader's fill read the primary (call before cache_fill_end). */
void cache_fill_primary(struct cache_ticket *t);

/* A write committed here: every entry is dropped and fills in progress store nothing. */
void cache_invalidate(struct cache *c);
/* A version announced by the database (NOTIFY): raises the newest known. */
void cache_note_version(struct cache *c, int64_t version);
/* The listener's state: false drops everything (notifications may be lost) and stops
 * serving; true (after LISTEN, with the version read after it, which becomes the newest
 * known even when lower: a failover may lose commits) serves again. */
void cache_set_live(struct cache *c, bool live, int64_t version);

void cache_stats(struct cache *c, struct cache_stats *out);

/* 64-bit FNV-1a of s: the ETag's key part, equal in every instance. Not the table's hash (a
 * keyed SipHash, per process). */
uint64_t cache_hash(const char *s);

#endif
