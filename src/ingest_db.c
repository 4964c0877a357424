/* ingest_db.c: the database side of one batch, on the batch's own pooled connection.
 *
 * Rows are COPYed, in COPY's binary format (the service has parsed every row already: the
 * backend parses no text), into a TEMP staging table (ON COMMIT DROP: no WAL, nothing left behind)
 * inside the batch's transaction; their codes were checked in memory against the ports read
 * in that same transaction, so bad rows are reported with their line numbers while the body
 * streams and never reach COPY. At the end one INSERT INTO prices ... SELECT moves them
 * (prices has no index by route any more: no sort); the statement-level trigger of
 * migration 0010 groups the batch by route and day and upserts the daily aggregate in key
 * order (docs/aggregates.md).
 * The statement-level trigger of migration 0004 then re-checks the batch's distinct codes
 * set-wise and locks them FOR KEY SHARE (the guarantee for every writer, and against a port
 * deleted meanwhile); the ledger record is inserted and the transaction commits.
 *
 * Timeouts: statement_timeout is 0 for the COPY (a slow but live stream is not killed; the
 * idle-upload timeout ends a stalled one); the set-wise INSERT (with its trigger), the ledger
 * and the commit run under the batch statement timeout, and lock_timeout bounds every lock
 * wait of the batch. The idempotency key's advisory lock is session-level and released
 * explicitly before the connection returns to the pool (a crash releases it with the
 * session); the global slot is a row lock of the transaction (migration 0014). */
#include "ingest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "app.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "portset.h"
#include "sqlstate.h"

#define INGEST_SORT_MEM \
    "64MB" /* work_mem of the set-wise INSERT and its trigger (PostgreSQL side) */

static void ingest_db_fail(struct ingest *b, const PGresult *res, const char *what)
{
    char err[512];
    db_error_copy(b->conn, res, err, sizeof err);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    metrics_db_error();
    LOG_WARN("batch %s: %s failed: %s", b->request_id, what, err);
    char msg[256];
    /* The server went away (admin shutdown, crash, failover), the link broke, or the node
     * is (being) demoted to a read-only standby: the client may retry with the same key (on
     * the new primary). The map is sqlstate.h's, shared with DELETE /batches/{id}. */
    enum sqlstate_kind k = sqlstate_classify(state, db_conn_broken(b->conn));
    switch (k) {
    case SQLSTATE_UNAVAILABLE:
        b->retry_after = true;
        ingest_fail(b, 503, "database_unavailable", sqlstate_message(k));
        break;
    case SQLSTATE_BUSY:
        b->retry_after = true;
        ingest_fail(b, 503, "database_busy", sqlstate_message(k));
        break;
    case SQLSTATE_UNIQUE:
        /* The unique index on (token, key): another request committed this key. */
        ingest_fail(b, 409, "idempotency_key_in_progress",
                    "Another request with this Idempotency-Key committed first");
        break;
    case SQLSTATE_FOREIGN_KEY:
        snprintf(msg, sizeof msg, "A referenced port was removed meanwhile: %.200s", err);
        ingest_fail(b, 409, "port_removed", msg);
        break;
    case SQLSTATE_OTHER:
        ingest_fail(b, 500, "database_error", sqlstate_message(k));
        break;
    }
}

/* Runs sql; returns the result when its status is want, else NULL with the failure noted. */
static PGresult *ingest_db_exec(struct ingest *b, const char *sql, int nparams,
                                const char *const *params, ExecStatusType want, const char *what)
{
    uint64_t t0 = clock_mono_ns();
    PGresult *res = nparams ? PQexecParams(b->conn->pg, sql, nparams, NULL, params, NULL, NULL, 0)
                            : PQexec(b->conn->pg, sql);
    metrics_db_query(clock_mono_ns() - t0);
    if (PQresultStatus(res) != want) {
        ingest_db_fail(b, res, what);
        PQclear(res);
        return NULL;
    }
    return res;
}

