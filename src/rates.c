/* rates.c: GET /rates. Validation happens on the HTTP thread; the query runs on a worker.
 * orig_code and dest_code (or origin and destination) are port codes or region slugs
 * (docs/regions.md). The database returns only days that have prices (one range scan of
 * the daily aggregate); the calendar, the nulls and the "fewer than 3" rule are applied here. */
#include "rates.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "avg.h"
#include "date.h"
#include "db.h"
#include "dbread.h"
#include "dynbuf.h"
#include "follow.h"
#include "http.h"
#include "metrics.h"
#include "numfmt.h"
#include "query.h"
#include "readcache.h"
#include "regions.h"
#include "utf8.h"

#define RATES_CODE_MAX REGIONS_SLUG_MAX
#define RATES_MIN_COUNT 3

struct rates_query {
    int32_t from, to;
    char orig[RATES_CODE_MAX + 1];
    char dest[RATES_CODE_MAX + 1];
    struct readcache_req cache;
    bool model_behind; /* the model was current but older than the cache's known version */
    bool wants_fresh;  /* Rates-Consistency: primary or Rates-Min-LSN (docs/readmodel.md) */
    bool fresh;        /* a pass began after this request and succeeded */
};

/* One round trip for ports and regions alike: one primary-key range scan of the daily
 * aggregate (db/migrations/0010, docs/aggregates.md), span rows at most, plus the rows of
 * the unfolded change log (0016) whose ports count under the two nodes, grouped by day. The
 * values may be a port code, a slug at any depth, both, or nothing known (no rows). The
 * average is the integer sum divided by the count as numeric, then float8: bit for bit what
 * avg(price)::float8 over the raw prices gives. Days come newest first. The data version
 * (db/migrations/0012) comes in the same statement, hence the same snapshot as the fold and
 * its tail: one row with NULL day columns when the route has no prices. */
static const char rates_sql[] =
    "SELECT v.version, d.off, d.n, d.avg FROM public.rates_data_version v "
    "LEFT JOIN LATERAL (SELECT (x.day - $3::date) AS off, sum(x.n) AS n, "
    "(sum(x.total)::numeric / sum(x.n))::float8 AS avg FROM ("
    "SELECT a.day, a.n, a.total FROM public.rates_daily a "
    "WHERE a.orig_node = $1 AND a.dest_node = $2 AND a.day >= $3::date AND a.day <= $4::date "
    "UNION ALL SELECT c.day, c.n, c.total FROM public.rates_changes c "
    "JOIN public.rates_nodes mo ON mo.code = c.orig_code AND mo.node = $1 "
    "JOIN public.rates_nodes md ON md.code = c.dest_code AND md.node = $2 "
    "WHERE c.day >= $3::date AND c.day <= $4::date) x "
    "GROUP BY x.day HAVING sum(x.n) > 0 ORDER BY x.day DESC) d ON true WHERE v.id = 1";

/* Newest first, whatever order the rows came in. */
static int rates_day_cmp(const void *a, const void *b)
{
    const struct rates_day *x = a, *y = b;
    return (x->offset < y->offset) - (x->offset > y->offset);
}

void rates_init(void)
{
    db_register_statement("rates_daily", rates_sql, 4);
    regions_init();
}

/* Appends s to a per-day entry buffer (callers keep each entry under 160 bytes). */
static void entry_add(char *entry, size_t *n, const char *s)
{
    size_t len = strlen(s);
    memcpy(entry + *n, s, len);
    *n += len;
}

/* PostgreSQL prints float8 in shortest round-trip form (extra_float_digits = 1, set on every
 * connection): pass that text through when it is a plain JSON number, which saves a
 * strtod/printf pair per day. Anything else falls back to numfmt_double(). */
static bool rates_plain_number(const char *t)
{
    size_t len = strlen(t);
    if (len == 0 || len > 24 || t[0] == '.' || t[len - 1] == '.')
        return false;
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.')
            dots++;
        else if (t[i] < '0' || t[i] > '9')
            return false;
    }
    return dots <= 1 && !(t[0] == '0' && len > 1 && t[1] != '.');
}

