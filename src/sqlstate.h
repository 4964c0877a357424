/* sqlstate.h: which PostgreSQL errors mean "this server cannot take the write now, another
 * may": the writers (batches, retractions) answer them 503 with Retry-After, not 500. */
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

#endif
