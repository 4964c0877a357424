/* fold.c: the fold thread (fold.h). Ownership: the thread owns its PGconn; fold_url is set
 * before the thread starts and freed after it is joined; the cancel handle is shared with
 * fold_stop() under fold_lock. */
#include "fold.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "sqlstate.h"

/* A fold waits at most this long for a row lock (an idle writer's transaction holds the
 * data-version row): it gives up and the next tick tries again. */
#define FOLD_LOCK_TIMEOUT "5s"

static pthread_t fold_thread;
static bool fold_started;
static char *fold_url;
static long fold_connect_timeout_s, fold_interval_ms;
static pthread_mutex_t fold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fold_cond = PTHREAD_COND_INITIALIZER;
static bool fold_stopping, fold_kicked; /* under fold_lock */
static bool fold_started_once;          /* the thread's own: the first fold does not settle */
static PGcancel *fold_cancel;           /* under fold_lock; NULL while no statement runs */

/* A kick is served this long after it came, not at once: every instance's follower fetches
 * the commit's change rows right after it (docs/readmodel.md), and a fold started beside them
 * competes for the same cores and the same rows. Measured with make bench-staleness (50,000-row
 * batches, 2 cores): a second instance's staleness median 134 ms, p99 521 ms with the fold at
 * once; the fold lag grows by this much at most, and kicks within it are served by one fold. */
#define FOLD_SETTLE_MS 250

/* Waits for a kick (then FOLD_SETTLE_MS more), the interval or stop; false on stop. The
 * kick of fold_start() is served at once: a tail left by a previous process is folded before
 * this one serves (a version bump in the middle of its first reads would make fills stale). */
static bool fold_wait(void)
{
    struct timespec until = clock_after_ms(CLOCK_REALTIME, fold_interval_ms);
    pthread_mutex_lock(&fold_lock);
    while (!fold_stopping && !fold_kicked) {
        if (pthread_cond_timedwait(&fold_cond, &fold_lock, &until) != 0)
            break;
    }
    if (fold_kicked && !fold_stopping && fold_started_once) {
        struct timespec settle = clock_after_ms(CLOCK_REALTIME, FOLD_SETTLE_MS);
        while (!fold_stopping && pthread_cond_timedwait(&fold_cond, &fold_lock, &settle) == 0)
            ; /* further kicks are served by this fold; stop ends the wait */
    }
    fold_kicked = false;
    fold_started_once = true;
    bool go = !fold_stopping;
    pthread_mutex_unlock(&fold_lock);
    return go;
}

/* Runs sql with the cancel handle published; the caller owns the result. */
static PGresult *fold_exec(PGconn *pg, const char *sql)
{
    PGcancel *cancel = PQgetCancel(pg);
    pthread_mutex_lock(&fold_lock);
    bool stop = fold_stopping;
    fold_cancel = stop ? NULL : cancel;
    pthread_mutex_unlock(&fold_lock);
    PGresult *r = stop ? NULL : PQexec(pg, sql);
    pthread_mutex_lock(&fold_lock);
    fold_cancel = NULL;
    pthread_mutex_unlock(&fold_lock);
    if (cancel)
        PQfreeCancel(cancel);
    return r;
}

/* A failure that is expected and says nothing is wrong here (src/sqlstate.h's map): a replica
 * or an outage behind the URL for a while (unavailable), a writer's lock held past the lock
 * timeout (busy: the next tick tries again), or a schema before migration 0016 (42883, an old
 * schema during an upgrade). state: the failure's SQLSTATE, NULL when there is none. */
static bool fold_quiet_failure(const char *state)
{
    if (!state)
        return false;
    enum sqlstate_kind k = sqlstate_classify(state, false);
    return k == SQLSTATE_UNAVAILABLE || k == SQLSTATE_BUSY || strcmp(state, "42883") == 0;
}