char *rates_render(int32_t date_from, int32_t date_to, const struct rates_day *days, size_t ndays,
                   size_t *len)
{
    struct dynbuf b;
    /* ~50 bytes a day; the span is capped by max_span_days. */
    dynbuf_init(&b, (size_t)64 * 1024 * 1024);
    int rc = dynbuf_adds(&b, "{\"rates\": [");
    size_t k = 0;
    for (int32_t d = date_to; rc == 0 && d >= date_from; d--) {
        char day[11];
        date_format(d, day);
        while (k < ndays && date_from + days[k].offset > d)
            k++;
        const char *sep = d == date_to ? "" : ", ";
        /* Plain appends, no printf: this loop runs for every day of every response. */
        char entry[160];
        size_t n = 0;
        entry_add(entry, &n, sep);
        if (k < ndays && date_from + days[k].offset == d) {
            char count[24];
            snprintf(count, sizeof count, "%ld", days[k].count);
            entry_add(entry, &n, "{\"count\": ");
            entry_add(entry, &n, count);
            entry_add(entry, &n, ", \"day\": \"");
            entry_add(entry, &n, day);
            entry_add(entry, &n, "\", \"price\": ");
            if (days[k].count < RATES_MIN_COUNT) {
                entry_add(entry, &n, "null");
            } else if (rates_plain_number(days[k].avg_text)) {
                entry_add(entry, &n, days[k].avg_text);
            } else {
                char price[40];
                numfmt_double(days[k].avg, price, sizeof price);
                entry_add(entry, &n, price);
            }
            entry_add(entry, &n, "}");
        } else {
            entry_add(entry, &n, "{\"count\": null, \"day\": \"");
            entry_add(entry, &n, day);
            entry_add(entry, &n, "\", \"price\": null}");
        }
        rc = dynbuf_add(&b, entry, n);
    }
    return dynbuf_finish(&b, rc, "]}", len);
}

static void rates_send(struct http_req *req, const struct rates_query *q,
                       const struct rates_day *days, size_t ndays)
{
    size_t len;
    char *body = rates_render(q->from, q->to, days, ndays, &len);
    if (!body) {
        http_respond_error(req, 500, "Response too large");
        return;
    }
    http_respond_owned(req, 200, "application/json", body, len);
}

/* Reads the route's days on conn into a new array (*days, caller frees; *n of them) and the
 * data version. Returns 0, or -1 after answering req. */
static int rates_read(struct http_req *req, struct db_conn *conn, const struct rates_query *q,
                      struct rates_day **days, size_t *n, int64_t *version)
{
    char from[11], to[11];
    date_format(q->from, from);
    date_format(q->to, to);
    const char *params[4] = { q->orig, q->dest, from, to };
    PGresult *res = dbread_exec(req, conn, "rates_daily", 4, params);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    *days = calloc((size_t)rows + 1, sizeof **days);
    if (!*days) {
        PQclear(res);
        http_respond_error(req, 500, "Out of memory");
        return -1;
    }
    *version = rows > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    *n = 0;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 1))
            continue; /* the version's row of a route without prices */
        struct rates_day *d = &(*days)[(*n)++];
        d->offset = (int32_t)strtol(PQgetvalue(res, i, 1), NULL, 10);
        d->count = strtol(PQgetvalue(res, i, 2), NULL, 10);
        const char *avg = PQgetvalue(res, i, 3);
        d->avg = rates_plain_number(avg) ? 0.0 : strtod(avg, NULL);
        str_copy(d->avg_text, sizeof d->avg_text, avg);
    }
    PQclear(res);
    return 0;
}

/* Answers from the read model (docs/readmodel.md) when it is current and not older than the
 * newest version this process knows; false: the caller asks the database. The average is
 * avg_exact(): bit for bit what the database's avg(price)::float8 gives. An unknown name has
 * no rows, as in the database. On the HTTP thread, or on a worker after a wait. */
