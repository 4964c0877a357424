/* ingest.c: POST /batches on the HTTP side: admission (auth, type, limits), the batch state
 * machine (ingest_int.h) and the hand-off of each body chunk to a worker.
 *
 * Each body chunk MHD hands us (at most the connection's memory limit, tens of KB) is copied
 * and deferred to a worker with the connection suspended: the worker hashes it, parses it and
 * PQputCopyData()s the rows on the batch's own connection. MHD reads nothing more until the
 * worker resumes the connection, so a slow database slows the client down (TCP backpressure)
 * and the server never holds more than one chunk and one COPY buffer per batch.
 *
 * A body sent with Content-Encoding: gzip is decompressed on the same worker, in pieces of
 * INGEST_INFLATE_OUT bytes (inflate.c), and everything after that sees only decompressed
 * bytes: the byte limit, the hash, the parser. A small chunk that expands enormously (a zip
 * bomb) is stopped at max_bytes of output with 413, holding one fixed buffer meanwhile. */
#include "ingest.h"
#include "ingest_int.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "auth.h"
#include "http.h"
#include "inflate.h"
#include "log.h"
#include "metrics.h"
#include "portset.h"
#include "rates_limits.h"
#include "statemove.h"

#define INGEST_COPY_MAX (512 * 1024)

static atomic_long ingest_active; /* batches admitted on this instance and not yet freed */

static const char *const phase_names[] = { "BEGIN", "COPYING", "REPLAYING", "FAILED_DRAINING",
                                           "DONE" };

/* The one place the phase changes; the allowed moves are those of ingest_int.h. */
void ingest_set_phase(struct ingest *b, enum ingest_phase to)
{
    static const unsigned allowed[] = {
        [INGEST_BEGIN] = 1u << INGEST_COPYING | 1u << INGEST_REPLAYING |
                         1u << INGEST_FAILED_DRAINING | 1u << INGEST_DONE,
        [INGEST_COPYING] = 1u << INGEST_FAILED_DRAINING | 1u << INGEST_DONE,
        [INGEST_REPLAYING] = 1u << INGEST_FAILED_DRAINING | 1u << INGEST_DONE,
        [INGEST_FAILED_DRAINING] = 1u << INGEST_DONE,
        [INGEST_DONE] = 0,
    };
    if (b->phase == to)
        return;
    if (!(allowed[b->phase] & (1u << to))) {
        statemove_refuse(MACHINE_INGEST, phase_names[b->phase], phase_names[to], b->request_id);
        return;
    }
    LOG_DEBUG("batch %s: %s -> %s", b->request_id, phase_names[b->phase], phase_names[to]);
    b->phase = to;
}

void ingest_fail(struct ingest *b, int status, const char *code, const char *message)
{
    if (b->status)
        return;
    b->status = status;
    b->code = code;
    str_copy(b->message, sizeof b->message, message);
    /* A refused body is rejected; a batch the server could not finish is aborted. Refusals
     * before any work (key in flight, no slot) are not batches: ingest_db_begin clears these. */
    b->outcome = status >= 400 && status < 500 && status != 409 ? BATCH_REJECTED : BATCH_ABORTED;
    b->record = true;
}

/* The worker queue was full: http_defer has answered 503 with Retry-After; the ledger records
 * that status (not 0) and why when the batch had begun (ingest_on_free rolls it back). */
static void ingest_queue_full(struct ingest *b)
{
    b->retry_after = true;
    ingest_fail(b, 503, "overloaded", "worker queue full");
    b->outcome = BATCH_ABORTED;
    b->record = true;
}

void ingest_add_error(struct ingest *b, uint64_t line, const char *field, const char *message)
{
    b->error_total++;
    if (b->nerrors >= INGEST_MAX_ERRORS)
        return;
    struct ingest_error *e = &b->errors[b->nerrors++];
    e->line = line;
    str_copy(e->field, sizeof e->field, field);
    str_copy(e->message, sizeof e->message, message);
}

static void ingest_on_parse_error(void *ctx, uint64_t line, const char *field, const char *message)
{
    ingest_add_error(ctx, line, field, message);
}

static void ingest_free(struct ingest *b)
{
    if (b->outcome >= 0)
        metrics_batch_done(b->outcome, b->rows, b->bytes, clock_mono_ns() - b->t0_ns);
    metrics_batch_inflight_add(-1);
    atomic_fetch_sub(&ingest_active, 1);
    portset_free(b->ports);
    rowparse_free(b->parser);
    EVP_MD_CTX_free(b->sha);
    inflate_free(b->gz);
    dynbuf_free(&b->copy);
    free(b->chunk);
    free(b);
}

