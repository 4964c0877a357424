/* sample.c: tells /readyz whether the data is make up's synthetic sample (scripts/up.sh). */
#include "sample.h"

#include <stdatomic.h>
#include <string.h>

/* Must match sample_mark in scripts/up.sh. */
#define SAMPLE_MARK "rates sample: synthetic data made by rates-gen, not the dump"

static atomic_bool sample_seen;

void sample_check(PGconn *pg)
{
    if (!pg || PQstatus(pg) != CONNECTION_OK)
        return;
    PGresult *r = PQexec(pg, "SELECT coalesce(pg_catalog.obj_description("
                             "pg_catalog.to_regclass('public.prices'), 'pg_class'), '')");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        atomic_store(&sample_seen, strcmp(PQgetvalue(r, 0, 0), SAMPLE_MARK) == 0);
    PQclear(r);
}

const char *sample_kind(void)
{
    return atomic_load(&sample_seen) ? "sample" : "loaded";
}
