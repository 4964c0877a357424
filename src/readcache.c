/* readcache.c: validators, cache hits and fills, and gzip for the read routes. */
#include "readcache.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "cache_listen.h"
#include "db.h"
#include "deflate.h"
#include "http.h"
#include "metrics.h"

#define READCACHE_VARY "Accept-Encoding, Rates-Consistency, Rates-Min-LSN"
#define READCACHE_WAIT_MS 2000 /* longest wait of an identical miss for the leader's fill */

static struct cache *readcache;

int readcache_start(const char *primary_url, long connect_timeout_s)
{
    if (APP.cfg.cache_bytes <= 0)
        return 0;
    readcache = cache_new((size_t)APP.cfg.cache_bytes);
    if (!readcache)
        return -1;
    metrics_set_cache(readcache);
    if (cache_listen_start(readcache, primary_url, connect_timeout_s) != 0) {
        metrics_set_cache(NULL);
        cache_free(readcache);
        readcache = NULL;
        return -1;
    }
    return 0;
}

void readcache_stop(void)
{
    if (!readcache)
        return;
    cache_listen_stop();
    metrics_set_cache(NULL);
    cache_free(readcache);
    readcache = NULL;
}

void readcache_on_write(void)
{
    if (readcache)
        cache_invalidate(readcache);
}

/* "<version>-<key hash>-<g|i>": the version, the normalised request and the coding the
 * request selects (gzip accepted or not; the threshold then decides deterministically). */
static void readcache_etag(const struct readcache_req *rc, int64_t version, char *out, size_t cap)
{
    snprintf(out, cap, "\"%" PRId64 "-%016" PRIx64 "-%c\"", version, cache_hash(rc->key),
             rc->gzip ? 'g' : 'i');
}

/* True when the If-None-Match list names etag (weak comparison, as RFC 9110 asks) or is *. */
static bool readcache_inm_matches(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *tok = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if ((size_t)(p - tok) == elen && strncmp(tok, etag, elen) == 0)
            return true;
    }
    return false;
}

/* The newest data version an answer of this process has carried (its ETag, a 304 included):
 * the read model never answers older (rates.c). Raised by every thread; lowered only by
 * readcache_forget_served(), when the read model's follower reconnects. */
static _Atomic int64_t readcache_served;

static void readcache_note_served(int64_t version)
{
    int64_t cur = atomic_load_explicit(&readcache_served, memory_order_relaxed);
    while (version > cur && !atomic_compare_exchange_weak(&readcache_served, &cur, version))
        ;
}

int64_t readcache_served_version(void)
{
    return atomic_load(&readcache_served);
}

void readcache_forget_served(void)
{
    atomic_store(&readcache_served, 0);
}

static void readcache_headers(struct http_req *req, const struct readcache_req *rc, int64_t version)
{
    readcache_note_served(version);
    if (version > 0) {
        char etag[64];
        readcache_etag(rc, version, etag, sizeof etag);
        http_add_header(req, "ETag", etag);
    }
    http_add_header(req, "Cache-Control", APP.cfg.cache_control);
    http_add_header(req, "Vary", READCACHE_VARY);
}

bool readcache_asks_database(struct http_req *req)
{
    const char *consistency = http_header(req, "Rates-Consistency");
    return (consistency && strcasecmp(consistency, "primary") == 0) ||
           http_header(req, "Rates-Min-LSN") != NULL;
}

bool readcache_lookup(struct http_req *req, struct readcache_req *rc, const char *key)
{
    str_copy(rc->key, sizeof rc->key, key);
    rc->gzip = deflate_accepts_gzip(http_header(req, "Accept-Encoding"));
    const char *inm = http_header(req, "If-None-Match");
    str_copy(rc->inm, sizeof rc->inm, inm ? inm : "");
    rc->use = readcache && !readcache_asks_database(req);
    rc->primary = APP.read_pool == APP.query_pool;
    if (!rc->use)
        return false;
    if (cache_needs_primary(readcache)) {
        rc->primary = true;
        return false; /* a write here is newer than any version known: ask the primary */
    }
    int64_t known = cache_version(readcache);
    if (known > 0 && rc->inm[0]) {
        char etag[64];
        readcache_etag(rc, known, etag, sizeof etag);
        if (readcache_inm_matches(rc->inm, etag)) {
            readcache_headers(req, rc, known);
            metrics_cache_not_modified();
            http_respond(req, 304, "application/json", "", 0);
            return true;
        }
    }
    char *body = NULL;
    size_t len = 0;
    bool gz = false;
    int64_t version = 0;
    if (!cache_get(readcache, key, rc->gzip, &body, &len, &gz, &version))
        return false;
    readcache_headers(req, rc, version);
    if (gz)
        http_add_header(req, "Content-Encoding", "gzip");
    http_respond_owned(req, 200, "application/json", body, len);
    return true;
}

