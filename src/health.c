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

static atomic_bool db_ok;
static atomic_bool db_checked; /* the first failure is logged too, not only a change */
static atomic_int schema_version = -1;
static atomic_bool stopping;
static pthread_t monitor;
static bool monitor_started;
static char *monitor_url;
static long monitor_connect_timeout_s, monitor_interval_ms;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;

static void health_check_once(PGconn **pg)
{
    char err[512];
    if (*pg && PQstatus(*pg) != CONNECTION_OK) {
        PQfinish(*pg);
        *pg = NULL;
    }
    if (!*pg) {
        *pg = db_connect_once(monitor_url, monitor_connect_timeout_s, "ratesd-health", err,
                              sizeof err);
        if (!*pg) {
            if (atomic_exchange(&db_ok, false) | !atomic_exchange(&db_checked, true))
                LOG_WARN("readiness: database unreachable: %s", err);
            return;
        }
    }
    int v = migrate_current_version(*pg, err, sizeof err);
    if (v < 0) {
        if (atomic_exchange(&db_ok, false) | !atomic_exchange(&db_checked, true))
            LOG_WARN("readiness: database check failed: %s", err);
        PQfinish(*pg);
        *pg = NULL;
        return;
    }
    atomic_store(&schema_version, v);
    atomic_store(&db_checked, true);
    if (!atomic_exchange(&db_ok, true))
        LOG_INFO("readiness: database reachable, schema version %d", v);
}

static void *health_main(void *arg)
{
    PGconn *pg = NULL;
    while (!atomic_load(&stopping)) {
        health_check_once(&pg);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (monitor_interval_ms % 1000) * 1000000L;
        until.tv_sec += monitor_interval_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&stop_lock);
        if (!atomic_load(&stopping))
            pthread_cond_timedwait(&stop_cond, &stop_lock, &until);
        pthread_mutex_unlock(&stop_lock);
    }
    if (pg)
        PQfinish(pg);
    return NULL;
}

int health_start(const char *url, long connect_timeout_s, long interval_ms)
{
    monitor_url = strdup(url ? url : "");
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

void health_readyz(struct http_req *req)
{
    bool draining = http_server_draining(APP.srv);
    bool dbok = atomic_load(&db_ok);
    int have = atomic_load(&schema_version);
    int need = migrate_required_version();
    bool schema_ok = dbok && have >= need;
    bool ready = !draining && dbok && schema_ok;
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"status\": \"%s\", \"checks\": {\"draining\": %s, \"database\": \"%s\", "
                     "\"schema\": {\"ok\": %s, \"have\": %d, \"need\": %d}}}",
                     ready ? "ready" : "not ready", draining ? "true" : "false",
                     dbok ? "ok" : "unreachable", schema_ok ? "true" : "false", have, need);
    http_respond(req, ready ? 200 : 503, "application/json", body, (size_t)n);
    if (!ready)
        snprintf(req->note, sizeof req->note, "not ready:%s%s%s", draining ? " draining" : "",
                 dbok ? "" : " database unreachable", dbok && !schema_ok ? " schema behind" : "");
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
