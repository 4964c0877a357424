/* health.c: liveness, readiness (from a monitor thread), the root greeting and /metrics. */
#include "health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "db.h"
#include "dynbuf.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "retry.h"
#include "sample.h"

/* The write side: the database URL reachable, the schema read, and not in recovery (a
 * replica or a node being demoted behind the write endpoint cannot take writes). */
static atomic_bool db_ok;
static atomic_bool db_checked; /* the first failure is logged too, not only a change */
static atomic_int schema_version = -1;
/* The read side: the read URL (or the database URL when there is none) answers. */
static atomic_bool read_ok;
static atomic_bool read_checked;
static atomic_int read_schema_version = -1;
static atomic_bool stopping;
static pthread_t monitor;
static bool monitor_started;
static char *monitor_url;
static char *monitor_read_url;   /* owned; NULL: reads use monitor_url */
static atomic_bool read_url_own; /* monitor_read_url is set (readable by /readyz's threads) */
static long monitor_connect_timeout_s, monitor_interval_ms;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;

/* One side's state, so that both checks share one function. */
struct health_side {
    const char *what; /* "database" or "read database", for the log */
    atomic_bool *ok;
    atomic_bool *checked;
    atomic_int *version;
    bool need_writable;
};

static void health_side_fail(const struct health_side *side, const char *why, const char *err)
{
    if (atomic_exchange(side->ok, false) | !atomic_exchange(side->checked, true))
        LOG_WARN("readiness: %s %s: %s", side->what, why, err);
}

/* Returns 1 when the node takes writes, 0 when it is in recovery, -1 on error (err set). */
static int health_writable(PGconn *pg, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, "SELECT pg_is_in_recovery()");
    int rc = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        rc = strcmp(PQgetvalue(r, 0, 0), "f") == 0;
    else
        snprintf(err, errlen, "%s", PQerrorMessage(pg));
    PQclear(r);
    return rc;
}

/* What one look at a side found. */
enum health_probe {
    PROBE_OK,        /* answered, and writable when that is asked */
    PROBE_READ_ONLY, /* answered, in recovery: *pg was closed */
    PROBE_FAILED,    /* no answer: err and *why set, *pg closed */
};

/* One look at url on *pg (a new connection when there is none or the kept one was cut);
 * the schema version in *v when it answered. */
static enum health_probe health_probe_side(PGconn **pg, const char *url, bool need_writable, int *v,
                                           const char **why, char *err, size_t cap)
{
    if (*pg && PQstatus(*pg) != CONNECTION_OK) {
        PQfinish(*pg);
        *pg = NULL;
    }
    *why = "unreachable";
    if (!*pg) {
        *pg = db_connect_once(url, monitor_connect_timeout_s, "ratesd-health", err, cap);
        if (!*pg)
            return PROBE_FAILED;
    }
    *v = migrate_current_version(*pg, err, cap);
    if (*v < 0 && PQstatus(*pg) != CONNECTION_OK) {
        /* A kept connection that was cut (a balancer moved its backend): a new one. */
        PQfinish(*pg);
        *pg = db_connect_once(url, monitor_connect_timeout_s, "ratesd-health", err, cap);
        if (!*pg)
            return PROBE_FAILED;
        *v = migrate_current_version(*pg, err, cap);
    }
    int w = *v < 0 || !need_writable ? 1 : health_writable(*pg, err, cap);
    if (*v < 0 || w < 0) {
        *why = "check failed";
        PQfinish(*pg);
        *pg = NULL;
        return PROBE_FAILED;
    }
    if (w == 0) {
        PQfinish(*pg); /* reconnect: the endpoint may lead to the new primary next time */
        *pg = NULL;
        return PROBE_READ_ONLY;
    }
    return PROBE_OK;
}

/* Waits ms unless the monitor is told to stop; false when it is. */
static bool health_pause(long ms)
{
    struct timespec until = clock_after_ms(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&stop_lock);
    while (!atomic_load(&stopping) && pthread_cond_timedwait(&stop_cond, &stop_lock, &until) == 0) {
    }
    pthread_mutex_unlock(&stop_lock);
    return !atomic_load(&stopping);
}

/* Returns true when the database answered (even if it is not writable). A side is marked
 * down only when the tries of src/retry.h's schedule all failed: a read retries on that
 * schedule too, so one failed look (a balancer moving its backend in a failover) would take
 * every instance out of rotation at once while their reads still succeed. */
static bool health_check_side(PGconn **pg, const char *url, const struct health_side *side)
{
    char err[512] = "";
    const char *why = "unreachable";
    int v = -1;
    enum health_probe p =
        health_probe_side(pg, url, side->need_writable, &v, &why, err, sizeof err);
    uint64_t failed_at = clock_mono_ns();
    for (int tries = 0; p == PROBE_FAILED; tries++) {
        long pause_ms = retry_pause_ms(tries, (long)((clock_mono_ns() - failed_at) / 1000000ull));
        if (pause_ms < 0 || (pause_ms > 0 && !health_pause(pause_ms)))
            break;
        p = health_probe_side(pg, url, side->need_writable, &v, &why, err, sizeof err);
    }
    if (p == PROBE_FAILED) {
        health_side_fail(side, why, err);
        return false;
    }
    atomic_store(side->version, v);
    if (p == PROBE_READ_ONLY) {
        health_side_fail(side, "not writable", "in recovery (a replica, or being demoted)");
        return true;
    }
    atomic_store(side->checked, true);
    if (!atomic_exchange(side->ok, true))
        LOG_INFO("readiness: %s reachable, schema version %d", side->what, v);
    return true;
}