/* Refuses before reading the body (MHD then closes the connection). */
static void ingest_refuse(struct http_req *req, int status, const char *message)
{
    req->respond_early = true;
    http_respond_error(req, status, message);
}

static bool ingest_auth(struct http_req *req, char *name, size_t cap)
{
    int a = auth_check(http_header(req, "Authorization"), name, cap, NULL);
    if (a == AUTH_OK)
        return true;
    if (a == AUTH_DISABLED) {
        ingest_refuse(req, 403, "Ingestion is disabled: no ingest token is configured");
        return false;
    }
    http_add_header(req, "WWW-Authenticate",
                    a == AUTH_INVALID ? "Bearer realm=\"rates\", error=\"invalid_token\""
                                      : "Bearer realm=\"rates\"");
    ingest_refuse(req, 401, a == AUTH_INVALID ? "Invalid token" : "Bearer token required");
    return false;
}

/* Content-Type goes to the ledger's text column: printable ASCII only (a byte >= 0x80, or a
 * multibyte character cut at the column's size, would not be valid text there). */
static bool ingest_content_type_ok(const char *ct)
{
    for (const char *p = ct; *p; p++)
        if ((*p < 0x20 && *p != '\t') || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

/* Idempotency-Key: an sf-string ("...") per the IETF draft; a bare token is accepted too.
 * Printable ASCII, 1..INGEST_KEY_MAX. Returns 0, 1 when absent, -1 when invalid. */
static int ingest_key(struct http_req *req, char *out, size_t cap)
{
    const char *v = http_header(req, "Idempotency-Key");
    if (!v)
        return 1;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\')
            return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* Content-Encoding of the body: 0 none (or identity), 1 gzip, -1 anything else (415). */
static int ingest_encoding(struct http_req *req)
{
    const char *v = http_header(req, "Content-Encoding");
    if (!v)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 8 && strncasecmp(v, "identity", n) == 0)
        return 0;
    if ((n == 4 && strncasecmp(v, "gzip", n) == 0) || (n == 6 && strncasecmp(v, "x-gzip", n) == 0))
        return 1;
    return -1;
}

/* The advisory lock id of (token, key): 63 bits of SHA-256("token\0key"). */
static int64_t ingest_key_lock(const char *token, const char *key)
{
    unsigned char md[32], in[INGEST_NAME_MAX + INGEST_KEY_MAX + 2];
    size_t tl = strlen(token), kl = strlen(key);
    memcpy(in, token, tl + 1);
    memcpy(in + tl + 1, key, kl);
    unsigned int n = 0;
    if (EVP_Digest(in, tl + 1 + kl, md, &n, EVP_sha256(), NULL) != 1)
        memset(md, 0, sizeof md);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | md[i];
    return (int64_t)(v & 0x7fffffffffffffffull);
}

/* The first step, on the worker that runs the first chunk (or the end of an empty body):
 * the batch is not begun in on_request, because MHD calls the handler again with no data
 * when a connection suspended before its body is resumed, which reads like a body's end.
 * Returns true when the batch is COPYING. */
static bool ingest_begin(struct http_req *req, struct ingest *b)
{
    if (b->phase != INGEST_BEGIN)
        return b->phase == INGEST_COPYING;
    switch (ingest_db_begin(b)) {
    case INGEST_BEGIN_COPY:
        ingest_set_phase(b, INGEST_COPYING);
        return true;
    case INGEST_BEGIN_REPLAY:
        ingest_set_phase(b, INGEST_REPLAYING);
        return false;
    default:
        ingest_set_phase(b, INGEST_FAILED_DRAINING);
        ingest_reply(req, b); /* http.c discards the rest of the body, then answers */
        return false;
    }
}

void ingest_on_request(struct http_req *req)
{
    char token[INGEST_NAME_MAX + 1];
    if (!ingest_auth(req, token, sizeof token))
        return;
    const char *ct = http_header(req, "Content-Type");
    int fmt = ct ? rowparse_format_from_content_type(ct) : -1;
    if (fmt >= 0 && !ingest_content_type_ok(ct)) {
        ingest_refuse(req, 415, "Content-Type must be printable ASCII");
        return;
    }
    if (fmt < 0) {
        ingest_refuse(req, 415,
                      "Content-Type must be text/csv, application/x-ndjson or "
                      "application/json");
        return;
    }
    int gzip = ingest_encoding(req);
    if (gzip < 0) {
        http_add_header(req, "Accept-Encoding", "gzip"); /* RFC 7694 */
        ingest_refuse(req, 415, "Content-Encoding must be gzip (or identity, or absent)");
        return;
    }
    const char *cl = http_header(req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)APP.cfg.max_body_bytes) {
        ingest_refuse(req, 413, "The body is larger than the maximum batch size");
        return;
    }
    char key[INGEST_KEY_MAX + 1] = "";
    if (ingest_key(req, key, sizeof key) < 0) {
        ingest_refuse(req, 400, "Idempotency-Key must be 1-255 printable ASCII characters");
        return;
    }
    if (atomic_fetch_add(&ingest_active, 1) >= APP.cfg.max_concurrent_batches) {
        atomic_fetch_sub(&ingest_active, 1);
        http_add_header(req, "Retry-After", "1");
        ingest_refuse(req, 503, "Too many batches in progress on this instance, retry later");
        return;
    }
    metrics_batch_inflight_add(1);
    struct ingest *b = calloc(1, sizeof *b);
    if (b) {
        b->sha = EVP_MD_CTX_new();
        b->parser = rowparse_new(fmt, ingest_db_row, ingest_on_parse_error, b);
        if (gzip)
            b->gz = inflate_new(INGEST_INFLATE_OUT);
    }
    if (!b || !b->sha || !b->parser || (gzip && !b->gz) ||
        EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL) != 1) {
        if (b) {
            b->outcome = -1;
            ingest_free(b);
        } else {
            metrics_batch_inflight_add(-1);
            atomic_fetch_sub(&ingest_active, 1);
        }
        ingest_refuse(req, 500, "Out of memory");
        return;
    }
    req->state = b; /* owned by the request; freed in ingest_on_free */
    b->outcome = -1;
    b->fmt = fmt;
    str_copy(b->content_type, sizeof b->content_type, ct);
    str_copy(b->token, sizeof b->token, token);
    str_copy(b->key, sizeof b->key, key);
    if (key[0])
        b->key_lock = ingest_key_lock(token, key);
    str_copy(b->request_id, sizeof b->request_id, req->request_id);
    b->max_bytes = (uint64_t)APP.cfg.max_body_bytes;
    b->max_rows = (uint64_t)APP.cfg.max_batch_rows;
    b->idle_timeout_s = APP.cfg.upload_idle_timeout_s;
    b->stmt_timeout_ms = APP.cfg.batch_statement_timeout_ms;
    b->ttl_s = APP.cfg.idempotency_ttl_s;
    b->t0_ns = clock_mono_ns();
    b->progress_ns = b->t0_ns;
    b->due_ns = b->t0_ns + (uint64_t)APP.cfg.upload_timeout_s * 1000000000ull;
    http_body_deadline(req, (uint64_t)APP.cfg.upload_timeout_s * 1000000000ull);
    b->received_epoch = (double)clock_wall_ns() / 1e9;
    dynbuf_init(&b->copy, INGEST_COPY_MAX);
    /* A stalled upload is not suspended, so MHD's per-connection timeout ends it; the
     * connection's end rolls the batch back (ingest_on_free). */
    MHD_set_connection_option(req->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned int)b->idle_timeout_s);
}

