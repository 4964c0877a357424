/* db_route.h: which pool a piece of work takes its connection from (docs/high-availability.md).
 * The database layer decides: the primary, a replica of the read pool, a replica only once it
 * has replayed a client's LSN (else the primary), and the fallback to the replicas when no
 * primary answers for a read that merely prefers it. The HTTP layer says what it wants and
 * gets a connection and the pool to give it back to.
 *
 * Ownership: the pools belong to the caller of db_route_acquire() (they outlive every
 * request); the connection in got is the caller's until db_pool_release(got->pool, ...). */
#ifndef RATES_DB_ROUTE_H
#define RATES_DB_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"
#include "db.h"

struct db_route {
    struct db_pool *primary;  /* the read lane's primary connections */
    struct db_pool *batch;    /* the batch and commit lanes' */
    struct db_pool *replicas; /* RATES_DATABASE_READ_URL's, or the same as primary */
    long wait_ms;             /* longest wait for a free connection, per pool tried */
};

enum db_route_want {
    DB_ROUTE_PRIMARY = 0, /* the primary (writes, Rates-Consistency: primary) */
    DB_ROUTE_PREFER,      /* the primary, or the replicas when no primary answers */
    DB_ROUTE_REPLICA,     /* the replicas (plain reads) */
    DB_ROUTE_BATCH,       /* the batch pool (the primary) */
};

struct db_route_got {
    struct db_pool *pool; /* give conn back to this pool */
    struct db_conn *conn;
    bool fell_back; /* DB_ROUTE_PREFER ended on a replica */
};

/* min_lsn: with DB_ROUTE_REPLICA, a replica that has not replayed it (or cannot tell) is
 * given back and the primary is used instead; NULL or "": no bound. Returns DB_OK with
 * got->conn set, or a DB_ERR_* with err (never a connection string). */
int db_route_acquire(const struct db_route *r, enum db_route_want want, const char *min_lsn,
                     struct db_route_got *got, char *err, size_t errcap) WUR;

#endif
