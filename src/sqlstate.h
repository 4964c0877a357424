/* sqlstate.h: the one map from a failed write's SQLSTATE to what the client is told, for every
 * write path (POST /batches, DELETE /batches/{id}): whether another try (here or on another
 * server) may succeed, and with which status. */
#ifndef RATES_SQLSTATE_H
#define RATES_SQLSTATE_H

#include <stdbool.h>
#include <string.h>

/* Class 08 (connection exception), 57P01..57P05 (admin/crash shutdown, cannot connect now,
 * idle session timeout...), 25006 read_only_sql_transaction (a hot standby, a node being
 * demoted, default_transaction_read_only) and 53300 too_many_connections. */
static inline bool sqlstate_unavailable(const char *state)
{
    return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
                     strcmp(state, "25006") == 0 || strcmp(state, "53300") == 0);
}

enum sqlstate_kind {
    SQLSTATE_UNAVAILABLE = 0, /* 503 + Retry-After: the server is gone or read only */
    SQLSTATE_BUSY,            /* 503 + Retry-After: lock or statement timeout, serialization,
                               * deadlock: the same request may succeed in a moment */
    SQLSTATE_UNIQUE,          /* 23505: the caller decides (an Idempotency-Key race) */
    SQLSTATE_FOREIGN_KEY,     /* 23503: the caller decides (a port removed meanwhile) */
    SQLSTATE_OTHER            /* 500 */
};

/* state NULL: no result (a send failed on the socket); broken: the connection is unusable. */
static inline enum sqlstate_kind sqlstate_classify(const char *state, bool broken)
{
    if (broken || !state || sqlstate_unavailable(state))
        return SQLSTATE_UNAVAILABLE;
    if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 || strcmp(state, "40001") == 0 ||
        strcmp(state, "40P01") == 0)
        return SQLSTATE_BUSY;
    if (strcmp(state, "23505") == 0)
        return SQLSTATE_UNIQUE;
    if (strcmp(state, "23503") == 0)
        return SQLSTATE_FOREIGN_KEY;
    return SQLSTATE_OTHER;
}

/* The status of a kind; UNIQUE and FOREIGN_KEY are 409 where the caller expects them and
 * 500 elsewhere. */
static inline int sqlstate_status(enum sqlstate_kind k)
{
    return k == SQLSTATE_UNAVAILABLE || k == SQLSTATE_BUSY ? 503 : k == SQLSTATE_OTHER ? 500 : 409;
}

static inline const char *sqlstate_message(enum sqlstate_kind k)
{
    return k == SQLSTATE_UNAVAILABLE ? "Database unavailable, retry later"
           : k == SQLSTATE_BUSY      ? "Database busy (lock or statement timeout), retry later"
                                     : "Database error";
}

#endif