unsigned readcache_defer_flags(const struct readcache_req *rc)
{
    return rc->use && rc->primary && APP.read_pool != APP.query_pool ? WORK_DB | WORK_DB_PREFER
                                                                     : WORK_DB_READ;
}

bool readcache_before_query(struct http_req *req, struct readcache_req *rc)
{
    if (!rc->use)
        return false;
    rc->begun = true;
    (void)cache_fill_begin(readcache, rc->key, READCACHE_WAIT_MS, &rc->ticket);
    char *body = NULL;
    size_t len = 0;
    bool gz = false;
    int64_t version = 0;
    /* A leader looks once more: a fill may have ended while this request sat in the lane's
     * queue (then N queued identical misses still make one query). */
    if (!cache_get_again(readcache, rc->key, rc->gzip, &body, &len, &gz, &version))
        return false;      /* query (a waiter whose leader stored nothing stores nothing) */
    readcache_abandon(rc); /* ends this request's flight, if it leads one */
    readcache_headers(req, rc, version);
    if (gz)
        http_add_header(req, "Content-Encoding", "gzip");
    http_respond_owned(req, 200, "application/json", body, len);
    return true;
}

void readcache_respond(struct http_req *req, struct readcache_req *rc, char *body, size_t len,
                       int64_t version)
{
    char *gz = NULL;
    size_t gzlen = 0;
    /* A replica's answer given while the primary was unreachable is served, never stored:
     * it may predate this instance's own write. */
    if (req->fell_back)
        rc->primary = false;
    bool store = rc->begun && rc->ticket.leader && version > 0 && !req->fell_back;
    if (APP.cfg.gzip_min_bytes > 0 && len >= (size_t)APP.cfg.gzip_min_bytes && (rc->gzip || store))
        gz = deflate_gzip(body, len, &gzlen);
    if (rc->begun) {
        if (rc->primary)
            cache_fill_primary(&rc->ticket);
        cache_fill_end(readcache, &rc->ticket, store ? body : NULL, len, gz, gzlen, version);
        rc->begun = false;
    }
    readcache_headers(req, rc, version);
    char etag[64];
    readcache_etag(rc, version, etag, sizeof etag);
    if (version > 0 && rc->inm[0] && readcache_inm_matches(rc->inm, etag)) {
        free(body);
        free(gz);
        http_respond(req, 304, "application/json", "", 0);
        return;
    }
    if (rc->gzip && gz) {
        free(body);
        http_add_header(req, "Content-Encoding", "gzip");
        http_respond_owned(req, 200, "application/json", gz, gzlen);
        return;
    }
    free(gz);
    http_respond_owned(req, 200, "application/json", body, len);
}

void readcache_respond_now(struct http_req *req, struct readcache_req *rc, char *body, size_t len,
                           int64_t version)
{
    if (rc->use && version > 0) {
        /* No wait: this answer cost no database work. The model follows the primary and
         * holds every write of this instance, so it counts as the primary's read. */
        rc->begun = true;
        (void)cache_fill_begin(readcache, rc->key, 0, &rc->ticket);
        rc->primary = true;
    }
    readcache_respond(req, rc, body, len, version);
}

struct db_conn *readcache_reread_conn(struct readcache_req *rc, int64_t version)
{
    if (!rc->use || rc->primary || APP.read_pool == APP.query_pool ||
        version >= cache_version(readcache))
        return NULL;
    struct db_conn *conn = NULL;
    char err[256];
    /* A read worker holds at most one primary connection (the pool has one per worker). */
    if (db_pool_acquire(APP.query_pool, APP.cfg.pool_wait_ms, &conn, err, sizeof err) != DB_OK)
        return NULL;
    rc->primary = true;
    metrics_cache_reread();
    return conn;
}

void readcache_reread_done(struct db_conn *conn)
{
    db_pool_release(APP.query_pool, conn);
}

void readcache_abandon(struct readcache_req *rc)
{
    if (!rc->begun)
        return;
    cache_fill_end(readcache, &rc->ticket, NULL, 0, NULL, 0, 0);
    rc->begun = false;
}
