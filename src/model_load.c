/* model_load.c: the read model from PostgreSQL (model_load.h). Rows come as text and are
 * parsed with strtoll; codes are looked up in the model's node map. Ownership: every
 * PGresult is cleared here; deltas are a buffer of at most MODEL_LOAD_CHUNK rows. */
#include "model_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_nodes.h"

/* Rows per FETCH and per model_apply() of a load. */
#define MODEL_LOAD_CHUNK 100000
#define LOAD_STR_(x) #x
#define LOAD_STR(x) LOAD_STR_(x)

static void load_err(char *err, size_t cap, const char *what, PGconn *pg, const PGresult *r)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(pg);
    snprintf(err, cap, "%s: %s", what, msg && *msg ? msg : "no result");
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

/* Runs sql; returns the result when it has the wanted status, else NULL with err set. */
static PGresult *load_exec(PGconn *pg, const char *sql, ExecStatusType want, const char *what,
                           char *err, size_t cap)
{
    PGresult *r = PQexec(pg, sql);
    if (r && PQresultStatus(r) == want)
        return r;
    load_err(err, cap, what, pg, r);
    PQclear(r);
    return NULL;
}

enum model_load_status model_load_mark(PGconn *pg, struct model_mark *out, char *err, size_t cap)
{
    PGresult *r = load_exec(pg,
                            "SELECT d.version, s.epoch, s.pruned_version, f.folded_version "
                            "FROM public.rates_data_version d, public.rates_model_state s, "
                            "public.rates_fold_state f WHERE d.id = 1 AND s.id = 1 AND f.id = 1",
                            PGRES_TUPLES_OK, "model mark", err, cap);
    if (!r)
        return MODEL_LOAD_DB;
    if (PQntuples(r) != 1) {
        snprintf(err, cap,
                 "model mark: rates_data_version, rates_model_state or "
                 "rates_fold_state has no row");
        PQclear(r);
        return MODEL_LOAD_DB;
    }
    out->version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    out->epoch = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    out->pruned = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    out->folded = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    return MODEL_LOAD_OK;
}

static enum model_load_status load_nodes(PGconn *pg, struct model_nodes **out, char *err,
                                         size_t cap)
{
    *out = NULL;
    PGresult *r = load_exec(pg, "SELECT code, node FROM public.rates_nodes", PGRES_TUPLES_OK,
                            "model nodes", err, cap);
    if (!r)
        return MODEL_LOAD_DB;
    struct model_nodes *nodes = model_nodes_new();
    enum model_load_status st = nodes ? MODEL_LOAD_OK : MODEL_LOAD_NOMEM;
    int rows = PQntuples(r);
    for (int i = 0; st == MODEL_LOAD_OK && i < rows; i++)
        if (model_nodes_add(nodes, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
                            PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1)) != 0)
            st = MODEL_LOAD_MISMATCH;
    PQclear(r);
    if (st == MODEL_LOAD_OK && model_nodes_finish(nodes) != 0)
        st = MODEL_LOAD_NOMEM;
    if (st != MODEL_LOAD_OK) {
        snprintf(err, cap, "model nodes: %s",
                 st == MODEL_LOAD_NOMEM ? "out of memory" : "a row does not fit the node map");
        model_nodes_free(nodes);
        return st;
    }
    *out = nodes;
    return MODEL_LOAD_OK;
}

/* Turns rows (orig_code, dest_code, day number, n, total[, ...]) into deltas. A code the map
 * does not know gives an id that model_apply() refuses (MODEL_UNKNOWN_PORT). */
