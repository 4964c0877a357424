/* fold.h: the background fold of the change log into the daily aggregate (migration 0016,
 * docs/aggregates.md). One thread per instance with its own connection to the primary; it
 * calls public.rates_fold() every interval and at once after a write committed here. The
 * database lets one fold run at a time across instances (the others return at once). */
#ifndef RATES_FOLD_H
#define RATES_FOLD_H

#include "common.h"

/* Starts the thread (interval_ms 0: no fold on this instance, returns 0). url is copied.
 * Returns 0, or -1 when the thread cannot start. */
int fold_start(const char *url, long connect_timeout_s, long interval_ms) WUR;
/* Cancels a fold in progress (it rolls back: the log keeps its rows) and joins the thread. */
void fold_stop(void);
/* Asks for a fold now (after a committed write). Never blocks on the database. */
void fold_kick(void);

#endif
