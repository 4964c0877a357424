/* load_outcome.h: rates-load's retry and exit-code policy (docs/exit-codes.md), as pure
 * functions: what one attempt came to -> retry or stop, with which exit code, after how long.
 * Nothing here does I/O, allocates or keeps state; every pointer passed in is only read during
 * the call, and every string returned is static. */
#ifndef RATES_LOAD_OUTCOME_H
#define RATES_LOAD_OUTCOME_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

/* The exit codes of rates-load (docs/exit-codes.md, man/rates-load.1.in, --help). */
enum {
    LOAD_EXIT_OK = 0,         /* committed, or already committed (a replay) */
    LOAD_EXIT_LOCAL = 1,      /* the file or the token file cannot be read; out of memory */
    LOAD_EXIT_USAGE = 2,      /* bad options or arguments (as ratesd and rates-gen) */
    LOAD_EXIT_REJECTED = 3,   /* 422: invalid rows; nothing was inserted */
    LOAD_EXIT_KEY_REUSED = 4, /* 422 idempotency_key_reused: the key names another body */
    LOAD_EXIT_AUTH = 5,       /* 401 or 403 */
    LOAD_EXIT_REFUSED = 6,    /* another answer (413, 415, other 4xx) or a final curl error */
    LOAD_EXIT_GAVE_UP = 7,    /* retries exhausted (503, 409 in flight, 502/504, broken links) */
    LOAD_EXIT_CONFLICT = 8,   /* a final 409: batch_retracted, port_removed: not retried */
};

#define LOAD_OUTCOME_BACKOFF_FIRST_S 0.5 /* the first retry's wait, before jitter */
#define LOAD_OUTCOME_BACKOFF_MAX_S 30.0  /* the cap of the doubling, before jitter */
#define LOAD_OUTCOME_RETRY_AFTER_MAX_S 300.0

/* What one attempt came to, as the transfer saw it. */
struct load_answer {
    bool read_error;   /* the file could not be read during the attempt */
    CURLcode curl;     /* CURLE_OK when an HTTP answer came */
    long status;       /* the HTTP status when curl is CURLE_OK, else 0 */
    const char *reply; /* the response body, not NUL-terminated (NULL when none) */
    size_t reply_len;
    const char *code; /* the reply's JSON "code" member, or NULL */
};

enum load_verdict {
    LOAD_VERDICT_COMMITTED,  /* 200 or 201: exit 0 */
    LOAD_VERDICT_READ_ERROR, /* the file failed us: exit 1 */
    LOAD_VERDICT_ANSWERED,   /* a final HTTP answer: exit from load_outcome_status_exit() */
    LOAD_VERDICT_BROKEN,     /* a curl error that a retry would repeat: exit 6 */
    LOAD_VERDICT_RETRY,      /* transient: wait load_outcome_backoff_s() and send again */
    LOAD_VERDICT_GAVE_UP,    /* transient, but the retries are used up: exit 7 */
};

struct load_decision {
    enum load_verdict verdict;
    int exit_code; /* the process's exit code; -1 for LOAD_VERDICT_RETRY */
};

/* Decides after attempt number `attempt` (0-based) when at most `retries` retries may follow
 * the first attempt: the order of the checks is read error, success, a final HTTP answer, a
 * final curl error, then the retry budget. */
struct load_decision load_outcome_decide(const struct load_answer *a, int attempt, int retries);

/* Whether an HTTP answer is transient: 502, 503, 504, and a 409 whose reply names
 * "idempotency_key_in_progress" (the same key still in flight, typically our own earlier
 * attempt). Any other 409 (batch_retracted, port_removed) and 500 would answer the same again. */
bool load_outcome_status_retryable(long status, const char *reply, size_t reply_len);

/* Whether a curl error is worth a retry: all but a bad URL or protocol, our own aborts (read,
 * write, callback: the reply too large), out of memory and the TLS certificate problems. */
bool load_outcome_curl_retryable(CURLcode c);

/* The exit code of a final (not retried) HTTP answer: 200/201 -> 0, 401/403 -> 5, 422 with
 * code idempotency_key_reused -> 4, other 422 -> 3, 409 -> 8, anything else -> 6. */
int load_outcome_status_exit(long status, const char *code);

/* What to tell the operator to do after a final answer, or NULL: a retracted batch's key. */
const char *load_outcome_hint(long status, const char *code);

/* The wait in seconds before retry number attempt + 1: retry_after_s when >= 0 (as
 * load_outcome_retry_after() returned it), else 0.5 s doubling per attempt up to 30 s, times
 * 0.75 + 0.5 * jitter / 255 for jitter 0..255 (so 0.375 s to 37.5 s); a negative jitter (no
 * random byte) leaves it unscaled. */
double load_outcome_backoff_s(int attempt, double retry_after_s, int jitter);

/* A Retry-After header's value (len bytes, not NUL-terminated, at most 31 read) in seconds,
 * capped at LOAD_OUTCOME_RETRY_AFTER_MAX_S; -1 when it is not a number of seconds (an HTTP
 * date is treated as absent). */
double load_outcome_retry_after(const char *value, size_t len);

#endif
