/* dbread.h: one prepared read statement for a request, retried on a dead connection. */
#ifndef RATES_DBREAD_H
#define RATES_DBREAD_H

#include "common.h"

#include <libpq-fe.h>

struct db_conn;
struct http_req;

/* Runs the prepared statement stmt on conn (a connection of APP.read_pool, from a worker).
 * Reads are idempotent, so when the server closed the connection (a restart, a failover) it
 * reconnects and runs the statement again, for up to a second (src/retry.h's schedule). Adds
 * the time to req->db_ns.
 * Returns the result (PGRES_TUPLES_OK; the caller PQclear()s it), or NULL after answering
 * req: 503 with Retry-After when the database is gone, 503 on a statement timeout, else 500. */
PGresult *dbread_exec(struct http_req *req, struct db_conn *conn, const char *stmt, int nparams,
                      const char *const *params) WUR;

#endif
