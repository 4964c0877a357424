/* migrate.h: schema migrations compiled into the binary (see tools/embed_migrations.sh). */
#ifndef RATES_MIGRATE_H
#define RATES_MIGRATE_H

#include "common.h"

#include <libpq-fe.h>

struct migration {
    int version;
    const char *name;
    int no_transaction; /* "-- rates:no-transaction": statements run one by one, outside BEGIN */
    const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

/* The schema version this binary needs (the highest migration it carries). */
int migrate_required_version(void);
/* Applies pending migrations under an advisory lock. Returns 0, or -1 with err. */
int migrate_run(const char *url, long connect_timeout_s, char *err, size_t errcap) WUR;
/* The applied schema version on pg (0 when none), or -1 with err. */
int migrate_current_version(PGconn *pg, char *err, size_t errcap);

#endif