static int ingest_db_run(struct ingest *b, const char *sql, int nparams, const char *const *params,
                         const char *what)
{
    PGresult *res = ingest_db_exec(b, sql, nparams, params, PGRES_COMMAND_OK, what);
    PQclear(res);
    return res ? 0 : -1;
}

/* The idempotency key's advisory lock is session-level: released here. The slot is a row
 * lock of the transaction: gone with its commit or rollback. */
static void ingest_db_unlock(struct ingest *b)
{
    b->slot = 0;
    if (!b->conn || db_conn_broken(b->conn) || !b->key_locked)
        return;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", (long long)b->key_lock);
    PGresult *res = PQexec(b->conn->pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        db_conn_discard(b->conn); /* closing the session releases it */
    PQclear(res);
    b->key_locked = false;
}

static void ingest_db_release(struct ingest *b)
{
    ingest_db_unlock(b);
    db_pool_release(APP.pool, b->conn);
    b->conn = NULL;
}

/* The committed (or retracted) batch this (token, key) names within the TTL: 1 found, 0 none,
 * -1 error. b->replay_retracted tells which. */
static int ingest_db_find_replay(struct ingest *b)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%ld", b->ttl_s);
    const char *p[3] = { b->token, b->key, ttl };
    PGresult *res = ingest_db_exec(
        b,
        "SELECT id, rows, bytes, coalesce(duration_ms, 0), coalesce(body_sha256, ''), "
        "status = 'retracted' "
        "FROM public.batches WHERE token_name = $1 AND idempotency_key = $2 "
        "AND status IN ('committed', 'retracted') "
        "AND received_at > now() - $3::bigint * interval '1 second'",
        3, p, PGRES_TUPLES_OK, "idempotency lookup");
    if (!res)
        return -1;
    int found = PQntuples(res) > 0;
    if (found) {
        b->replay_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        b->replay_rows = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        b->replay_bytes = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        b->replay_duration_ms = strtod(PQgetvalue(res, 0, 3), NULL);
        str_copy(b->replay_sha, sizeof b->replay_sha, PQgetvalue(res, 0, 4));
        b->replay_retracted = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
    }
    PQclear(res);
    return found;
}

/* One of the global slots: a row of public.ingest_slots locked in this batch's transaction
 * (migration 0014; released by its commit or rollback). Called right after BEGIN. */
static int ingest_db_take_slot(struct ingest *b)
{
    char n[24];
    snprintf(n, sizeof n, "%ld", APP.cfg.global_concurrent_batches);
    const char *p[1] = { n };
    PGresult *res = ingest_db_exec(b, "SELECT public.ingest_take_slot($1::integer)", 1, p,
                                   PGRES_TUPLES_OK, "slot");
    if (!res)
        return -1;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        b->retry_after = true;
        ingest_fail(b, 503, "too_many_batches",
                    "Too many batches in progress across instances, retry later");
        return -1;
    }
    b->slot = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int ingest_db_open(struct ingest *b)
{
    PGresult *res = ingest_db_exec(b, "SELECT nextval('public.batches_id_seq')", 0, NULL,
                                   PGRES_TUPLES_OK, "batch id");
    if (!res)
        return -1;
    b->batch_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char sql[160];
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = %ld",
             b->stmt_timeout_ms);
    if (ingest_db_run(b, sql, 0, NULL, "begin") != 0)
        return -1;
    b->in_tx = true;
    if (ingest_db_take_slot(b) != 0)
        return -1;
    res = ingest_db_exec(b, "SELECT code FROM public.ports", 0, NULL, PGRES_TUPLES_OK, "ports");
    if (!res)
        return -1;
    b->ports = portset_from_result(res);
    PQclear(res);
    if (!b->ports) {
        ingest_fail(b, 500, "ports_too_many", "Cannot load the port codes");
        return -1;
    }
    if (ingest_db_run(b,
                      "CREATE TEMP TABLE ingest_stage (orig_code text NOT NULL, dest_code text "
                      "NOT NULL, day date NOT NULL, price integer NOT NULL) ON COMMIT DROP",
                      0, NULL, "staging table") != 0)
        return -1;
    res = ingest_db_exec(b, "COPY pg_temp.ingest_stage FROM STDIN (FORMAT binary)", 0, NULL,
                         PGRES_COPY_IN, "copy");
    if (!res)
        return -1;
    PQclear(res);
    b->in_copy = true;
    /* The binary format's signature, flags (none) and header extension length (0). */
    static const char head[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    if (dynbuf_add(&b->copy, head, sizeof head) != 0) {
        ingest_fail(b, 500, "internal", "Row buffer overflow");
        return -1;
    }
    return 0;
}