static void ingest_abort_and_reply(struct http_req *req, struct ingest *b)
{
    ingest_db_abort(b);
    ingest_set_phase(b, INGEST_FAILED_DRAINING);
    ingest_reply(req, b);
}

/* The inflater's sink, and the whole path of a plain body: one piece of the decompressed
 * body is counted against max_bytes, hashed, and parsed unless the key names a committed
 * batch (REPLAYING: only hashed). Returns non-zero to stop decompressing, with the failure
 * recorded (or, when replaying, left to ingest_replay_end, which sees bytes > max_bytes). */
static int ingest_piece(void *ctx, const char *data, size_t len)
{
    struct ingest *b = ctx;
    b->bytes += len;
    if (len > 0)
        b->progress_ns = clock_mono_ns();
    if (b->bytes > b->max_bytes) {
        if (b->phase != INGEST_REPLAYING)
            ingest_fail(b, 413, "body_too_large", "The body is larger than the maximum batch size");
        return 1;
    }
    EVP_DigestUpdate(b->sha, data, len);
    if (b->phase == INGEST_REPLAYING || b->parser_stopped)
        return 0;
    if (rowparse_feed(b->parser, data, len) != 0) {
        b->parser_stopped = true;
        if (!b->error_total && !b->status)
            ingest_add_error(b, 0, "body", "unreadable body");
        ingest_fail(b, 422, "invalid_rows", "The batch has invalid rows; nothing was inserted");
        return 1;
    }
    return 0;
}

