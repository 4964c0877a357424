/* cache_listen.h: the cache's LISTEN connection to the primary (docs/cache.md). A thread of its
 * own keeps one connection (TCP keepalives on) subscribed to NOTIFY rates_data_version and
 * tells the cache each version announced; when the connection is lost the cache is dropped
 * and stops serving until the thread has reconnected, run LISTEN and read the version again. */
#ifndef RATES_CACHE_LISTEN_H
#define RATES_CACHE_LISTEN_H

#include "common.h"

struct cache;

/* Starts the listener thread for cache c on the primary at url (libpq URI or conninfo, empty:
 * PG* variables). Returns 0, or -1 when the thread cannot start. */
int cache_listen_start(struct cache *c, const char *url, long connect_timeout_s) WUR;
/* Stops and joins the thread (within about half a second); the cache is left not live. */
void cache_listen_stop(void);

#endif