int ingest_db_begin(struct ingest *b)
{
    char err[512];
    int rc = db_pool_acquire(APP.pool, APP.cfg.pool_wait_ms, &b->conn, err, sizeof err);
    if (rc != DB_OK) {
        b->conn = NULL;
        LOG_WARN("batch %s: %s", b->request_id, err);
        b->retry_after = true;
        ingest_fail(b, 503, "database_unavailable",
                    rc == DB_ERR_TIMEOUT ? "Service overloaded, retry later"
                                         : "Database unavailable, retry later");
        b->outcome = -1;
        b->record = false;
        return INGEST_BEGIN_FAILED;
    }
    if (b->key[0]) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", (long long)b->key_lock);
        PGresult *res = ingest_db_exec(b, sql, 0, NULL, PGRES_TUPLES_OK, "idempotency lock");
        if (!res)
            goto fail;
        b->key_locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (!b->key_locked) {
            ingest_fail(b, 409, "idempotency_key_in_progress",
                        "A request with this Idempotency-Key is still being processed");
            goto fail;
        }
        int found = ingest_db_find_replay(b);
        if (found < 0)
            goto fail;
        if (found && b->replay_retracted) {
            /* Its rows are gone: a replay's 201 would claim they are there. */
            ingest_fail(b, 409, "batch_retracted",
                        "The batch with this Idempotency-Key was retracted; use a new key to "
                        "send the rows again");
            goto fail;
        }
        if (found) {
            ingest_db_release(b);
            return INGEST_BEGIN_REPLAY;
        }
    }
    if (ingest_db_open(b) != 0)
        goto fail;
    return INGEST_BEGIN_COPY;
fail:
    /* Refused before any row: not a batch, no ledger record. */
    b->outcome = -1;
    b->record = false;
    ingest_db_abort(b);
    return INGEST_BEGIN_FAILED;
}

/* One row in COPY's binary format (docs of COPY, "Binary Format"): a 16-bit field count,
 * then per field a 32-bit length and the value's send form, all big-endian. text is its
 * bytes (the backend still checks the encoding), date is days since 2000-01-01, integer is
 * 4 bytes. Codes are at most ROWPARSE_MAX_CODE bytes (the parser refuses longer ones). */
#define INGEST_PG_EPOCH_DAYS 10957 /* 2000-01-01 in days since 1970-01-01 */

static size_t ingest_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

static int ingest_db_add_row(struct dynbuf *d, const struct rowparse_row *row)
{
    unsigned char buf[2 + 4 * 4 + 8 + 2 * ROWPARSE_MAX_CODE];
    if (row->orig_len > ROWPARSE_MAX_CODE || row->dest_len > ROWPARSE_MAX_CODE)
        return -1; /* the parser refuses such codes before they get here */
    unsigned char *p = buf;
    *p++ = 0;
    *p++ = 4; /* fields */
    p += ingest_put32(p, (uint32_t)row->orig_len);
    memcpy(p, row->orig, row->orig_len);
    p += row->orig_len;
    p += ingest_put32(p, (uint32_t)row->dest_len);
    memcpy(p, row->dest, row->dest_len);
    p += row->dest_len;
    p += ingest_put32(p, 4);
    p += ingest_put32(p, (uint32_t)(row->day - INGEST_PG_EPOCH_DAYS));
    p += ingest_put32(p, 4);
    p += ingest_put32(p, (uint32_t)row->price);
    return dynbuf_add(d, buf, (size_t)(p - buf));
}

