/* regions.c: GET /regions and GET /ports. Both read small tables on a worker and answer JSON. */
#include "regions.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dbread.h"
#include "dynbuf.h"
#include "http.h"
#include "query.h"
#include "readcache.h"
#include "utf8.h"

#define REGIONS_BODY_MAX ((size_t)16 * 1024 * 1024)

/* Roots first, each followed by its subtree, siblings by slug (the path orders it). The depth
 * bound is region_ports()'s (db/migrations/0006); regions on a cycle have no root and are not
 * listed, and the bound keeps deeper chains from running away. */
static const char regions_tree_sql[] =
    "WITH RECURSIVE t(slug, name, parent_slug, depth, path) AS ("
    " SELECT r.slug, r.name, r.parent_slug, 0, ARRAY[r.slug] FROM public.regions r"
    " WHERE r.parent_slug IS NULL"
    " UNION"
    " SELECT r.slug, r.name, r.parent_slug, t.depth + 1, t.path || r.slug FROM t"
    " JOIN public.regions r ON r.parent_slug = t.slug WHERE t.depth < 64"
    ") SELECT t.slug, t.name, t.parent_slug, t.depth, v.version"
    " FROM public.rates_data_version v LEFT JOIN t ON true WHERE v.id = 1 ORDER BY t.path";

/* One row per port under $1 at any depth, after a first column that says whether the region
 * exists; a known region without ports gives one row with a NULL code (so 200 [] and not 404).
 * Every statement here also returns the data version (db/migrations/0012) as its last column,
 * read in the same statement (the same snapshot) as the rows; the tree and the list of all
 * ports give one row of NULLs besides it when empty. */
static const char regions_ports_sql[] =
    "SELECT k.known, p.code, p.name, p.parent_slug, k.version"
    " FROM (SELECT EXISTS (SELECT 1 FROM public.regions r WHERE r.slug = $1::text) AS known,"
    " (SELECT v.version FROM public.rates_data_version v WHERE v.id = 1) AS version) k"
    " LEFT JOIN public.ports p ON p.code IN (SELECT public.region_ports($1::text))"
    " ORDER BY p.code";

static const char regions_ports_all_sql[] =
    "SELECT true, p.code, p.name, p.parent_slug, v.version FROM public.rates_data_version v"
    " LEFT JOIN public.ports p ON true WHERE v.id = 1 ORDER BY p.code";

struct regions_col {
    const char *key;
    bool number; /* written bare (an integer column), else a JSON string */
};

static const struct regions_col regions_tree_cols[] = {
    { "slug", false },
    { "name", false },
    { "parent_slug", false },
    { "depth", true },
};
/* The first column of the ports statements is the known flag, not output. */
static const struct regions_col regions_port_cols[] = {
    { NULL, false },
    { "code", false },
    { "name", false },
    { "parent_slug", false },
};

/* The column of the data version in each statement's rows. */
#define REGIONS_TREE_VERSION 4
#define REGIONS_PORTS_VERSION 4

struct regions_query {
    char region[REGIONS_SLUG_MAX + 1];
    bool by_region;
    struct readcache_req cache;
};

void regions_init(void)
{
    db_register_statement("regions_tree", regions_tree_sql, 0);
    db_register_statement("regions_ports", regions_ports_sql, 1);
    db_register_statement("regions_ports_all", regions_ports_all_sql, 0);
}

/* Renders {"<list>": [{...}, ...]} from the rows of res, skipping rows whose column first is
 * NULL, columns first..ncols-1 keyed by cols. Returns the body (caller frees) or NULL. */
static char *regions_render(const PGresult *res, const char *list, const struct regions_col *cols,
                            int first, int ncols, size_t *len)
{
    struct dynbuf b;
    dynbuf_init(&b, REGIONS_BODY_MAX);
    int rc = dynbuf_printf(&b, "{\"%s\": [", list);
    bool any = false;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, first))
            continue;
        rc = dynbuf_adds(&b, any ? ", {" : "{");
        any = true;
        for (int c = first; rc == 0 && c < ncols; c++) {
            const char *v = PQgetvalue(res, i, c);
            rc = dynbuf_printf(&b, "%s\"%s\": ", c == first ? "" : ", ", cols[c].key);
            if (rc != 0)
                break;
            if (PQgetisnull(res, i, c))
                rc = dynbuf_adds(&b, "null");
            else if (cols[c].number)
                rc = dynbuf_adds(&b, v);
            else
                rc = dynbuf_add_json_string(&b, v, strlen(v));
        }
        if (rc == 0)
            rc = dynbuf_adds(&b, "}");
    }
    return dynbuf_finish(&b, rc, "]}", len);
}

