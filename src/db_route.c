/* db_route.c: see db_route.h. */
#include "db_route.h"

#include <string.h>

/* True when conn is a standby that has not yet replayed lsn (or cannot tell): the read must
 * then go to the primary to see the client's own write. */
static bool route_replica_behind(struct db_conn *conn, const char *lsn)
{
    const char *params[1] = { lsn };
    PGresult *r = PQexecParams(conn->pg,
                               "SELECT pg_is_in_recovery() AND "
                               "coalesce(pg_last_wal_replay_lsn() < $1::pg_lsn, true)",
                               1, NULL, params, NULL, NULL, 0);
    bool behind = PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
                  strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    return behind;
}

static int route_take(struct db_pool *pool, long wait_ms, struct db_route_got *got, char *err,
                      size_t errcap)
{
    got->pool = pool;
    got->conn = NULL;
    return db_pool_acquire(pool, wait_ms, &got->conn, err, errcap);
}

int db_route_acquire(const struct db_route *r, enum db_route_want want, const char *min_lsn,
                     struct db_route_got *got, char *err, size_t errcap)
{
    got->fell_back = false;
    bool replicas = r->replicas && r->replicas != r->primary;
    switch (want) {
    case DB_ROUTE_BATCH:
        return route_take(r->batch, r->wait_ms, got, err, errcap);
    case DB_ROUTE_PRIMARY:
        return route_take(r->primary, r->wait_ms, got, err, errcap);
    case DB_ROUTE_PREFER: {
        int rc = route_take(r->primary, r->wait_ms, got, err, errcap);
        if (rc == DB_OK || !replicas)
            return rc;
        /* No primary (a failover): the replicas still answer reads (docs/cache.md). */
        got->fell_back = true;
        return route_take(r->replicas, r->wait_ms, got, err, errcap);
    }
    case DB_ROUTE_REPLICA:
        break;
    }
    int rc = route_take(replicas ? r->replicas : r->primary, r->wait_ms, got, err, errcap);
    if (rc != DB_OK || !replicas || !min_lsn || !min_lsn[0] ||
        !route_replica_behind(got->conn, min_lsn))
        return rc;
    db_pool_release(got->pool, got->conn);
    return route_take(r->primary, r->wait_ms, got, err, errcap);
}