int ingest_db_row(void *ctx, const struct rowparse_row *row)
{
    struct ingest *b = ctx;
    if (b->status)
        return 1;
    b->rows++;
    if (b->rows > b->max_rows) {
        char msg[128];
        snprintf(msg, sizeof msg, "The batch has more than %llu rows",
                 (unsigned long long)b->max_rows);
        ingest_fail(b, 413, "too_many_rows", msg);
        return 1;
    }
    bool orig_ok = portset_has(b->ports, row->orig, row->orig_len);
    bool dest_ok = portset_has(b->ports, row->dest, row->dest_len);
    if (!orig_ok || !dest_ok) {
        char msg[160];
        if (!orig_ok) {
            snprintf(msg, sizeof msg, "unknown port code '%.*s'", (int)row->orig_len, row->orig);
            ingest_add_error(b, row->line, "orig_code", msg);
        }
        if (!dest_ok) {
            snprintf(msg, sizeof msg, "unknown port code '%.*s'", (int)row->dest_len, row->dest);
            ingest_add_error(b, row->line, "dest_code", msg);
        }
        return 0;
    }
    if (b->error_total)
        return 0; /* the batch is lost: only count the remaining errors */
    if (ingest_db_add_row(&b->copy, row) != 0) {
        ingest_fail(b, 500, "internal", "Row buffer overflow");
        return 1;
    }
    if (b->copy.len >= INGEST_COPY_FLUSH && ingest_db_flush(b) != 0)
        return 1;
    return 0;
}

int ingest_db_flush(struct ingest *b)
{
    if (b->copy.len == 0)
        return 0;
    if (PQputCopyData(b->conn->pg, b->copy.buf, (int)b->copy.len) != 1) {
        ingest_db_fail(b, NULL, "copy data");
        return -1;
    }
    dynbuf_reset(&b->copy);
    return 0;
}

/* Ends COPY and collects its result (the set-wise trigger runs now). */
static int ingest_db_end_copy(struct ingest *b)
{
    static const char trailer[2] = { '\377', '\377' }; /* a field count of -1 */
    if (dynbuf_add(&b->copy, trailer, sizeof trailer) != 0) {
        ingest_fail(b, 500, "internal", "Row buffer overflow");
        return -1;
    }
    if (ingest_db_flush(b) != 0)
        return -1;
    b->in_copy = false;
    if (PQputCopyEnd(b->conn->pg, NULL) != 1) {
        ingest_db_fail(b, NULL, "copy end");
        return -1;
    }
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(b->conn->pg)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
            ingest_db_fail(b, res, "copy");
            rc = -1;
        }
        PQclear(res);
    }
    return rc;
}

