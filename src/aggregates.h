/* aggregates.h: `ratesd aggregates rebuild|check`, the operator's tools for the daily
 * aggregate (db/migrations/0010, docs/aggregates.md). */
#ifndef RATES_AGGREGATES_H
#define RATES_AGGREGATES_H

#include "common.h"

#include <stdio.h>

enum aggregates_action { AGGREGATES_NONE = 0, AGGREGATES_CHECK, AGGREGATES_REBUILD };

/* The action a sub-command word names, or AGGREGATES_NONE. */
enum aggregates_action aggregates_parse(const char *word);
/* Runs it against url; prints to out. Returns the exit code: 0 clean (or rebuilt), 1 a
 * difference found by check, 2 a database error. */
int aggregates_run(enum aggregates_action action, const char *url, long connect_timeout_s,
                   FILE *out);
/* The lines `ratesd --help` adds for the sub-commands. */
void aggregates_usage(FILE *out);

#endif
