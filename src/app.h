/* app.h: the process-wide pieces that route handlers need (set up by main). */
#ifndef RATES_APP_H
#define RATES_APP_H

#include "config.h"

struct db_pool;
struct http_server;

struct app {
    struct config cfg;         /* read-only after start, except fields reloaded on SIGHUP */
    struct db_pool *pool;      /* read-write primary */
    struct db_pool *read_pool; /* replicas for /rates, or the same as pool */
    struct http_server *srv;
};

extern struct app APP;

#endif
