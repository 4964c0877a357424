/* db.h: a bounded pool of libpq connections with lazy connect, backoff and prepared statements. */
#ifndef RATES_DB_H
#define RATES_DB_H

#include "common.h"

#include <libpq-fe.h>
#include <stdbool.h>

struct db_pool;

struct db_conn {
    PGconn *pg; /* owned by the pool */
    int slot;
};

struct db_pool_settings {
    const char *url; /* libpq URI or conninfo; empty: PG* variables, database "rates" */
    int size;
    long statement_timeout_ms;
    long connect_timeout_s;
    const char *application_name;
    int metric; /* enum metrics_pool: labels the pool's gauges (pool="...") */
};

enum { DB_OK = 0, DB_ERR_TIMEOUT = -1, DB_ERR_CONNECT = -2, DB_ERR_CLOSED = -3 };

/* Statements prepared on every new connection. Register before db_pool_new(). */
void db_register_statement(const char *name, const char *sql, int nparams);

struct db_pool *db_pool_new(const struct db_pool_settings *s);
/* Closes every connection (open transactions roll back); waits for none. */
void db_pool_free(struct db_pool *p);
/* Waits up to wait_ms for a connection, connecting it if needed. On error, err says why
 * (never the connection string). The caller owns *out until db_pool_release(). */
int db_pool_acquire(struct db_pool *p, long wait_ms, struct db_conn **out, char *err,
                    size_t errcap) WUR;
/* Returns c to the pool. A broken connection, or one left inside a transaction that cannot be
 * rolled back, is closed and its slot reconnects on next use. */
void db_pool_release(struct db_pool *p, struct db_conn *c);
/* Marks c unusable: release will close it. */
void db_conn_discard(struct db_conn *c);
/* Replaces c's connection with a new one (statements prepared), connected with the settings
 * of the pool c came from, whatever p is. 0, or -1 with err. */
int db_conn_reconnect(struct db_pool *p, struct db_conn *c, char *err, size_t errcap) WUR;
/* Copies the libpq error of c (or of res when given) into err, one line. */
void db_error_copy(const struct db_conn *c, const PGresult *res, char *err, size_t errcap);
/* True when the error on c means the connection is gone (so the request should get 503). */
bool db_conn_broken(const struct db_conn *c);
/* Opens a standalone connection (migrate, tools). Caller PQfinish()es it. */
PGconn *db_connect_once(const char *url, long connect_timeout_s, const char *app, char *err,
                        size_t errcap);

#endif