/* The data version in column col of the first row (0 when unknown). */
static int64_t regions_version(const PGresult *res, int col)
{
    if (PQntuples(res) < 1 || PQnfields(res) <= col || PQgetisnull(res, 0, col))
        return 0;
    return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* Answers 200 with the rendered rows (ownership of the body passes to req), through the
 * cache. */
static void regions_send(struct http_req *req, struct readcache_req *rc, const PGresult *res,
                         const char *list, const struct regions_col *cols, int first, int ncols)
{
    size_t len;
    char *body = regions_render(res, list, cols, first, ncols, &len);
    if (!body) {
        readcache_abandon(rc);
        http_respond_error(req, 500, "Response too large");
        return;
    }
    readcache_respond(req, rc, body, len, regions_version(res, ncols));
}

/* Runs stmt for q; when the replica that answered is behind a version this instance knows,
 * once more on the primary. NULL once an error answer is set (the cache's flight ended). */
static PGresult *regions_exec(struct http_req *req, struct regions_query *q, struct db_conn *conn,
                              const char *stmt, int nparams, const char *const *params,
                              int version_col)
{
    PGresult *res = dbread_exec(req, conn, stmt, nparams, params);
    struct db_conn *primary =
        res ? readcache_reread_conn(&q->cache, regions_version(res, version_col)) : NULL;
    if (primary) {
        PQclear(res);
        res = dbread_exec(req, primary, stmt, nparams, params);
        readcache_reread_done(primary);
    }
    if (!res)
        readcache_abandon(&q->cache);
    return res;
}

static void regions_tree_work(struct http_req *req, struct db_conn *conn)
{
    struct regions_query *q = req->state;
    if (readcache_before_query(req, &q->cache))
        return;
    PGresult *res = regions_exec(req, q, conn, "regions_tree", 0, NULL, REGIONS_TREE_VERSION);
    if (!res)
        return;
    regions_send(req, &q->cache, res, "regions", regions_tree_cols, 0,
                 (int)ARRAY_LEN(regions_tree_cols));
    PQclear(res);
}

static void regions_ports_work(struct http_req *req, struct db_conn *conn)
{
    struct regions_query *q = req->state;
    if (readcache_before_query(req, &q->cache))
        return;
    const char *params[1] = { q->region };
    const char *stmt = q->by_region ? "regions_ports" : "regions_ports_all";
    PGresult *res =
        regions_exec(req, q, conn, stmt, q->by_region ? 1 : 0, params, REGIONS_PORTS_VERSION);
    if (!res)
        return;
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        readcache_abandon(&q->cache);
        http_respond_error(req, 404, "Unknown region");
    } else {
        regions_send(req, &q->cache, res, "ports", regions_port_cols, 1,
                     (int)ARRAY_LEN(regions_port_cols));
    }
    PQclear(res);
}

void regions_on_request(struct http_req *req)
{
    struct regions_query *q = http_state_new(req, sizeof *q);
    if (!q)
        return;
    if (readcache_lookup(req, &q->cache, "g"))
        return;
    (void)http_defer(req, regions_tree_work, readcache_defer_flags(&q->cache));
}

void regions_ports_on_request(struct http_req *req)
{
    struct regions_query *q = http_state_new(req, sizeof *q);
    if (!q)
        return;
    size_t len = 0;
    int rc = query_get(req->query, "region", q->region, sizeof q->region, &len);
    if (rc == QUERY_FOUND && (len == 0 || strlen(q->region) != len)) {
        http_respond_error(req, 400, "Invalid region argument");
        return;
    }
    if (rc == QUERY_TOO_LONG || (rc == QUERY_FOUND && !utf8_valid(q->region, len))) {
        /* No slug is that long or invalid UTF-8 (PostgreSQL would refuse the bytes). */
        http_respond_error(req, 404, "Unknown region");
        return;
    }
    q->by_region = rc == QUERY_FOUND;
    char key[CACHE_KEY_MAX + 1];
    snprintf(key, sizeof key, q->by_region ? "p|%s" : "p*", q->region);
    if (readcache_lookup(req, &q->cache, key))
        return;
    (void)http_defer(req, regions_ports_work, readcache_defer_flags(&q->cache));
}
