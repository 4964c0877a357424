/* main.c: starts and stops things. `ratesd [serve]` serves; `ratesd migrate` migrates. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "health.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "rates.h"
#include "routes.h"



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

/* SIGHUP: re-read the layers and apply what may change at run time. */
static void main_reload(int argc, char **argv)
{
    struct config fresh;
    char err[1024];
    if (config_load(&fresh, argc, (const char *const *)argv, main_getenv, err, sizeof err) != CONFIG_OK) {
        LOG_ERROR("reload refused, keeping the running configuration: %s", err);
        return;
    }
    log_set_level(log_level_parse(fresh.log_level));
    LOG_INFO("reloaded: log_level=%s", fresh.log_level);
    config_free(&fresh);
}

static double main_elapsed_s(uint64_t since)
{
    return (double)(clock_mono_ns() - since) / 1e9;
}

/* Shutdown in stages: readiness off, keep accepting for the drain delay, stop accepting,
 * wait for in-flight work up to the timeout, then stop (what is left rolls back). */
static int main_shutdown(sigset_t *sigs)
{
    uint64_t t0 = clock_mono_ns();
    http_server_set_draining(APP.srv);
    LOG_INFO("shutdown: draining (readiness off); accepting for %ld s more",
             APP.cfg.drain_delay_s);
    struct timespec tick = { 0, 50 * 1000000L };
    bool accepting = true;
    for (;;) {
        double el = main_elapsed_s(t0);
        if (accepting && el >= (double)APP.cfg.drain_delay_s) {
            int fd = http_server_stop_accepting(APP.srv);
            if (fd >= 0)
                close(fd);
            accepting = false;
            LOG_INFO("shutdown: stopped accepting; %ld requests in flight",
                     http_server_inflight(APP.srv));
        }
        if (!accepting && http_server_inflight(APP.srv) == 0)
            break;
        if (el >= (double)(APP.cfg.drain_delay_s + APP.cfg.shutdown_timeout_s)) {
            LOG_WARN("shutdown: timeout with %ld requests in flight; rolling them back",
                     http_server_inflight(APP.srv));
            break;
        }
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_WARN("shutdown: second signal; exiting at once");
            _exit(1);
        }
    }
    http_server_stop(APP.srv);
    health_stop();
    if (APP.read_pool != APP.pool)
        db_pool_free(APP.read_pool);
    db_pool_free(APP.pool);
    LOG_INFO("shutdown: done in %.3f s", main_elapsed_s(t0));
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
    /* Block before any thread starts: only the main thread takes these signals. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    metrics_init();
    rates_init();
    struct db_pool_settings ps = {
        .url = APP.cfg.database_url,
        .size = (int)APP.cfg.pool_size,
        .statement_timeout_ms = APP.cfg.statement_timeout_ms,
        .connect_timeout_s = APP.cfg.connect_timeout_s,
        .application_name = "ratesd",
    };
    APP.pool = db_pool_new(&ps);
    APP.read_pool = APP.pool;
    if (APP.cfg.database_read_url && *APP.cfg.database_read_url) {
        ps.url = APP.cfg.database_read_url;
        APP.read_pool = db_pool_new(&ps);
    }
    if (!APP.pool || !APP.read_pool) {
        LOG_ERROR("cannot create the database pool");
        return 1;
    }
    if (health_start(APP.cfg.database_url, APP.cfg.connect_timeout_s, 1000) != 0) {
        LOG_ERROR("cannot start the readiness monitor");
        return 1;
    }
    int inherited[2] = { -1, -1 };
    int ninh = listen_inherited(inherited, 2);
    struct http_server_settings hs = {
        .listen = APP.cfg.listen,
        .admin_listen = APP.cfg.admin_listen,
        .listen_fd = ninh >= 1 ? inherited[0] : -1,
        .admin_fd = ninh >= 2 ? inherited[1] : -1,
        .http_threads = APP.cfg.http_threads,
        .workers = APP.cfg.workers,
        .queue_max = APP.cfg.queue_max,
        .max_connections = APP.cfg.max_connections,
        .connection_timeout_s = APP.cfg.connection_timeout_s,
        .pool_wait_ms = APP.cfg.pool_wait_ms,
        .pool = APP.pool,
        .routes = routes,
        .route_count = routes_count,
    };
    APP.srv = http_server_start(&hs, err, sizeof err);
    if (!APP.srv) {
        LOG_ERROR("%s", err);
        health_stop();
        return 1;
    }
    char desc[2048];
    config_describe(&APP.cfg, desc, sizeof desc);
    LOG_INFO("ratesd %s (%s) listening on %s%s (port %d); %s", RATES_VERSION, RATES_COMMIT,
             APP.cfg.listen, ninh ? " (inherited socket)" : "",
             listen_port(http_server_listen_fd(APP.srv)), desc);

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig < 0 && errno == EINTR)
            continue;
        if (sig == SIGHUP) {
            main_reload(argc, argv);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_INFO("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return main_shutdown(&sigs);
        }
    }
}

int main(int argc, char **argv)
{
    const char *cmd = "serve";
    int first = 1;
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        first = 2;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 &&
        strcmp(cmd, "config-table") != 0) {
        fprintf(stderr, "ratesd: unknown command '%s' (serve, migrate; see --help)\n", cmd);
        return 2;
    }
    char err[1024];
    int rc = config_load(&APP.cfg, argc - first, (const char *const *)(argv + first), main_getenv, err, sizeof err);
    if (rc == CONFIG_HELP) {
        config_usage(stdout);
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
    if (strcmp(cmd, "migrate") == 0)
        rc = main_migrate();
    else
        rc = main_serve(argc - first, argv + first);
    config_free(&APP.cfg);
    return rc;
}
