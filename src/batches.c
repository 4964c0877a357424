/* batches.c: GET /batches/{id} (the ledger record) and DELETE /batches/{id} (retraction: the
 * batch's prices are deleted and its record marked retracted, in one transaction). Both need
 * an ingest token, like POST /batches: the ledger names tokens and keys. A batch belongs to
 * the token name that sent it: another token's batch is answered 404 exactly like a missing
 * one (its existence is not revealed), except for a token with the admin scope (auth.h). */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "sqlstate.h"

struct batches_req {
    char id[24];
    char owner[80]; /* the token's name; "" for an admin (any batch) */
    bool retract;
};

static const char batches_record_sql[] =
    "SELECT json_build_object('batch_id', id, 'status', status, 'rows', rows, 'bytes', bytes,"
    " 'token_name', token_name, 'idempotency_key', idempotency_key,"
    " 'content_type', content_type, 'body_sha256', body_sha256, 'http_status', http_status,"
    " 'received_at', received_at, 'committed_at', committed_at, 'retracted_at', retracted_at,"
    " 'retracted_rows', retracted_rows, 'duration_ms', duration_ms, 'error', error,"
    " 'error_count', error_count)::text FROM public.batches"
    " WHERE id = $1 AND ($2::text IS NULL OR token_name = $2)";

static void batches_db_error(struct http_req *req, struct db_conn *conn, PGresult *res)
{
    db_error_copy(conn, res, req->note, sizeof req->note);
    metrics_db_error();
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* The same map as POST /batches (sqlstate.h): gone, broken, read only, or busy (a lock
     * or statement timeout, a deadlock) is retryable. */
    enum sqlstate_kind k = sqlstate_classify(state, db_conn_broken(conn));
    if (sqlstate_status(k) == 503)
        http_add_header(req, "Retry-After", "1");
    http_respond_error(req, sqlstate_status(k) == 503 ? 503 : 500, sqlstate_message(k));
}

/* Runs sql with parameters $1 = id and $2 = owner (NULL when owner is NULL or ""), or with
 * none when id is NULL. */
static PGresult *batches_exec(struct db_conn *conn, const char *sql, const char *id,
                              const char *owner)
{
    const char *p[2] = { id, owner && owner[0] ? owner : NULL };
    int n = owner ? 2 : 1;
    uint64_t t0 = clock_mono_ns();
    PGresult *res =
        id ? PQexecParams(conn->pg, sql, n, NULL, p, NULL, NULL, 0) : PQexec(conn->pg, sql);
    metrics_db_query(clock_mono_ns() - t0);
    return res;
}

/* Retracts a committed batch. Returns 0 (done, or nothing to do), or -1 with a response set. */
static int batches_retract(struct http_req *req, struct db_conn *conn, const char *id,
                           const char *owner)
{
    char sql[96];
    snprintf(sql, sizeof sql, "BEGIN; SET LOCAL statement_timeout = %ld",
             APP.cfg.batch_statement_timeout_ms);
    PGresult *res = batches_exec(conn, sql, NULL, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto db_fail;
    PQclear(res);
    res = batches_exec(conn,
                       "SELECT status FROM public.batches WHERE id = $1"
                       " AND ($2::text IS NULL OR token_name = $2) FOR UPDATE",
                       id, owner);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto db_fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        http_respond_error(req, 404, "No such batch");
        return -1; /* the pool rolls back */
    }
    char status[16];
    str_copy(status, sizeof status, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (strcmp(status, "retracted") == 0) {
        res = batches_exec(conn, "ROLLBACK", NULL, NULL);
        PQclear(res);
        return 0; /* DELETE is idempotent: answer with the record */
    }
    if (strcmp(status, "committed") != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "Only a committed batch can be retracted (this one is %s)",
                 status);
        http_respond_error(req, 409, msg);
        return -1;
    }
    res = batches_exec(conn, "DELETE FROM public.prices WHERE batch_id = $1", id, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto db_fail;
    char rows[24];
    str_copy(rows, sizeof rows, PQcmdTuples(res));
    PQclear(res);
    const char *p[2] = { id, rows };
    res = PQexecParams(conn->pg,
                       "UPDATE public.batches SET status = 'retracted', retracted_at = now(),"
                       " retracted_rows = $2 WHERE id = $1",
                       2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto db_fail;
    PQclear(res);
    res = batches_exec(conn, "COMMIT", NULL, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        goto db_fail;
    PQclear(res);
    metrics_batch_done(BATCH_RETRACTED, 0, 0, 0);
    req->write_rows = strtoull(rows, NULL, 10);
    LOG_INFO("batch %s retracted (%s rows)", id, rows);
    return 0;
db_fail:
    batches_db_error(req, conn, res);
    PQclear(res);
    return -1;
}

static void batches_work(struct http_req *req, struct db_conn *conn)
{
    const struct batches_req *q = req->state;
    uint64_t t0 = clock_mono_ns();
    if (q->retract && batches_retract(req, conn, q->id, q->owner) != 0)
        goto done;
    PGresult *res = batches_exec(conn, batches_record_sql, q->id, q->owner);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        batches_db_error(req, conn, res);
    } else if (PQntuples(res) == 0) {
        http_respond_error(req, 404, "No such batch");
    } else {
        http_respond(req, 200, "application/json", PQgetvalue(res, 0, 0),
                     (size_t)PQgetlength(res, 0, 0));
    }
    PQclear(res);
done:
    req->db_ns += clock_mono_ns() - t0;
}

void batches_on_request(struct http_req *req)
{
    char token[80];
    unsigned scopes = 0;
    int a = auth_check(http_header(req, "Authorization"), token, sizeof token, &scopes);
    if (a == AUTH_DISABLED) {
        http_respond_error(req, 403, "Ingestion is disabled: no ingest token is configured");
        return;
    }
    if (a != AUTH_OK) {
        http_add_header(req, "WWW-Authenticate",
                        a == AUTH_INVALID ? "Bearer realm=\"rates\", error=\"invalid_token\""
                                          : "Bearer realm=\"rates\"");
        http_respond_error(req, 401, a == AUTH_INVALID ? "Invalid token" : "Bearer token required");
        return;
    }
    const char *id = req->path + strlen("/batches/");
    size_t n = strlen(id);
    bool ok = n > 0 && n <= 18 && id[0] != '0';
    for (size_t i = 0; ok && i < n; i++)
        ok = id[i] >= '0' && id[i] <= '9';
    if (!ok) {
        http_respond_error(req, 404, "No such batch");
        return;
    }
    struct batches_req *q = http_state_new(req, sizeof *q);
    if (!q)
        return;
    memcpy(q->id, id, n + 1);
    if (!(scopes & AUTH_SCOPE_ADMIN))
        str_copy(q->owner, sizeof q->owner, token);
    q->retract = req->method_bit == HTTP_DELETE;
    /* Ledger reads go in the read lane; a retraction (a DELETE of many rows) in the batch lane. */
    (void)http_defer(req, batches_work, WORK_DB | (q->retract ? WORK_LANE_BATCH : 0));
}
