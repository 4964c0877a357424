/* main.c: starts and stops things. `ratesd [serve]` serves; `ratesd migrate` migrates. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregates.h"
#include "app.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "fold.h"
#include "follow.h"
#include "health.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "mhdlog.h"
#include "migrate.h"
#include "notify.h"
#include "rates.h"
#include "readcache.h"
#include "reload.h"
#include "routes.h"
#include "upgrade.h"

/* After in-flight work ends, how long idle connections (accepted, no request yet, or idle
 * keep-alive) may take to send a request or close before the server stops. */
#define MAIN_LINGER_NS (2000ull * 1000000ull)

static const char *main_getenv(const char *name)
{
    return getenv(name);
}

static int main_migrate(void)
{
    char err[1024];
    if (migrate_run(APP.cfg.database_url, APP.cfg.connect_timeout_s, err, sizeof err) != 0) {
        LOG_ERROR("migrate: %s", err);
        return 1;
    }
    return 0;
}

/* SIGHUP: re-read the layers and apply what may change at run time (src/reload.c). */
static void main_reload(int argc, char **argv)
{
    (void)reload_run(&APP.cfg, argc, argv, main_getenv);
}

static double main_elapsed_s(uint64_t since)
{
    return (double)(clock_mono_ns() - since) / 1e9;
}

/* Reaps exited children (an abandoned upgrade; anything reparented to us as PID 1). */
static void main_reap(void)
{
    for (int i = 0; i < 1024; i++) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        LOG_INFO("reaped child %ld (status %d)", (long)pid, st);
    }
}

enum main_stop_mode { STOP_SIGNAL, STOP_HANDOVER };

/* Shutdown in stages: readiness off, keep accepting for the drain delay, stop accepting,
 * wait for in-flight work up to the timeout, let idle connections go (bounded), then stop
 * (what is left rolls back). A hand-over (self-upgrade) skips the readiness change and the
 * delay: the new process already accepts on the same socket. */
static int main_shutdown(sigset_t *sigs, enum main_stop_mode mode)
{
    uint64_t t0 = clock_mono_ns();
    long delay_s = mode == STOP_HANDOVER ? 0 : APP.cfg.drain_delay_s;
    if (mode == STOP_HANDOVER) {
        http_server_set_closing(APP.srv);
        LOG_INFO("shutdown: handing over to the new process; draining");
    } else {
        http_server_set_draining(APP.srv);
        if (notify_send("STOPPING=1") < 0)
            LOG_WARN("sd_notify STOPPING failed: %s", strerror(errno));
        LOG_INFO("shutdown: draining (readiness off); accepting for %ld s more", delay_s);
    }
    struct timespec tick = { 0, 20 * 1000000L };
    bool accepting = true;
    uint64_t idle_since = 0;
    for (;;) {
        double el = main_elapsed_s(t0);
        if (accepting && el >= (double)delay_s) {
            http_server_stop_accepting(APP.srv);
            accepting = false;
            LOG_INFO("shutdown: stopped accepting after %.3f s; %ld requests in flight, %ld "
                     "connections open",
                     el, http_server_inflight(APP.srv), http_server_connections(APP.srv));
        }
        if (!accepting && http_server_inflight(APP.srv) == 0) {
            if (!idle_since)
                idle_since = clock_mono_ns();
            if (http_server_connections(APP.srv) == 0 ||
                clock_mono_ns() - idle_since >= MAIN_LINGER_NS)
                break;
        } else {
            idle_since = 0;
        }
        if (el >= (double)(delay_s + APP.cfg.shutdown_timeout_s)) {
            LOG_WARN("shutdown: timeout with %ld requests in flight; rolling them back",
                     http_server_inflight(APP.srv));
            break;
        }
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_WARN("shutdown: second signal; exiting at once");
            _exit(1);
        }
        if (sig == SIGCHLD)
            main_reap();
    }
    long left = http_server_connections(APP.srv);
    http_server_stop(APP.srv); /* no request and no lane job is left after this */
    readcache_stop();
    fold_stop();
    follow_stop();
    APP.srv = NULL;
    health_stop();
    if (APP.read_pool != APP.query_pool)
        db_pool_free(APP.read_pool);
    db_pool_free(APP.query_pool);
    db_pool_free(APP.pool);
    LOG_INFO("shutdown: done in %.3f s (%ld idle connections closed)", main_elapsed_s(t0), left);
    return 0;
}

