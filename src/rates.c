/* rates.c: GET /rates. Validation happens on the HTTP thread; the query runs on a worker.
 * The database returns only days that have prices (an index range scan on the route);
 * the calendar, the nulls and the "fewer than 3" rule are applied here. */
#include "rates.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "date.h"
#include "db.h"
#include "dynbuf.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "numfmt.h"
#include "query.h"
#include "utf8.h"

#define RATES_CODE_MAX 256
#define RATES_MIN_COUNT 3

struct rates_query {
    int32_t from, to;
    char orig[RATES_CODE_MAX + 1];
    char dest[RATES_CODE_MAX + 1];
};

static const char rates_sql[] =
    "SELECT (day - $3::date) AS off, count(*) AS n, avg(price)::float8 AS avg "
    "FROM public.prices "
    "WHERE orig_code = $1 AND dest_code = $2 AND day >= $3::date AND day <= $4::date "
    "GROUP BY day ORDER BY day DESC";

void rates_init(void)
{
    db_register_statement("rates_by_day", rates_sql, 4);
}

char *rates_render(int32_t date_from, int32_t date_to, const struct rates_day *days,
                   size_t ndays, size_t *len)
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
        if (k < ndays && date_from + days[k].offset == d) {
            char price[40] = "null";
            if (days[k].count >= RATES_MIN_COUNT)
                numfmt_double(days[k].avg, price, sizeof price);
            rc = dynbuf_printf(&b, "%s{\"count\": %ld, \"day\": \"%s\", \"price\": %s}", sep,
                               days[k].count, day, price);
        } else {
            rc = dynbuf_printf(&b, "%s{\"count\": null, \"day\": \"%s\", \"price\": null}", sep,
                               day);
        }
    }
    if (rc == 0)
        rc = dynbuf_adds(&b, "]}");
    if (rc != 0) {
        dynbuf_free(&b);
        return NULL;
    }
    return dynbuf_take(&b, len);
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

/* Runs the query once; returns 0, or -1 with err set (and *broken when the connection died). */
static int rates_query_run(struct db_conn *conn, const struct rates_query *q,
                           struct rates_day **out, size_t *nout, bool *broken, char *err,
                           size_t errcap)
{
    char from[11], to[11];
    date_format(q->from, from);
    date_format(q->to, to);
    const char *params[4] = { q->orig, q->dest, from, to };
    uint64_t t0 = clock_mono_ns();
    PGresult *res = PQexecPrepared(conn->pg, "rates_by_day", 4, params, NULL, NULL, 0);
    metrics_db_query(clock_mono_ns() - t0);
    *broken = false;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error_copy(conn, res, err, errcap);
        *broken = db_conn_broken(conn);
        PQclear(res);
        metrics_db_error();
        return -1;
    }
    int n = PQntuples(res);
    struct rates_day *days = calloc((size_t)n + 1, sizeof *days);
    if (!days) {
        PQclear(res);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        days[i].offset = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
        days[i].count = strtol(PQgetvalue(res, i, 1), NULL, 10);
        days[i].avg = strtod(PQgetvalue(res, i, 2), NULL);
    }
    PQclear(res);
    *out = days;
    *nout = (size_t)n;
    return 0;
}

static void rates_work(struct http_req *req, struct db_conn *conn)
{
    const struct rates_query *q = req->state;
    struct rates_day *days = NULL;
    size_t ndays = 0;
    char err[512];
    bool broken = false;
    uint64_t t0 = clock_mono_ns();
    int rc = rates_query_run(conn, q, &days, &ndays, &broken, err, sizeof err);
    if (rc != 0 && broken) {
        /* The server closed this connection (a restart, a failover): reads are idempotent, so
         * try once more on a fresh connection before answering 503. */
        char cerr[512];
        if (db_conn_reconnect(APP.read_pool, conn, cerr, sizeof cerr) == 0)
            rc = rates_query_run(conn, q, &days, &ndays, &broken, err, sizeof err);
        else
            str_copy(err, sizeof err, cerr);
    }
    req->db_ns += clock_mono_ns() - t0;
    if (rc != 0) {
        str_copy(req->note, sizeof req->note, err);
        if (broken) {
            http_add_header(req, "Retry-After", "1");
            http_respond_error(req, 503, "Database unavailable");
        } else if (strstr(err, "statement timeout")) {
            http_respond_error(req, 503, "Query timed out");
        } else {
            http_respond_error(req, 500, "Database error");
        }
        free(days);
        return;
    }
    rates_send(req, q, days, ndays);
    free(days);
}

/* Reads one code parameter: 0 ok, -1 invalid (missing, empty, NUL, too long). */
static int rates_code(struct http_req *req, const char *key, char *out, bool *valid_utf8)
{
    size_t len = 0;
    int rc = query_get(req->query, key, out, RATES_CODE_MAX + 1, &len);
    if (rc == QUERY_TOO_LONG) {
        /* Longer than any code: it cannot match, but it is a well-formed request. */
        out[0] = '\0';
        *valid_utf8 = false;
        return 0;
    }
    if (rc != QUERY_FOUND || len == 0 || strlen(out) != len)
        return -1;
    *valid_utf8 = utf8_valid(out, len);
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
    struct rates_query *q = calloc(1, sizeof *q);
    if (!q) {
        http_respond_error(req, 500, "Out of memory");
        return;
    }
    req->state = q;
    if (rates_date(req, "date_from", &q->from) != 0 || rates_date(req, "date_to", &q->to) != 0) {
        http_respond_error(req, 400, "Invalid date arguments");
        return;
    }
    bool orig_ok = true, dest_ok = true;
    if (rates_code(req, "orig_code", q->orig, &orig_ok) != 0 ||
        rates_code(req, "dest_code", q->dest, &dest_ok) != 0) {
        http_respond_error(req, 400, "Invalid location arguments");
        return;
    }
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
    if (!orig_ok || !dest_ok) {
        /* No port code is invalid UTF-8 (or that long): every day is empty. */
        rates_send(req, q, NULL, 0);
        return;
    }
    (void)http_defer(req, rates_work, WORK_DB);
}

void rates_on_free(struct http_req *req, _Bool completed)
{
    free(req->state);
    req->state = NULL;
}