static bool rates_from_model(struct http_req *req, struct rates_query *q)
{
    if (!APP.cfg.model)
        return false;
    if (readcache_asks_database(req) && !q->fresh) {
        q->wants_fresh = true; /* the worker asks the follower for a pass first */
        return false;
    }
    uint64_t t0 = clock_mono_ns();
    size_t span = (size_t)((long)q->to - (long)q->from + 1);
    struct model_row *rows = malloc(span * sizeof *rows);
    struct rates_day *days = calloc(span + 1, sizeof *days);
    uint64_t version = 0;
    size_t n = 0;
    bool known = false, served = false;
    /* Before the read: a pass that took in this process's last commit has applied it to the
     * model before publishing that it succeeded. */
    bool behind_commit = follow_behind_commit();
    if (rows && days &&
        follow_read(q->orig, strlen(q->orig), q->dest, strlen(q->dest), q->from, q->to, rows, span,
                    &n, &version, &known)) {
        /* Never older than an answer this process has given (the database path may have
         * answered a version the model's pass has not applied yet), nor without a commit
         * of this process. A version the cache's listener has only heard of is not one:
         * the model learns of other writers' commits by its own pass. */
        q->model_behind = (int64_t)version < readcache_served_version() || behind_commit;
        served = !q->model_behind;
    }
    if (served) {
        size_t k = 0;
        for (size_t i = n; i-- > 0;) { /* newest first */
            struct rates_day *d = &days[k];
            d->offset = rows[i].day - q->from;
            d->count = (long)rows[i].n;
            if (avg_exact(rows[i].sum, (int64_t)rows[i].n, &d->avg) == 0)
                k++;
        }
        metrics_model_read(true);
        req->model_ns = clock_mono_ns() - t0 + 1; /* never 0: the header says where it came from */
        size_t len;
        char *body = rates_render(q->from, q->to, days, k, &len);
        if (body)
            readcache_respond_now(req, &q->cache, body, len, (int64_t)version);
        else
            http_respond_error(req, 500, "Response too large");
    }
    free(rows);
    free(days);
    return served;
}

/* The model was behind a commit of this process or an answer it gave: a pass is due, so a
 * short wait usually answers from memory. */
#define RATES_MODEL_WAIT_MS 200

static void rates_work(struct http_req *req, struct db_conn *conn)
{
    struct rates_query *q = req->state;
    /* A newer version may arrive while waiting (the fold's own commit follows a write): wait
     * again for it, all within one RATES_MODEL_WAIT_MS. */
    uint64_t wait_end = clock_mono_ns() + RATES_MODEL_WAIT_MS * 1000000ull;
    while (q->model_behind) {
        uint64_t now = clock_mono_ns();
        long left_ms = now < wait_end ? (long)((wait_end - now) / 1000000ull) + 1 : 0;
        if (left_ms <= 0 || !follow_wait_version(readcache_served_version(), left_ms))
            break;
        q->model_behind = false;
        if (rates_from_model(req, q))
            return;
    }
    /* As new as the primary at this moment: a pass that began after the request. Concurrent
     * such reads share one pass (no query each); else the database path as before. */
    if (q->wants_fresh && follow_fresh(RATES_MODEL_WAIT_MS)) {
        q->fresh = true;
        if (rates_from_model(req, q))
            return;
    }
    if (readcache_before_query(req, &q->cache))
        return;
    metrics_model_read(false); /* computed by the database (a cache hit above is not) */
    struct rates_day *days = NULL;
    size_t n = 0;
    int64_t version = 0;
    int rc = rates_read(req, conn, q, &days, &n, &version);
    struct db_conn *primary = rc == 0 ? readcache_reread_conn(&q->cache, version) : NULL;
    if (primary) { /* the replica is behind a version this instance knows */
        free(days);
        days = NULL;
        rc = rates_read(req, primary, q, &days, &n, &version);
        readcache_reread_done(primary);
    }
    if (rc != 0) {
        free(days);
        readcache_abandon(&q->cache);
        return;
    }
    qsort(days, n, sizeof *days, rates_day_cmp);
    size_t len;
    char *body = rates_render(q->from, q->to, days, n, &len);
    free(days);
    if (!body) {
        readcache_abandon(&q->cache);
        http_respond_error(req, 500, "Response too large");
        return;
    }
    readcache_respond(req, &q->cache, body, len, version);
}