static void load_deltas(struct model *m, const PGresult *r, struct model_delta *d)
{
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        int64_t o = model_port_id(m, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
        int64_t t = model_port_id(m, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
        d[i] = (struct model_delta){
            .orig = o < 0 ? UINT32_MAX : (uint32_t)o,
            .dest = t < 0 ? UINT32_MAX : (uint32_t)t,
            .day = (int32_t)strtol(PQgetvalue(r, i, 2), NULL, 10),
            .n = strtoll(PQgetvalue(r, i, 3), NULL, 10),
            .sum = strtoll(PQgetvalue(r, i, 4), NULL, 10),
        };
    }
}

static enum model_load_status load_status(enum model_status st, char *err, size_t cap)
{
    switch (st) {
    case MODEL_OK:
        return MODEL_LOAD_OK;
    case MODEL_NOMEM:
        snprintf(err, cap, "model: out of memory");
        return MODEL_LOAD_NOMEM;
    case MODEL_UNKNOWN_PORT:
        snprintf(err, cap, "model: a change names a port the node map does not know");
        return MODEL_LOAD_MISMATCH;
    case MODEL_NEGATIVE:
        snprintf(err, cap, "model: a change does not fit (applied twice or missed)");
        return MODEL_LOAD_MISMATCH;
    }
    return MODEL_LOAD_MISMATCH;
}

static bool load_over(struct model *m, size_t max_bytes, char *err, size_t cap)
{
    if (max_bytes == 0)
        return false;
    struct model_stats s;
    model_stats(m, &s);
    if (s.bytes <= max_bytes)
        return false;
    snprintf(err, cap, "model: %zu bytes (%zu keys) over RATES_MODEL_MAX_BYTES %zu", s.bytes,
             s.keys, max_bytes);
    return true;
}

/* Applies rows chunk by chunk from an open cursor. */
static enum model_load_status load_cursor(PGconn *pg, struct model *m, const char *fetch,
                                          uint64_t version, size_t max_bytes, char *err, size_t cap)
{
    struct model_delta *d = malloc(MODEL_LOAD_CHUNK * sizeof *d);
    if (!d) {
        snprintf(err, cap, "model: out of memory");
        return MODEL_LOAD_NOMEM;
    }
    enum model_load_status st = MODEL_LOAD_OK;
    for (;;) {
        PGresult *r = load_exec(pg, fetch, PGRES_TUPLES_OK, "model rows", err, cap);
        if (!r) {
            st = MODEL_LOAD_DB;
            break;
        }
        int rows = PQntuples(r);
        load_deltas(m, r, d);
        PQclear(r);
        if (rows == 0)
            break;
        st = load_status(model_apply(m, d, (size_t)rows, version), err, cap);
        if (st == MODEL_LOAD_OK && load_over(m, max_bytes, err, cap))
            st = MODEL_LOAD_TOO_LARGE;
        if (st != MODEL_LOAD_OK || rows < MODEL_LOAD_CHUNK)
            break;
    }
    free(d);
    return st;
}

enum model_load_status model_load_snapshot(PGconn *pg, const struct model_mark *mark,
                                           size_t max_bytes, struct model **out, char *err,
                                           size_t cap)
{
    *out = NULL;
    struct model_nodes *nodes = NULL;
    enum model_load_status st = load_nodes(pg, &nodes, err, cap);
    if (st != MODEL_LOAD_OK)
        return st;
    struct model *m = model_new(nodes, 0);
    if (!m) {
        snprintf(err, cap, "model: out of memory");
        return MODEL_LOAD_NOMEM;
    }
    PGresult *r = load_exec(pg,
                            "DECLARE rates_model_load NO SCROLL CURSOR FOR "
                            "SELECT p.orig_code, p.dest_code, p.day - DATE '1970-01-01', "
                            "count(*), sum(p.price) FROM public.prices p "
                            "GROUP BY p.orig_code, p.dest_code, p.day",
                            PGRES_COMMAND_OK, "model snapshot", err, cap);
    if (!r) {
        model_free(m);
        return MODEL_LOAD_DB;
    }
    PQclear(r);
    st = load_cursor(pg, m, "FETCH " LOAD_STR(MODEL_LOAD_CHUNK) " FROM rates_model_load",
                     (uint64_t)mark->version, max_bytes, err, cap);
    PQclear(PQexec(pg, "CLOSE rates_model_load"));
    if (st != MODEL_LOAD_OK) {
        model_free(m);
        return st;
    }
    /* An empty table applies nothing: the version is set here. */
    if (model_apply(m, NULL, 0, (uint64_t)mark->version) != MODEL_OK) {
        model_free(m);
        snprintf(err, cap, "model: out of memory");
        return MODEL_LOAD_NOMEM;
    }
    *out = m;
    return MODEL_LOAD_OK;
}

enum model_load_status model_load_follow(PGconn *pg, struct model *m, const struct model_mark *mark,
                                         size_t max_bytes, char *err, size_t cap)
{
    uint64_t have = model_version(m);
    if ((int64_t)have >= mark->version)
        return MODEL_LOAD_OK;
    char since[24];
    snprintf(since, sizeof since, "%llu", (unsigned long long)have);
    const char *params[1] = { since };
    uint64_t t0 = clock_mono_ns();
    /* Both tables: the fold moves a row from one to the other in one transaction. When the
     * model is at least as new as the fold, nothing it lacks has moved: the log alone (the
     * usual case, since a model follows each commit at once and the fold later). */
#define LOAD_CHANGES(table)                                                             \
    "SELECT orig_code, dest_code, day - DATE '1970-01-01', n, total FROM public." table \
    " WHERE version > $1::bigint"
    static const char log_sql[] = LOAD_CHANGES("rates_changes");
    static const char both_sql[] =
        LOAD_CHANGES("rates_changes") " UNION ALL " LOAD_CHANGES("rates_changes_folded");
#undef LOAD_CHANGES
    PGresult *r = PQexecParams(pg, mark->folded > (int64_t)have ? both_sql : log_sql, 1, NULL,
                               params, NULL, NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        load_err(err, cap, "model changes", pg, r);
        PQclear(r);
        return MODEL_LOAD_DB;
    }
    size_t rows = (size_t)PQntuples(r);
    struct model_delta *d = malloc((rows ? rows : 1) * sizeof *d);
    if (!d) {
        PQclear(r);
        snprintf(err, cap, "model: out of memory");
        return MODEL_LOAD_NOMEM;
    }
    uint64_t t1 = clock_mono_ns();
    load_deltas(m, r, d);
    PQclear(r);
    uint64_t t2 = clock_mono_ns();
    enum model_load_status st =
        load_status(model_apply(m, d, rows, (uint64_t)mark->version), err, cap);
    free(d);
    LOG_DEBUG("model: %zu change rows to version %lld: query %.1f ms, parse %.1f ms, apply %.1f ms",
              rows, (long long)mark->version, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
              (double)(clock_mono_ns() - t2) / 1e6);
    if (st == MODEL_LOAD_OK && load_over(m, max_bytes, err, cap))
        st = MODEL_LOAD_TOO_LARGE;
    return st;
}