static void health_check_once(PGconn **pg, PGconn **rpg)
{
    static const struct health_side wside = { "database", &db_ok, &db_checked, &schema_version,
                                              true };
    static const struct health_side rside = { "read database", &read_ok, &read_checked,
                                              &read_schema_version, false };
    bool answered = health_check_side(pg, monitor_url, &wside);
    if (answered && *pg)   /* answered but not writable: the connection was closed */
        sample_check(*pg); /* make up's synthetic sample? a detail of /readyz */
    if (monitor_read_url) {
        (void)health_check_side(rpg, monitor_read_url, &rside);
    } else {
        /* One database: reads work whenever it answers, writable or not. */
        atomic_store(&read_ok, answered);
        atomic_store(&read_schema_version, atomic_load(&schema_version));
    }
}

static void *health_main(void *arg)
{
    (void)arg;
    PGconn *pg = NULL, *rpg = NULL;
    while (!atomic_load(&stopping)) {
        health_check_once(&pg, &rpg);
        (void)health_pause(monitor_interval_ms);
    }
    if (pg)
        PQfinish(pg);
    if (rpg)
        PQfinish(rpg);
    return NULL;
}

int health_start(const char *url, long connect_timeout_s, long interval_ms)
{
    monitor_url = strdup(url ? url : "");
    const char *ru = APP.cfg.database_read_url;
    if (ru && *ru && (!url || strcmp(ru, url) != 0)) {
        monitor_read_url = strdup(ru);
        if (!monitor_read_url)
            return -1;
        atomic_store(&read_url_own, true);
    }
    monitor_connect_timeout_s = connect_timeout_s;
    monitor_interval_ms = interval_ms;
    if (!monitor_url || pthread_create(&monitor, NULL, health_main, NULL) != 0)
        return -1;
    monitor_started = true;
    return 0;
}

void health_stop(void)
{
    if (!monitor_started)
        return;
    pthread_mutex_lock(&stop_lock);
    atomic_store(&stopping, true);
    pthread_cond_broadcast(&stop_cond);
    pthread_mutex_unlock(&stop_lock);
    pthread_join(monitor, NULL);
    monitor_started = false;
    free(monitor_url);
    monitor_url = NULL;
    free(monitor_read_url);
    monitor_read_url = NULL;
}

void health_root(struct http_req *req)
{
    static const char body[] = "{\"message\": \"Hello world!\"}";
    http_respond(req, 200, "application/json", body, sizeof body - 1);
}

void health_healthz(struct http_req *req)
{
    static const char body[] = "{\"status\": \"ok\"}";
    http_respond(req, 200, "application/json", body, sizeof body - 1);
}

/* GET /readyz: 200 when this instance can do everything (writes included), else 503.
 * GET /readyz?scope=read: 200 while it can serve reads, even when no primary takes writes
 * (a failover); the balancer's check, so that reads keep flowing while POST /batches answers
 * 503 with Retry-After. The body says which side is degraded. scope=write is the default. */
void health_readyz(struct http_req *req)
{
    bool scope_read = req->query && strstr(req->query, "scope=read") != NULL;
    bool draining = http_server_draining(req->srv);
    bool dbok = atomic_load(&db_ok);
    bool rdok = atomic_load(&read_ok);
    int have = atomic_load(&schema_version);
    int rhave = atomic_load(&read_schema_version);
    if (!atomic_load(&read_url_own) && dbok) {
        /* One database: writable implies readable. The monitor stores the read side a moment
         * after the write side (a sample check runs between), and a reader in that window
         * saw "ready" for writes but 503 for scope=read. */
        rdok = true;
        rhave = have;
    }
    int need = migrate_required_version();
    bool schema_ok = dbok ? have >= need : rhave >= need;
    bool writes = !draining && dbok && have >= need;
    bool reads = !draining && rdok && rhave >= need;
    bool ready = scope_read ? reads : writes;
    const char *status = writes ? "ready" : reads ? "degraded" : "not ready";
    char body[640];
    int n = snprintf(body, sizeof body,
                     "{\"status\": \"%s\", \"scope\": \"%s\", \"data\": \"%s\", "
                     "\"checks\": {\"draining\": %s, "
                     "\"database\": \"%s\", \"writes\": \"%s\", \"reads\": \"%s\", "
                     "\"schema\": {\"ok\": %s, \"have\": %d, \"need\": %d}}}",
                     status, scope_read ? "read" : "write", sample_kind(),
                     draining ? "true" : "false", dbok ? "ok" : "unreachable",
                     writes ? "ok" : "unavailable", reads ? "ok" : "unavailable",
                     schema_ok ? "true" : "false", dbok ? have : rhave, need);
    http_respond(req, ready ? 200 : 503, "application/json", body, (size_t)n);
    if (!ready)
        snprintf(req->note, sizeof req->note, "not ready:%s%s%s%s", draining ? " draining" : "",
                 dbok ? "" : " database unreachable", rdok ? "" : " reads unavailable",
                 !schema_ok ? " schema behind" : "");
    else if (!writes)
        snprintf(req->note, sizeof req->note, "degraded: writes unavailable");
}

void health_metrics(struct http_req *req)
{
    struct dynbuf b;
    dynbuf_init(&b, 4 * 1024 * 1024);
    if (metrics_render(&b) != 0) {
        dynbuf_free(&b);
        http_respond_error(req, 500, "Metrics too large");
        return;
    }
    size_t len;
    char *body = dynbuf_take(&b, &len);
    http_respond_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}
