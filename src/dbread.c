/* dbread.c: runs a read-only prepared statement for a route and maps its failures to answers. */
#include "dbread.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "db.h"
#include "http.h"
#include "metrics.h"
#include "retry.h"

/* One attempt: the result, or NULL with err set (and *broken when the connection died). */
static PGresult *dbread_try(struct db_conn *conn, const char *stmt, int nparams,
                            const char *const *params, bool *broken, char *err, size_t errcap)
{
    uint64_t t0 = clock_mono_ns();
    PGresult *res = PQexecPrepared(conn->pg, stmt, nparams, params, NULL, NULL, 0);
    metrics_db_query(clock_mono_ns() - t0);
    *broken = false;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    db_error_copy(conn, res, err, errcap);
    *broken = db_conn_broken(conn);
    PQclear(res);
    metrics_db_error();
    return NULL;
}

/* A read that preferred the primary (WORK_DB_PREFER) and found it dead: one try on a replica
 * (req->fell_back tells the response cache not to store the answer). */
static PGresult *dbread_on_replica(struct http_req *req, const char *stmt, int nparams,
                                   const char *const *params, bool *broken, char *err,
                                   size_t errcap)
{
    struct db_conn *rconn = NULL;
    char perr[256];
    if (db_pool_acquire(APP.read_pool, APP.cfg.pool_wait_ms, &rconn, perr, sizeof perr) != DB_OK)
        return NULL;
    PGresult *res = dbread_try(rconn, stmt, nparams, params, broken, err, errcap);
    if (!res && *broken && db_conn_reconnect(APP.read_pool, rconn, perr, sizeof perr) == 0)
        res = dbread_try(rconn, stmt, nparams, params, broken, err, errcap);
    db_pool_release(APP.read_pool, rconn);
    if (res)
        req->fell_back = true;
    return res;
}

PGresult *dbread_exec(struct http_req *req, struct db_conn *conn, const char *stmt, int nparams,
                      const char *const *params)
{
    char err[512];
    bool broken = false;
    uint64_t t0 = clock_mono_ns();
    PGresult *res = dbread_try(conn, stmt, nparams, params, &broken, err, sizeof err);
    /* A dead connection is retried on a new one, on src/retry.h's schedule (at once, then
     * 100, 200 and 400 ms apart, within RETRY_WINDOW_MS of the failure). */
    uint64_t failed_at = clock_mono_ns();
    for (int tries = 0; !res && broken; tries++) {
        char cerr[512];
        long pause_ms = retry_pause_ms(tries, (long)((clock_mono_ns() - failed_at) / 1000000ull));
        if (pause_ms < 0)
            break;
        if (pause_ms > 0)
            nanosleep(&(struct timespec){ .tv_sec = pause_ms / 1000,
                                          .tv_nsec = pause_ms % 1000 * 1000000L },
                      NULL);
        if (db_conn_reconnect(APP.read_pool, conn, cerr, sizeof cerr) == 0) {
            res = dbread_try(conn, stmt, nparams, params, &broken, err, sizeof err);
        } else {
            str_copy(err, sizeof err, cerr);
            broken = true;
        }
    }
    if (!res && broken && (req->work_flags & WORK_DB_PREFER) && APP.read_pool != APP.query_pool)
        res = dbread_on_replica(req, stmt, nparams, params, &broken, err, sizeof err);
    req->db_ns += clock_mono_ns() - t0;
    if (res)
        return res;
    str_copy(req->note, sizeof req->note, err);
    if (broken) {
        http_add_header(req, "Retry-After", "1");
        http_respond_error(req, 503, "Database unavailable");
    } else if (strstr(err, "statement timeout")) {
        http_respond_error(req, 503, "Query timed out");
    } else {
        http_respond_error(req, 500, "Database error");
    }
    return NULL;
}
