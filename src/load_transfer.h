/* load_transfer.h: rates-load's HTTP side: one POST of the whole file to URL/batches per
 * attempt with libcurl (the file read as curl asks, or gzip-compressed as it is sent), the
 * progress display, the reply kept (at most LOAD_TRANSFER_REPLY_MAX bytes) and read as JSON,
 * the reports of a reply, and the default Idempotency-Keys. Retry policy: load_outcome.h. */
#ifndef RATES_LOAD_TRANSFER_H
#define RATES_LOAD_TRANSFER_H

#include "common.h"
#include "load_outcome.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LOAD_TRANSFER_REPLY_MAX (1024 * 1024) /* a larger reply aborts the attempt */
#define LOAD_TRANSFER_URL_MAX 2048            /* the URL with /batches, NUL included */

struct load_transfer_cfg {
    const char *url;          /* the service; "/batches" is appended unless it ends so */
    const char *content_type; /* text/csv, application/x-ndjson or application/json */
    const char *key;          /* the Idempotency-Key (load_options_key_valid()) */
    const char *token;        /* the bearer token, "" for none: copied into a header */
    bool gzip;                /* Content-Encoding: gzip, compressed as it is sent */
    long timeout_s;           /* an attempt ends after that long without progress */
    int progress;             /* -1 auto (on), 0 off, 1 on; a bar when stdout is a terminal */
    double interval_s;        /* seconds between plain progress lines off a terminal */
};

/* One upload: the curl handle, the headers, the compressor and the reply. The transfer
 * borrows f (rewound before each attempt; the caller closes it) and copies what it needs of
 * cfg. */
struct load_transfer;

/* Initialises libcurl (once per process: one transfer at a time) and sets up a transfer of
 * size bytes of f into *out. Returns 0, or LOAD_EXIT_USAGE (URL too long) or LOAD_EXIT_LOCAL
 * (libcurl, out of memory) with a one-line message in err; *out is then NULL. */
int load_transfer_open(struct load_transfer **out, const struct load_transfer_cfg *cfg, FILE *f,
                       uint64_t size, char *err, size_t errcap) WUR;

/* Frees the transfer (NULL is allowed) and cleans up libcurl. */
void load_transfer_close(struct load_transfer *t);

/* What one attempt came to. answer.reply and answer.code point into the transfer: valid until
 * the next load_transfer_post() or load_transfer_close(). */
struct load_transfer_result {
    struct load_answer answer; /* for load_outcome_decide() */
    int read_errno;            /* answer.read_error: errno of the failed read */
    bool body_sent;       /* the whole file was read: a broken link leaves the commit unknown */
    double retry_after_s; /* Retry-After in seconds (capped), or -1 */
};

/* One POST of the whole file (rewound first), drawing the progress on stdout. */
void load_transfer_post(struct load_transfer *t, struct load_transfer_result *r);

/* Prints a 200/201's summary (batch id, rows, bytes, time, replayed) on stdout. */
void load_transfer_report_ok(const struct load_transfer *t);

/* Prints a final answer on stderr: status, message and code, the error count, and at most
 * show of the errors listed. */
void load_transfer_report_error(const struct load_transfer *t, long status, int show);

/* The hex SHA-256 of f's contents (read from where it stands) into out (65 bytes). Returns 0,
 * or -1 (read error: errno says why; out of memory). */
int load_transfer_key_file(FILE *f, char *out) WUR;

/* A random key: 32 hex digits into out (33 bytes). Returns 0, or -1 (getrandom failed). */
int load_transfer_key_random(char *out) WUR;

#endif
