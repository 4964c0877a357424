/* app.h: the process-wide pieces that route handlers need (set up by main). */
#ifndef RATES_APP_H
#define RATES_APP_H

#include "config.h"

struct db_pool;
struct http_server;

struct app {
    struct config cfg;          /* read-only after start; SIGHUP (reload.c) applies log_level
                                 * and ingest_tokens to their modules, never writes here */
    struct db_pool *pool;       /* primary, batch lanes: ingest transactions and retractions
                                 * (RATES_POOL_SIZE - RATES_WORKERS connections) */
    struct db_pool *query_pool; /* primary, read lane: ledger GETs, primary reads
                                 * (RATES_WORKERS connections) */
    struct db_pool *read_pool;  /* replicas for reads, or the same as query_pool */
    struct http_server *srv;
};

extern struct app APP;

#endif
