/* aggregates.c: `ratesd aggregates check` prints every difference between the daily
 * aggregate and the raw prices (public.rates_daily_diff(), a read-only function the
 * service role may run) and exits 1 on one; `ratesd aggregates rebuild` rewrites the rows
 * that differ (public.rates_daily_rebuild(), SECURITY DEFINER, one transaction under the
 * aggregate's exclusive lock: writers wait for it, readers never do), then checks. */
#include "aggregates.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"

#define AGGREGATES_PRINT_MAX 100 /* differences printed; the count is always exact */
/* Both grouping every price by (node pair, day): with the default 4 MB they sort on disk. */
#define AGGREGATES_WORK_MEM "SET work_mem = '256MB'"

enum aggregates_action aggregates_parse(const char *word)
{
    if (word && strcmp(word, "check") == 0)
        return AGGREGATES_CHECK;
    if (word && strcmp(word, "rebuild") == 0)
        return AGGREGATES_REBUILD;
    return AGGREGATES_NONE;
}

void aggregates_usage(FILE *out)
{
    fprintf(out, "\n       ratesd aggregates check     compare the daily aggregate with the raw "
                 "prices (exit 1 on a difference)\n"
                 "       ratesd aggregates rebuild   rewrite what differs from the raw prices, "
                 "then check\n");
}

/* 0 when clean, 1 with the differences printed, 2 on a database error. */
static int aggregates_check(PGconn *pg, FILE *out)
{
    PGresult *r = PQexec(pg, "SELECT kind, orig_node, dest_node, coalesce(day::text, ''),"
                             " coalesce(want_n::text, '-'), coalesce(have_n::text, '-'),"
                             " coalesce(want_total::text, '-'), coalesce(have_total::text, '-')"
                             " FROM public.rates_daily_diff()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "ratesd aggregates check: %s", PQresultErrorMessage(r));
        PQclear(r);
        return 2;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n && i < AGGREGATES_PRINT_MAX; i++)
        fprintf(out, "%s %s -> %s %s: prices say n=%s total=%s, aggregate has n=%s total=%s\n",
                PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 6), PQgetvalue(r, i, 5), PQgetvalue(r, i, 7));
    fprintf(out, "aggregates check: %d difference%s\n", n, n == 1 ? "" : "s");
    PQclear(r);
    return n ? 1 : 0;
}

static int aggregates_rebuild(PGconn *pg, FILE *out)
{
    uint64_t t0 = clock_mono_ns();
    PGresult *r = PQexec(pg, "SELECT public.rates_daily_rebuild()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "ratesd aggregates rebuild: %s", PQresultErrorMessage(r));
        PQclear(r);
        return 2;
    }
    fprintf(out, "aggregates rebuild: %s row%s rewritten in %.1f ms\n", PQgetvalue(r, 0, 0),
            strcmp(PQgetvalue(r, 0, 0), "1") == 0 ? "" : "s", (double)(clock_mono_ns() - t0) / 1e6);
    PQclear(r);
    return 0;
}

int aggregates_run(enum aggregates_action action, const char *url, long connect_timeout_s,
                   FILE *out)
{
    char err[512];
    PGconn *pg = db_connect_once(url, connect_timeout_s, "ratesd-aggregates", err, sizeof err);
    if (!pg) {
        fprintf(stderr, "ratesd aggregates: %s\n", err);
        return 2;
    }
    int rc = 0;
    PGresult *r = PQexec(pg, AGGREGATES_WORK_MEM);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "ratesd aggregates: %s", PQresultErrorMessage(r));
        rc = 2;
    }
    PQclear(r);
    if (rc == 0 && action == AGGREGATES_REBUILD)
        rc = aggregates_rebuild(pg, out);
    if (rc == 0)
        rc = aggregates_check(pg, out);
    PQfinish(pg);
    return rc;
}