/* Reads the tail left and its age into the gauges. */
static void fold_measure(PGconn *pg)
{
    PGresult *r = fold_exec(pg, "SELECT tail_rows, CASE WHEN tail_rows > 0 THEN "
                                "extract(epoch FROM clock_timestamp() - folded_at) ELSE 0 END "
                                "FROM public.rates_fold_lag()");
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        metrics_fold_tail(strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                          strtod(PQgetvalue(r, 0, 1), NULL));
    PQclear(r);
}

/* One fold; returns false when the connection should be dropped. */
static bool fold_once(PGconn *pg, bool *failing)
{
    uint64_t t0 = clock_mono_ns();
    PGresult *r = fold_exec(pg, "SELECT public.rates_fold()");
    uint64_t ns = clock_mono_ns() - t0;
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok) {
        long long moved = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        metrics_fold_done(moved < 0    ? FOLD_BUSY
                          : moved == 0 ? FOLD_IDLE
                                       : FOLD_MOVED,
                          moved > 0 ? (uint64_t)moved : 0, ns);
        if (moved > 0)
            LOG_DEBUG("fold: %lld change rows moved in %.3f s", moved, (double)ns / 1e9);
        if (*failing)
            LOG_INFO("fold: runs again");
        *failing = false;
        PQclear(r);
        fold_measure(pg);
        return true;
    }
    pthread_mutex_lock(&fold_lock);
    bool stopping = fold_stopping; /* a fold stopped or cancelled by fold_stop() is no failure */
    pthread_mutex_unlock(&fold_lock);
    if (stopping) {
        PQclear(r);
        return true;
    }
    metrics_fold_done(FOLD_ERROR, 0, ns);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!fold_quiet_failure(state) && !*failing)
        LOG_WARN("fold: %s", r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
    *failing = true;
    /* Keep the connection unless it is broken or the server is unavailable or read only (the
     * URL may lead to the new primary next time). */
    bool keep = PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_IDLE &&
                sqlstate_classify(state, false) != SQLSTATE_UNAVAILABLE;
    PQclear(r);
    return keep;
}

static void *fold_main(void *arg)
{
    (void)arg;
    PGconn *pg = NULL;
    bool failing = false;
    while (fold_wait()) {
        if (!pg) {
            char err[512];
            pg = db_connect_once(fold_url, fold_connect_timeout_s, "ratesd-fold", err, sizeof err);
            if (!pg) {
                if (!failing)
                    LOG_WARN("fold: %s", err);
                failing = true;
                continue;
            }
            PQclear(fold_exec(pg, "SET lock_timeout = '" FOLD_LOCK_TIMEOUT "'"));
        }
        if (!fold_once(pg, &failing)) {
            PQfinish(pg); /* the URL may lead to another primary next time */
            pg = NULL;
        }
    }
    if (pg)
        PQfinish(pg);
    return NULL;
}

int fold_start(const char *url, long connect_timeout_s, long interval_ms)
{
    if (interval_ms <= 0)
        return 0;
    fold_url = strdup(url ? url : "");
    if (!fold_url)
        return -1;
    fold_connect_timeout_s = connect_timeout_s;
    fold_interval_ms = interval_ms;
    fold_stopping = false;
    fold_started_once = false;
    fold_kicked = true; /* a tail left by a previous process is folded at once */
    if (pthread_create(&fold_thread, NULL, fold_main, NULL) != 0) {
        free(fold_url);
        fold_url = NULL;
        return -1;
    }
    fold_started = true;
    return 0;
}

void fold_stop(void)
{
    if (!fold_started)
        return;
    pthread_mutex_lock(&fold_lock);
    fold_stopping = true;
    if (fold_cancel) {
        char err[256];
        (void)PQcancel(fold_cancel, err, sizeof err);
    }
    pthread_cond_broadcast(&fold_cond);
    pthread_mutex_unlock(&fold_lock);
    pthread_join(fold_thread, NULL);
    fold_started = false;
    free(fold_url);
    fold_url = NULL;
}

void fold_kick(void)
{
    pthread_mutex_lock(&fold_lock);
    fold_kicked = true;
    pthread_cond_signal(&fold_cond);
    pthread_mutex_unlock(&fold_lock);
}
