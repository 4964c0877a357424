/* readcache.h: how the read routes (/rates, /regions, /ports) use the response cache:
 * validators (ETag, Cache-Control, Vary, 304 on If-None-Match), hits answered on the HTTP
 * thread, single-flight fills on the worker, gzip of large answers (docs/cache.md). */
#ifndef RATES_READCACHE_H
#define RATES_READCACHE_H

#include "cache.h"
#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_conn;
struct http_req;
struct http_server_settings;

/* Per request, inside the route's state. */
struct readcache_req {
    char key[CACHE_KEY_MAX + 1]; /* the normalised request */
    bool use;                    /* the cache serves and stores this request */
    bool gzip;                   /* the client accepts gzip */
    bool primary;                /* the fill reads the primary */
    char inm[256];               /* If-None-Match (cut at 255 bytes), for the worker's answer */
    struct cache_ticket ticket;  /* the fill, once begun on the worker */
    bool begun;
};

/* Creates the cache (RATES_CACHE_BYTES; none at 0) and starts its listener on the primary.
 * Returns 0 or -1. */
int readcache_start(const char *primary_url, long connect_timeout_s) WUR;
void readcache_stop(void);
/* Called by the HTTP layer before it answers a write 2xx (the write has committed). */
void readcache_on_write(void);

/* On the HTTP thread, once the request is valid; key is its normalised form. Answers 304
 * (If-None-Match names the current version's ETag) or 200 from the cache and returns true;
 * false: the caller defers the read with readcache_defer_flags(). */
bool readcache_lookup(struct http_req *req, struct readcache_req *rc, const char *key);
/* The http_defer flags for the read: the primary while the cache waits for a fill that
 * includes this instance's last write, else the read pool. */
unsigned readcache_defer_flags(const struct readcache_req *rc);
/* On the worker, before the query: joins or leads the key's fill. true: answered (the fill
 * that was waited for is in the cache); false: the caller queries. */
bool readcache_before_query(struct http_req *req, struct readcache_req *rc);
/* On the worker: answers 200 with body (adopted) read at version, with validators and gzip
 * (or 304 when If-None-Match names its ETag), and stores it when this request leads the
 * fill. */
void readcache_respond(struct http_req *req, struct readcache_req *rc, char *body, size_t len,
                       int64_t version);
/* On the worker, after a read on a replica at version: when the cache knows a newer version
 * (a commit this instance made or was told of), the replica is behind: returns a primary
 * connection to read again on (the answer is then stored as the primary's), else NULL.
 * Release it with readcache_reread_done(). */
/* On the HTTP thread: the same for an answer computed without the database (the read model,
 * fed by the primary); it is stored unless an identical fill is already in flight. */
void readcache_respond_now(struct http_req *req, struct readcache_req *rc, char *body, size_t len,
                           int64_t version);
/* The newest data version an answer of this process has carried (0: none yet). The cache's
 * listener may know a newer one a moment before the read model holds it; that one only
 * invalidates the cache (docs/readmodel.md, "Consistency"). */
int64_t readcache_served_version(void);
/* Forgets those versions (the read model's new connection may lead to a new primary that lost
 * commits this process answered with: versions past its own would hold every model read). */
void readcache_forget_served(void);
/* True when the request asks the database itself (Rates-Consistency: primary, or
 * Rates-Min-LSN): the cache and the read model are bypassed. */
bool readcache_asks_database(struct http_req *req);
struct db_conn *readcache_reread_conn(struct readcache_req *rc, int64_t version);
void readcache_reread_done(struct db_conn *conn);
/* On the worker, when the query failed (req has its error answer): ends the fill. */
void readcache_abandon(struct readcache_req *rc);

#endif
