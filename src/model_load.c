/* model_load.c: the read model from PostgreSQL (model_load.h). A snapshot is the prices
 * table's rows as they lie, in binary COPY (pgcopy.h), built into a model by model_build.h;
 * changes come as text rows parsed with strtoll. Codes are looked up in the node map.
 * Ownership: every PGresult and COPY buffer is freed here; deltas are one buffer of a pass's
 * change rows. */
#include "model_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model_build.h"
#include "model_nodes.h"
#include "pgcopy.h"

/* Binary COPY's dates count days from 2000-01-01, the model's from 1970-01-01. */
#define LOAD_DAYS_1970_TO_2000 10957
/* How often (in rows) a snapshot load compares the builder's bytes with the bound. */
#define LOAD_CHECK_ROWS 65536

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

/* The builder's bound while it builds: the model's own plus a quarter for its windows' room
 * (the finished model is held to max_bytes exactly by load_over()). */
static bool load_build_over(const struct model_build *b, size_t max_bytes, char *err, size_t cap)
{
    size_t bytes = model_build_bytes(b);
    if (max_bytes == 0 || bytes <= max_bytes + max_bytes / 4)
        return false;
    snprintf(err, cap, "model: over RATES_MODEL_MAX_BYTES %zu while loading (%zu bytes built)",
             max_bytes, bytes);
    return true;
}

/* One message of the COPY stream: the header first, then a row or the trailer. */
static enum model_load_status load_copy_message(struct model_build *b, const unsigned char *p,
                                                size_t len, bool *first, bool *ended, char *err,
                                                size_t cap)
{
    if (*first) {
        size_t h = pgcopy_header(p, len);
        *first = false;
        if (h == 0) {
            snprintf(err, cap, "model snapshot: the COPY stream has no binary header");
            return MODEL_LOAD_DB;
        }
        p += h;
        len -= h;
        if (len == 0)
            return MODEL_LOAD_OK;
    }
    struct pgcopy_field f[4];
    enum pgcopy_status ps = *ended ? PGCOPY_BAD : pgcopy_row(p, len, f, 4);
    int32_t day, price;
    if (ps == PGCOPY_END) {
        *ended = true;
        return MODEL_LOAD_OK;
    }
    if (ps != PGCOPY_ROW || f[0].len < 0 || f[1].len < 0 || !pgcopy_int32(&f[2], &day) ||
        !pgcopy_int32(&f[3], &price)) {
        snprintf(err, cap, "model snapshot: a row of the COPY stream does not parse");
        return MODEL_LOAD_DB;
    }
    /* 'infinity' and '-infinity' (INT32_MAX, INT32_MIN) are days the model has no place for
     * (a pass's `day - DATE '1970-01-01'` fails on them too); every finite date fits. */
    if (day == INT32_MAX || day == INT32_MIN) {
        snprintf(err, cap, "model snapshot: a price's day is infinite");
        return MODEL_LOAD_MISMATCH;
    }
    int64_t o = model_build_port(b, (const char *)f[0].data, (size_t)f[0].len);
    int64_t t = model_build_port(b, (const char *)f[1].data, (size_t)f[1].len);
    return load_status(model_build_add(b, o < 0 ? UINT32_MAX : (uint32_t)o,
                                       t < 0 ? UINT32_MAX : (uint32_t)t,
                                       (int32_t)((int64_t)day + LOAD_DAYS_1970_TO_2000), price),
                       err, cap);
}

/* Every price of the snapshot into b. The stream is read to its end even after a failure,
 * so that the connection is ready for the next statement. */
static enum model_load_status load_prices(PGconn *pg, struct model_build *b, size_t max_bytes,
                                          char *err, size_t cap)
{
    PGresult *r = load_exec(pg,
                            "COPY (SELECT orig_code, dest_code, day, price FROM public.prices) "
                            "TO STDOUT (FORMAT binary)",
                            PGRES_COPY_OUT, "model snapshot", err, cap);
    if (!r)
        return MODEL_LOAD_DB;
    PQclear(r);
    enum model_load_status st = MODEL_LOAD_OK;
    bool first = true, ended = false;
    uint64_t rows = 0;
    char *buf;
    int n;
    while ((n = PQgetCopyData(pg, &buf, 0)) > 0) {
        if (st == MODEL_LOAD_OK)
            st = load_copy_message(b, (const unsigned char *)buf, (size_t)n, &first, &ended, err,
                                   cap);
        PQfreemem(buf);
        if (st == MODEL_LOAD_OK && ++rows % LOAD_CHECK_ROWS == 0 &&
            load_build_over(b, max_bytes, err, cap))
            st = MODEL_LOAD_TOO_LARGE;
    }
    /* The COPY's own result says how it ended; n is -2 when the stream broke. */
    while ((r = PQgetResult(pg)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && st == MODEL_LOAD_OK) {
            load_err(err, cap, "model snapshot", pg, r);
            st = MODEL_LOAD_DB;
        }
        PQclear(r);
    }
    if (st == MODEL_LOAD_OK && n != -1) {
        load_err(err, cap, "model snapshot", pg, NULL);
        st = MODEL_LOAD_DB;
    }
    if (st == MODEL_LOAD_OK && !ended) {
        snprintf(err, cap, "model snapshot: the COPY stream ended without its trailer");
        st = MODEL_LOAD_DB;
    }
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
    struct model_build *b = model_build_new(nodes);
    if (!b) {
        snprintf(err, cap, "model: out of memory");
        return MODEL_LOAD_NOMEM;
    }
    st = load_prices(pg, b, max_bytes, err, cap);
    if (st != MODEL_LOAD_OK) {
        model_build_free(b);
        return st;
    }
    struct model *m;
    st = load_status(model_build_finish(b, (uint64_t)mark->version, &m), err, cap);
    if (st != MODEL_LOAD_OK)
        return st;
    if (load_over(m, max_bytes, err, cap)) {
        model_free(m);
        return MODEL_LOAD_TOO_LARGE;
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