/* SIGUSR2: start the binary at our path on the same sockets; once it serves, drain. */
static bool main_upgrade(sigset_t *sigs, int *stop_sig)
{
    char err[1024];
    pid_t child = 0;
    int sig = 0;
    LOG_INFO("received SIGUSR2: self-upgrade");
    if (getpid() == 1) { /* the old process exits after the hand-over: that would end a container */
        LOG_ERROR("upgrade refused: this process is PID 1 (a container); replace the container");
        return false;
    }
    int rc = upgrade_run(http_server_listen_fd(APP.srv), http_server_admin_fd(APP.srv),
                         APP.cfg.upgrade_timeout_s * 1000, sigs, &child, &sig, err, sizeof err);
    if (rc == UPGRADE_READY) {
        LOG_INFO("upgrade: pid %ld serves; this process drains and exits", (long)child);
        return true;
    }
    LOG_ERROR("upgrade failed, this process keeps serving: %s", err);
    if (rc == UPGRADE_ABORTED)
        *stop_sig = sig;
    return false;
}

/* A write committed here: the cache forgets, the fold runs soon. */
static void main_on_write(void)
{
    readcache_on_write();
    fold_kick();
}

/* The same write, on the worker before its 2xx is released. A large one waits for a pass
 * that holds it (at most RATES_MODEL_SYNC_MS): its 2xx then leaves with the model already
 * that new, and no read here waits for it (reads meanwhile answer the version before, which
 * the unacknowledged write may follow). A small one, or a large one whose pass did not come
 * in time, kicks the follower, and reads here wait for its pass (follow_behind_commit)
 * instead of the writer (docs/readmodel.md, "Consistency"). */
static void main_on_commit(uint64_t rows)
{
    if (rows >= (uint64_t)APP.cfg.model_sync_rows && follow_fresh(APP.cfg.model_sync_ms)) {
        metrics_model_commit_synced();
        return;
    }
    follow_note_commit();
}

/* The read model (docs/readmodel.md): loaded before the sockets are taken (an upgrade's new
 * process too, within RATES_UPGRADE_TIMEOUT_S), so that the first answers come from memory;
 * a database that is not there yet only delays nothing (reads ask the database meanwhile). */
static int main_model_start(void)
{
    if (!APP.cfg.model)
        return 0;
    struct follow_settings fs = {
        .url = APP.cfg.database_url,
        .connect_timeout_s = APP.cfg.connect_timeout_s,
        .max_bytes = (size_t)APP.cfg.model_max_bytes,
        .sync_ms = APP.cfg.model_sync_ms,
        .on_connect = readcache_forget_served,
    };
    if (follow_start(&fs) != 0) {
        LOG_ERROR("cannot start the read model");
        return -1;
    }
    if (!follow_wait_loaded(APP.cfg.upgrade_timeout_s * 1000L))
        LOG_WARN("model: not loaded yet (%s); reads ask the database until it is",
                 follow_state_name(follow_state()));
    return 0;
}