int ingest_db_commit(struct ingest *b)
{
    uint64_t t0 = clock_mono_ns();
    if (ingest_db_end_copy(b) != 0)
        return -1;
    char sql[128];
    snprintf(sql, sizeof sql, "SET LOCAL statement_timeout = %ld; SET LOCAL work_mem = '%s'",
             b->stmt_timeout_ms, INGEST_SORT_MEM);
    if (ingest_db_run(b, sql, 0, NULL, "statement timeout") != 0)
        return -1;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)b->batch_id);
    const char *pid[1] = { id };
    if (ingest_db_run(b,
                      "INSERT INTO public.prices (orig_code, dest_code, day, price, batch_id) "
                      "SELECT orig_code, dest_code, day, price, $1::bigint "
                      "FROM pg_temp.ingest_stage",
                      1, pid, "insert") != 0)
        return -1;
    if (b->key[0]) {
        /* We hold the key's lock and found no live batch: a holder left is expired. */
        const char *p[2] = { b->token, b->key };
        if (ingest_db_run(b,
                          "UPDATE public.batches SET expired_idempotency_key = idempotency_key, "
                          "idempotency_key = NULL WHERE token_name = $1 AND idempotency_key = $2 "
                          "AND status IN ('committed', 'retracted')",
                          2, p, "expire key") != 0)
            return -1;
    }
    b->duration_ms = (double)(clock_mono_ns() - b->t0_ns) / 1e6;
    char rows[24], bytes[24], recv[40], dur[40];
    snprintf(rows, sizeof rows, "%llu", (unsigned long long)b->rows);
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)b->bytes);
    snprintf(recv, sizeof recv, "%.6f", b->received_epoch);
    snprintf(dur, sizeof dur, "%.3f", b->duration_ms);
    const char *p[9] = {
        id, b->key[0] ? b->key : NULL, b->token, b->content_type, b->sha_hex, rows, bytes, recv, dur
    };
    if (ingest_db_run(b,
                      "INSERT INTO public.batches (id, idempotency_key, token_name, content_type,"
                      " body_sha256, rows, bytes, status, http_status, received_at, committed_at,"
                      " duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'committed', 201,"
                      " to_timestamp($8::float8), now(), $9)",
                      9, p, "ledger") != 0)
        return -1;
    if (ingest_db_run(b, "COMMIT", 0, NULL, "commit") != 0)
        return -1;
    b->in_tx = false;
    metrics_db_query(clock_mono_ns() - t0);
    ingest_db_release(b);
    return 0;
}

static void ingest_db_record(struct ingest *b)
{
    char id[24], rows[24], bytes[24], recv[40], dur[40], status[8], count[24], summary[512];
    snprintf(id, sizeof id, "%lld", (long long)b->batch_id);
    snprintf(rows, sizeof rows, "%llu", (unsigned long long)b->rows);
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)b->bytes);
    snprintf(recv, sizeof recv, "%.6f", b->received_epoch);
    snprintf(dur, sizeof dur, "%.3f", (double)(clock_mono_ns() - b->t0_ns) / 1e6);
    snprintf(status, sizeof status, "%d", b->status);
    snprintf(count, sizeof count, "%llu", (unsigned long long)b->error_total);
    ingest_error_summary(b, summary, sizeof summary);
    const char *kind = b->outcome == BATCH_REJECTED ? "rejected" : "aborted";
    const char *p[12] = { b->batch_id ? id : NULL,
                          b->key[0] ? b->key : NULL,
                          b->token,
                          b->content_type,
                          rows,
                          bytes,
                          kind,
                          status,
                          recv,
                          dur,
                          summary,
                          count };
    PGresult *res = PQexecParams(
        b->conn->pg,
        "INSERT INTO public.batches (id, idempotency_key, token_name, content_type, rows, bytes,"
        " status, http_status, received_at, duration_ms, error, error_count) VALUES"
        " (coalesce($1::bigint, nextval('public.batches_id_seq')), $2, $3, $4, $5, $6, $7, $8,"
        " to_timestamp($9::float8), $10, $11, $12) RETURNING id",
        12, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        b->batch_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else
        LOG_WARN("batch %s: cannot record the %s batch: %s", b->request_id, kind,
                 PQresultErrorMessage(res));
    PQclear(res);
}

void ingest_db_abort(struct ingest *b)
{
    if (!b->conn)
        return;
    PGconn *pg = b->conn->pg;
    if (b->in_copy && !db_conn_broken(b->conn)) {
        if (PQputCopyEnd(pg, "batch aborted") == 1) {
            PGresult *res;
            while ((res = PQgetResult(pg)) != NULL)
                PQclear(res);
        }
    }
    b->in_copy = false;
    if (!db_conn_broken(b->conn) && PQtransactionStatus(pg) != PQTRANS_IDLE) {
        PGresult *res = PQexec(pg, "ROLLBACK");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            db_conn_discard(b->conn);
        PQclear(res);
    }
    b->in_tx = false;
    if (b->record && !db_conn_broken(b->conn) && PQtransactionStatus(pg) == PQTRANS_IDLE)
        ingest_db_record(b);
    ingest_db_release(b);
}