enum { RATES_LOC_OK = 0, RATES_LOC_INVALID = -1, RATES_LOC_BOTH = -2 };

/* Reads one location, given as key or as its alias (never both): a port code or a region
 * slug. Returns RATES_LOC_OK, RATES_LOC_INVALID (missing, empty, NUL) or RATES_LOC_BOTH.
 * A value too long to name anything is well-formed: out is then empty and *valid false. */
static int rates_location(struct http_req *req, const char *key, const char *alias, char *out,
                          bool *valid)
{
    char alt[RATES_CODE_MAX + 1];
    size_t len = 0, alt_len = 0;
    int rc = query_get(req->query, key, out, RATES_CODE_MAX + 1, &len);
    int rc_alt = query_get(req->query, alias, alt, sizeof alt, &alt_len);
    if (rc != QUERY_ABSENT && rc_alt != QUERY_ABSENT)
        return RATES_LOC_BOTH;
    if (rc == QUERY_ABSENT) {
        rc = rc_alt;
        len = alt_len;
        memcpy(out, alt, sizeof alt);
    }
    if (rc == QUERY_TOO_LONG) {
        out[0] = '\0';
        *valid = false;
        return RATES_LOC_OK;
    }
    if (rc != QUERY_FOUND || len == 0 || strlen(out) != len)
        return RATES_LOC_INVALID;
    *valid = utf8_valid(out, len);
    return RATES_LOC_OK;
}

/* Both locations, origin first; 0, or -1 after answering 400. */
static int rates_locations(struct http_req *req, struct rates_query *q, bool *valid)
{
    const struct {
        const char *key, *alias;
        char *out;
    } sides[] = {
        { "orig_code", "origin", q->orig },
        { "dest_code", "destination", q->dest },
    };
    *valid = true;
    for (size_t i = 0; i < ARRAY_LEN(sides); i++) {
        bool ok = true;
        int rc = rates_location(req, sides[i].key, sides[i].alias, sides[i].out, &ok);
        if (rc == RATES_LOC_BOTH) {
            char msg[128];
            snprintf(msg, sizeof msg, "Give %s or %s, not both", sides[i].key, sides[i].alias);
            http_respond_error(req, 400, msg);
            return -1;
        }
        if (rc != RATES_LOC_OK) {
            http_respond_error(req, 400, "Invalid location arguments");
            return -1;
        }
        *valid = *valid && ok;
    }
    return 0;
}

static int rates_date(struct http_req *req, const char *key, int32_t *days)
{
    char buf[64];
    size_t len = 0;
    if (query_get(req->query, key, buf, sizeof buf, &len) != QUERY_FOUND)
        return -1;
    return date_parse_loose(buf, len, days);
}

void rates_on_request(struct http_req *req)
{
    struct rates_query *q = http_state_new(req, sizeof *q);
    if (!q)
        return;
    if (rates_date(req, "date_from", &q->from) != 0 || rates_date(req, "date_to", &q->to) != 0) {
        http_respond_error(req, 400, "Invalid date arguments");
        return;
    }
    bool valid = true;
    if (rates_locations(req, q, &valid) != 0)
        return;
    if (q->from > q->to) {
        http_respond(req, 200, "application/json", "{\"rates\": []}", 13);
        return;
    }
    if ((long)q->to - (long)q->from + 1 > APP.cfg.max_span_days) {
        char msg[128];
        snprintf(msg, sizeof msg, "Date range too large: at most %ld days", APP.cfg.max_span_days);
        http_respond_error(req, 400, msg);
        return;
    }
    if (!valid) {
        /* No code or slug is invalid UTF-8 (or that long): every day is empty. */
        rates_send(req, q, NULL, 0);
        return;
    }
    /* The normalised request: days as numbers, the locations whichever key named them. */
    char key[CACHE_KEY_MAX + 1];
    snprintf(key, sizeof key, "r|%ld|%ld|%s|%s", (long)q->from, (long)q->to, q->orig, q->dest);
    if (readcache_lookup(req, &q->cache, key) || rates_from_model(req, q))
        return;
    (void)http_defer(req, rates_work, readcache_defer_flags(&q->cache));
}
