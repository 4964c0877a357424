/* ingest_int.h: the state of one batch, shared by ingest.c (HTTP side and state machine),
 * ingest_db.c (the transaction) and ingest_reply.c (JSON answers). Not for other files.
 *
 * Life of a batch (one function, ingest_set_phase, changes it):
 *   BEGIN            headers accepted; a worker acquires the batch's own pooled connection,
 *                    takes the idempotency lock, opens the transaction, locks a global slot
 *                    row in it and starts COPY.
 *   COPYING          each body chunk is copied and parsed on a worker; valid rows go to COPY.
 *   REPLAYING        the key names a committed batch: the body is only hashed.
 *   FAILED_DRAINING  the answer is decided (413, 422, 409, 503...); the transaction has been
 *                    rolled back and the connection released; the rest of the body is
 *                    discarded, and the answer goes out once it has ended.
 *   DONE             committed (or replayed, or refused) and answered.
 * Invariant: conn != NULL only in BEGIN/COPYING; every path out of those rolls back (or
 * commits) before the connection returns to the pool. */
#ifndef RATES_INGEST_INT_H
#define RATES_INGEST_INT_H

#include "common.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "dynbuf.h"
#include "rowparse.h"

#define INGEST_MAX_ERRORS 100
#define INGEST_KEY_MAX 255
#define INGEST_NAME_MAX 64
#define INGEST_COPY_FLUSH (64 * 1024)  /* COPY data is sent in pieces of about this size */
#define INGEST_INFLATE_OUT (64 * 1024) /* a gzip body is parsed in pieces of at most this */

struct db_conn;
struct inflate_stream;
struct portset;

enum ingest_phase {
    INGEST_BEGIN = 0,
    INGEST_COPYING,
    INGEST_REPLAYING,
    INGEST_FAILED_DRAINING,
    INGEST_DONE
};

struct ingest_error {
    uint64_t line;
    char field[16];
    char message[160];
};

struct ingest {
    enum ingest_phase phase;
    int fmt; /* enum rowparse_format */
    char content_type[64];
    char token[INGEST_NAME_MAX + 1];
    char key[INGEST_KEY_MAX + 1]; /* Idempotency-Key, "" when none */
    int64_t key_lock;             /* advisory lock id of (token, key) */
    bool key_locked;
    int slot; /* global slot held (a row lock of the transaction), 0 when none */
    char request_id[72];
    /* Limits, copied from the configuration when the batch starts. */
    uint64_t max_bytes, max_rows;
    long idle_timeout_s, stmt_timeout_ms, ttl_s;
    /* Deadlines, checked as each chunk arrives (HTTP thread): the body must end by due_ns
     * (RATES_UPLOAD_TIMEOUT_S), and a gzip body must yield output within idle_timeout_s of
     * the last (compressed bytes that decode to nothing, such as empty gzip members, are not
     * progress, though each resets MHD's idle timer). progress_ns is written by the worker
     * that decodes a chunk, read after it resumes the connection. */
    uint64_t due_ns, progress_ns;
    /* The transaction: owned while conn != NULL. */
    struct db_conn *conn;
    bool in_tx, in_copy;
    int64_t batch_id;
    struct portset *ports;   /* owned */
    struct rowparse *parser; /* owned */
    bool parser_stopped;
    struct dynbuf copy; /* COPY text not yet sent */
    /* The body. */
    struct inflate_stream *gz; /* owned; NULL unless Content-Encoding: gzip */
    EVP_MD_CTX *sha;           /* owned: SHA-256 of the (decompressed) body */
    char sha_hex[65];
    uint64_t bytes, rows; /* bytes: decompressed, the size max_bytes bounds */
    char *chunk;          /* owned: the bytes a worker job is about to process */
    size_t chunk_len, chunk_cap;
    /* Timing. */
    uint64_t t0_ns;
    double received_epoch; /* wall clock, seconds */
    double duration_ms;
    /* Errors of rows (parser and unknown codes), first INGEST_MAX_ERRORS in body order. */
    struct ingest_error errors[INGEST_MAX_ERRORS];
    size_t nerrors;
    uint64_t error_total;
    /* The outcome. */
    int status; /* HTTP status once decided, else 0 */
    char message[256];
    const char *code; /* machine-readable error code or NULL */
    int outcome;      /* enum metrics_batch_outcome */
    bool record;      /* write a ledger record for a failure */
    bool retry_after;
    /* A replay: the committed batch the key names. */
    int64_t replay_id;
    uint64_t replay_rows, replay_bytes;
    double replay_duration_ms;
    char replay_sha[65];
    bool replay_retracted; /* the key names a retracted batch: 409 batch_retracted */
};

/* ingest.c */
void ingest_set_phase(struct ingest *b, enum ingest_phase to);
/* Records the failure (status, message) once; the first failure wins. */
void ingest_fail(struct ingest *b, int status, const char *code, const char *message);
void ingest_add_error(struct ingest *b, uint64_t line, const char *field, const char *message);
/* Copies a body chunk into b->chunk, growing it as needed. 0, or -1 (too large, no memory). */
int ingest_chunk_store(struct ingest *b, const char *data, size_t len) WUR;

/* ingest_db.c: every call runs on a worker thread (they block on libpq). */
enum { INGEST_BEGIN_COPY = 0, INGEST_BEGIN_REPLAY = 1, INGEST_BEGIN_FAILED = -1 };
/* Acquires the connection and the key lock; finds a replay, or opens the transaction, takes a
 * slot in it and starts COPY. On INGEST_BEGIN_FAILED the failure is recorded and nothing is held. */
int ingest_db_begin(struct ingest *b);
/* The parser's row callback: checks codes, appends the row to the COPY data. */
int ingest_db_row(void *ctx, const struct rowparse_row *row);
/* Sends the pending COPY data. 0, or -1 with the failure recorded. */
int ingest_db_flush(struct ingest *b) WUR;
/* Ends COPY (the set-wise check runs), writes the committed ledger record, commits.
 * 0, or -1 with the failure recorded (then everything is rolled back). */
int ingest_db_commit(struct ingest *b) WUR;
/* Rolls back whatever is open, records the failure in the ledger in its own transaction
 * when b->record, releases the locks and the connection. Safe in any state. */
void ingest_db_abort(struct ingest *b);

/* ingest_reply.c */
struct http_req;
/* Answers from b: 201 (committed or replayed) or the recorded failure. */
void ingest_reply(struct http_req *req, struct ingest *b);
/* The failure as one line of text for the ledger's error column (first row error too). */
void ingest_error_summary(const struct ingest *b, char *out, size_t cap);

#endif