static int main_serve(int argc, char **argv)
{
    char err[1024];
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR2);
    sigaddset(&sigs, SIGCHLD);
    /* Block before any thread starts: only the main thread takes these signals. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Environment reads that unset variables, while no other thread runs. */
    notify_init();
    int inherited[2] = { -1, -1 };
    int ninh = listen_inherited(inherited, 2);

    metrics_init();
    rates_init();
    if (auth_set_tokens(APP.cfg.ingest_tokens, APP.cfg.ingest_open, err, sizeof err) != 0) {
        LOG_ERROR("ingest tokens: %s", err);
        return 1;
    }
    /* The primary's connections split by lane (config_load checked that both get some): the
     * read lane's own, and the batches' (RATES_POOL_SIZE - RATES_WORKERS). */
    struct db_pool_settings ps = {
        .url = APP.cfg.database_url,
        .size = (int)APP.cfg.workers,
        .statement_timeout_ms = APP.cfg.statement_timeout_ms,
        .connect_timeout_s = APP.cfg.connect_timeout_s,
        .application_name = "ratesd",
        .metric = POOL_PRIMARY,
    };
    APP.query_pool = db_pool_new(&ps);
    ps.size = (int)(APP.cfg.pool_size - APP.cfg.workers);
    ps.metric = POOL_BATCH;
    APP.pool = db_pool_new(&ps);
    APP.read_pool = APP.query_pool;
    if (APP.cfg.database_read_url && *APP.cfg.database_read_url) {
        ps.url = APP.cfg.database_read_url;
        ps.size = (int)APP.cfg.workers;
        ps.metric = POOL_READ;
        APP.read_pool = db_pool_new(&ps);
    }
    if (!APP.pool || !APP.query_pool || !APP.read_pool) {
        LOG_ERROR("cannot create the database pool");
        return 1;
    }
    if (health_start(APP.cfg.database_url, APP.cfg.connect_timeout_s, 1000) != 0) {
        LOG_ERROR("cannot start the readiness monitor");
        return 1;
    }
    if (readcache_start(APP.cfg.database_url, APP.cfg.connect_timeout_s) != 0) {
        LOG_ERROR("cannot start the response cache");
        health_stop();
        return 1;
    }
    if (fold_start(APP.cfg.database_url, APP.cfg.connect_timeout_s, APP.cfg.fold_interval_ms) !=
        0) {
        LOG_ERROR("cannot start the fold");
        readcache_stop();
        health_stop();
        return 1;
    }
    if (main_model_start() != 0) {
        fold_stop();
        readcache_stop();
        health_stop();
        return 1;
    }
    struct http_server_settings hs = {
        .listen = APP.cfg.listen,
        .admin_listen = APP.cfg.admin_listen,
        .listen_fd = ninh >= 1 ? inherited[0] : -1,
        .admin_fd = ninh >= 2 ? inherited[1] : -1,
        .http_threads = APP.cfg.http_threads,
        .workers = APP.cfg.workers,
        .batch_workers = APP.cfg.batch_workers,
        .commit_workers = APP.cfg.commit_workers,
        .queue_max = APP.cfg.queue_max,
        .max_connections = APP.cfg.max_connections,
        .max_connections_per_ip = APP.cfg.max_connections_per_ip,
        .connection_timeout_s = APP.cfg.connection_timeout_s,
        .header_timeout_s = APP.cfg.header_timeout_s,
        .send_timeout_s = APP.cfg.send_timeout_s,
        .pool_wait_ms = APP.cfg.pool_wait_ms,
        .pool = APP.query_pool,
        .batch_pool = APP.pool,
        .read_pool = APP.read_pool,
        .routes = routes,
        .route_count = routes_count,
        .on_write = main_on_write,
        .on_commit = main_on_commit,
    };
    /* rates_http_requests_total{route="other"} reads libmicrohttpd's log text: check that
     * the library in use still words it so (src/mhdlog.h); serve either way. */
    char check_err[256];
    if (mhdlog_selfcheck(check_err, sizeof check_err) != 0) {
        LOG_ERROR("refusal metrics: %s; requests libmicrohttpd refuses itself (400, 414, 431) "
                  "go uncounted (rates_http_refusal_log_ok 0)",
                  check_err);
        metrics_set_refusal_log_ok(false);
    }
    APP.srv = http_server_start(&hs, err, sizeof err);
    if (!APP.srv) {
        LOG_ERROR("%s", err);
        follow_stop();
        fold_stop();
        readcache_stop();
        health_stop();
        return 1;
    }
    char desc[2048];
    config_describe(&APP.cfg, desc, sizeof desc);
    LOG_INFO("ratesd %s (%s) listening on %s%s (port %d); %s", RATES_VERSION, RATES_COMMIT,
             APP.cfg.listen, ninh ? " (inherited socket)" : "",
             listen_port(http_server_listen_fd(APP.srv)), desc);
    notify_ready();

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig < 0 && errno == EINTR)
            continue;
        if (sig == SIGHUP) {
            main_reload(argc, argv);
            continue;
        }
        if (sig == SIGCHLD) {
            main_reap();
            continue;
        }
        if (sig == SIGUSR2) {
            int stop_sig = 0;
            if (main_upgrade(&sigs, &stop_sig))
                return main_shutdown(&sigs, STOP_HANDOVER);
            if (!stop_sig)
                continue;
            sig = stop_sig;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_INFO("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return main_shutdown(&sigs, STOP_SIGNAL);
        }
    }
}

int main(int argc, char **argv)
{
    const char *cmd = "serve";
    int first = 1;
    upgrade_init(argc, argv);
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        first = 2;
    }
    enum aggregates_action agg = AGGREGATES_NONE;
    if (strcmp(cmd, "aggregates") == 0) {
        agg = aggregates_parse(argc > 2 ? argv[2] : NULL);
        if (agg == AGGREGATES_NONE) {
            fprintf(stderr, "ratesd: aggregates needs check or rebuild (see --help)\n");
            return 2;
        }
        first = 3;
    } else if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 &&
               strcmp(cmd, "config-table") != 0) {
        fprintf(stderr, "ratesd: unknown command '%s' (serve, migrate; see --help)\n", cmd);
        return 2;
    }
    char err[1024];
    int rc = config_load(&APP.cfg, argc - first, (const char *const *)(argv + first), main_getenv,
                         err, sizeof err);
    if (rc == CONFIG_HELP) {
        config_usage(stdout);
        aggregates_usage(stdout);
        return 0;
    }
    if (rc == CONFIG_VERSION) {
        printf("ratesd %s (%s)\n", RATES_VERSION, RATES_COMMIT);
        return 0;
    }
    if (rc != CONFIG_OK) {
        fprintf(stderr, "ratesd: %s\n", err);
        return 2;
    }
    if (strcmp(cmd, "config-table") == 0) {
        config_markdown(stdout);
        return 0;
    }
    log_init(log_level_parse(APP.cfg.log_level), log_format_parse(APP.cfg.log_format));
    if (agg != AGGREGATES_NONE)
        rc = aggregates_run(agg, APP.cfg.database_url, APP.cfg.connect_timeout_s, stdout);
    else if (strcmp(cmd, "migrate") == 0)
        rc = main_migrate();
    else
        rc = main_serve(argc - first, argv + first);
    config_free(&APP.cfg);
    return rc;
}