static void ingest_gzip_fail(struct ingest *b, int rc)
{
    if (rc == INFLATE_NOMEM)
        ingest_fail(b, 500, "internal", "Out of memory");
    else if (rc == INFLATE_CORRUPT)
        ingest_fail(b, 400, "bad_gzip", inflate_error(b->gz));
}

/* One chunk of the body as received: decompressed first when it is gzip. */
static void ingest_take(struct ingest *b, const char *data, size_t len)
{
    if (!b->gz) {
        (void)ingest_piece(b, data, len);
        return;
    }
    int rc = inflate_feed(b->gz, data, len, ingest_piece, b);
    if (rc < 0)
        ingest_gzip_fail(b, rc);
}

/* At the body's end: a gzip body must end at the end of a gzip member (else 400). */
static void ingest_take_end(struct ingest *b)
{
    if (!b->gz || b->status)
        return;
    int rc = inflate_finish(b->gz);
    if (rc < 0)
        ingest_gzip_fail(b, rc);
}

static void ingest_chunk_work(struct http_req *req, struct db_conn *unused)
{
    struct ingest *b = req->state;
    if (!ingest_begin(req, b)) {
        if (b->phase == INGEST_REPLAYING)
            ingest_take(b, b->chunk, b->chunk_len);
        b->chunk_len = 0;
        return;
    }
    ingest_take(b, b->chunk, b->chunk_len);
    b->chunk_len = 0;
    if (b->status)
        ingest_abort_and_reply(req, b);
}

/* Copies one body chunk into b->chunk (owned by b), growing it to at least the chunk's
 * size: INGEST_CHUNK_MIN first, never beyond INGEST_CHUNK_MAX, which holds whatever MHD can
 * hand over (rates_limits.h asserts it). Returns 0, or -1 (too large, out of memory) with
 * b->chunk unchanged. */
int ingest_chunk_store(struct ingest *b, const char *data, size_t len)
{
    if (len > INGEST_CHUNK_MAX)
        return -1;
    if (len > b->chunk_cap) {
        size_t cap = len < INGEST_CHUNK_MIN ? INGEST_CHUNK_MIN : len;
        char *p = realloc(b->chunk, cap);
        if (!p)
            return -1;
        b->chunk = p;
        b->chunk_cap = cap;
    }
    if (len)
        memcpy(b->chunk, data, len);
    b->chunk_len = len;
    return 0;
}

/* A late upload: 408, and the connection closes now (http_abort); ingest_on_free rolls the
 * transaction back and records why. */
static bool ingest_late(struct http_req *req, struct ingest *b)
{
    uint64_t now = clock_mono_ns();
    char msg[160];
    if (now > b->due_ns)
        snprintf(msg, sizeof msg,
                 "The upload took longer than %ld s (RATES_UPLOAD_TIMEOUT_S); nothing was inserted",
                 APP.cfg.upload_timeout_s);
    else if (b->gz && now - b->progress_ns > (uint64_t)b->idle_timeout_s * 1000000000ull)
        snprintf(msg, sizeof msg,
                 "The gzip body decoded to no data for %ld s (RATES_UPLOAD_IDLE_TIMEOUT_S); "
                 "nothing was inserted",
                 b->idle_timeout_s);
    else
        return false;
    ingest_fail(b, 408, "upload_timeout", msg);
    b->outcome = BATCH_ABORTED;
    ingest_reply(req, b);
    http_abort(req);
    return true;
}

void ingest_on_body(struct http_req *req, const char *data, size_t len)
{
    struct ingest *b = req->state;
    if (!b)
        return;
    if (ingest_late(req, b))
        return;
    if (b->phase == INGEST_REPLAYING) {
        ingest_take(b, data, len); /* CPU only: at most max_bytes of output in all */
        return;
    }
    if (b->phase != INGEST_COPYING && b->phase != INGEST_BEGIN)
        return; /* FAILED_DRAINING: discard */
    if (ingest_chunk_store(b, data, len) != 0) {
        ingest_fail(b, 500, "internal", "Out of memory");
        b->outcome = BATCH_ABORTED;
        http_respond_error(req, 500, "Out of memory"); /* on_free rolls back */
        return;
    }
    if (http_defer(req, ingest_chunk_work, WORK_LANE_BATCH) != 0)
        ingest_queue_full(b); /* 503 answered by http_defer; ingest_on_free rolls back */
}

