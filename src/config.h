/* config.h: the option table and layered configuration (defaults < file < env < flags). */
#ifndef RATES_CONFIG_H
#define RATES_CONFIG_H

#include "common.h"

#include <stdbool.h>
#include <stdio.h>

struct config {
    char *listen;
    char *admin_listen;
    char *database_url;
    char *database_read_url;
    long pool_size;
    long workers;
    long batch_workers;
    long commit_workers;
    long http_threads;
    long queue_max;
    long max_connections;
    long max_connections_per_ip;
    long connection_timeout_s;
    long header_timeout_s;
    long send_timeout_s;
    long pool_wait_ms;
    long statement_timeout_ms;
    long connect_timeout_s;
    long max_span_days;
    long cache_bytes;
    char *cache_control;
    long gzip_min_bytes;
    char *log_level;
    char *log_format;
    char *ingest_tokens;
    bool ingest_open;
    long max_body_bytes;
    long max_batch_rows;
    long max_concurrent_batches;
    long global_concurrent_batches;
    long upload_idle_timeout_s;
    long upload_timeout_s;
    long batch_statement_timeout_ms;
    long idempotency_ttl_s;
    long fold_interval_ms;
    bool model;
    long model_max_bytes;
    long model_sync_ms;
    long model_sync_rows;
    long drain_delay_s;
    long shutdown_timeout_s;
    long upgrade_timeout_s;
};

enum { CONFIG_OK = 0, CONFIG_ERROR = -1, CONFIG_HELP = 1, CONFIG_VERSION = 2 };

typedef const char *(*config_getenv_fn)(const char *name);

/* Fills c from the four layers. argv holds only options (no program name, no subcommand).
 * On CONFIG_ERROR, err names the option, the value's source and the reason.
 * c owns its strings; release with config_free(). */
int config_load(struct config *c, int argc, const char *const *argv, config_getenv_fn env,
                char *err, size_t errcap) WUR;
void config_free(struct config *c);
/* Prints every option with its flag, env name, default and doc. */
void config_usage(FILE *out);
/* Prints a Markdown table of the options (the README's configuration table). */
void config_markdown(FILE *out);
/* Describes the effective configuration with secrets redacted, for the start-up log. */
void config_describe(const struct config *c, char *out, size_t cap);
/* Calls fn(name, reloadable, changed, arg) for every option of the table (src/reload.c). */
typedef void (*config_walk_fn)(const char *name, bool reloadable, bool changed, void *arg);
void config_walk(const struct config *fresh, const struct config *running, config_walk_fn fn,
                 void *arg);

#endif