static void ingest_replay_end(struct http_req *req, struct ingest *b);

static void ingest_finish_work(struct http_req *req, struct db_conn *unused)
{
    struct ingest *b = req->state;
    if (!ingest_begin(req, b)) {
        if (b->phase == INGEST_REPLAYING)
            ingest_replay_end(req, b);
        return;
    }
    ingest_take_end(b);
    if (!b->status && !b->parser_stopped && rowparse_finish(b->parser) != 0)
        b->parser_stopped = true;
    if (b->error_total)
        ingest_fail(b, 422, "invalid_rows", "The batch has invalid rows; nothing was inserted");
    if (!b->status && b->rows == 0)
        ingest_fail(b, 422, "empty_batch", "The batch has no rows");
    if (!b->status) {
        unsigned char md[32];
        unsigned int n = 0;
        EVP_DigestFinal_ex(b->sha, md, &n);
        for (unsigned int i = 0; i < n && i < 32; i++)
            snprintf(b->sha_hex + 2 * i, 3, "%02x", md[i]);
        if (ingest_db_commit(b) == 0) {
            b->status = 201;
            req->write_rows = b->rows;
            b->outcome = BATCH_COMMITTED;
            ingest_set_phase(b, INGEST_DONE);
            ingest_reply(req, b);
            return;
        }
    }
    ingest_abort_and_reply(req, b);
}

static void ingest_replay_end(struct http_req *req, struct ingest *b)
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(b->sha, md, &n);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(b->sha_hex + 2 * i, 3, "%02x", md[i]);
    ingest_take_end(b);
    if (b->status) {
        b->record = false; /* corrupt gzip: refused before anything was begun */
    } else if (b->bytes > b->max_bytes) {
        ingest_fail(b, 413, "body_too_large", "The body is larger than the maximum batch size");
        b->record = false;
    } else if (strcmp(b->sha_hex, b->replay_sha) == 0) {
        b->status = 201;
        b->outcome = BATCH_REPLAYED;
    } else {
        ingest_fail(b, 422, "idempotency_key_reused",
                    "This Idempotency-Key was used for a different body");
        b->record = false;
    }
    ingest_set_phase(b, INGEST_DONE);
    ingest_reply(req, b);
}

void ingest_on_end(struct http_req *req)
{
    struct ingest *b = req->state;
    if (!b)
        return;
    if (b->phase == INGEST_REPLAYING) {
        ingest_replay_end(req, b);
        return;
    }
    if (b->phase == INGEST_COPYING || b->phase == INGEST_BEGIN) {
        if (http_defer(req, ingest_finish_work, WORK_LANE_COMMIT) != 0)
            ingest_queue_full(b);
        return;
    }
    ingest_reply(req, b);
}

/* Rolls back an upload whose connection ended, and frees it (b is the job's). */
static void ingest_reaper(void *arg)
{
    struct ingest *b = arg;
    ingest_db_abort(b);
    ingest_free(b);
}

void ingest_on_free(struct http_req *req, bool completed)
{
    struct ingest *b = req->state;
    if (!b)
        return;
    req->state = NULL;
    if (b->conn) {
        /* The client went away (or the server is stopping) with the transaction open. No
         * worker job can be running: this connection is not suspended. */
        if (!b->message[0] && clock_mono_ns() > b->due_ns) /* the sweeper closed it */
            ingest_fail(b, 408, "upload_timeout", "The upload took longer than its deadline");
        if (!b->message[0])
            str_copy(b->message, sizeof b->message,
                     completed ? "aborted" : "client disconnected or timed out mid-body");
        b->outcome = BATCH_ABORTED;
        b->record = true;
        snprintf(req->note, sizeof req->note, "batch rolled back: %.200s", b->message);
        LOG_INFO("batch %s: rolled back: %s (%llu bytes, %llu rows received)", b->request_id,
                 b->message, (unsigned long long)b->bytes, (unsigned long long)b->rows);
        /* Rolling back blocks, and HTTP threads never block: a job of the batch lane does it
         * (shutdown runs queued jobs before the pools close). Only when the lane refuses
         * (full, or already stopped) does this thread roll back itself. */
        if (http_server_batch_job(req->srv, ingest_reaper, b) != 0)
            ingest_reaper(b);
        return;
    }
    ingest_set_phase(b, INGEST_DONE);
    ingest_free(b);
}
