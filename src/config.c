/* config.c: one option table, four layers (defaults, file, environment, flags), one setter. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL };
enum { OPT_SECRET = 1, OPT_RELOAD = 2 };

struct opt_def {
    const char *name; /* key in the config file */
    const char *env;
    const char *flag; /* NULL for secrets: flags show in ps */
    int type;
    long min, max;
    const char *def;
    unsigned flags;
    size_t offset;
    int (*check)(const char *value);
    const char *doc;
};

static int config_check_level(const char *v)
{
    return log_level_parse(v) >= 0 ? 0 : -1;
}

static int config_check_format(const char *v)
{
    return log_format_parse(v) >= 0 ? 0 : -1;
}

static int config_check_listen(const char *v)
{
    return (*v && strchr(v, ':')) ? 0 : -1;
}

static int config_check_listen_opt(const char *v)
{
    return *v == '\0' ? 0 : config_check_listen(v);
}

/* A header value: printable ASCII, no CR or LF. */
static int config_check_header(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return -1;
    return 0;
}

#define OFF(f) offsetof(struct config, f)
static const struct opt_def opts[] = {
    { "listen", "RATES_LISTEN", "--listen", OPT_STR, 0, 0, "0.0.0.0:3000", 0, OFF(listen),
      config_check_listen, "Public HTTP listener, HOST:PORT ([::1]:3000 for IPv6)." },
    { "admin_listen", "RATES_ADMIN_LISTEN", "--admin-listen", OPT_STR, 0, 0, "", 0,
      OFF(admin_listen), config_check_listen_opt,
      "Optional admin listener for /healthz, /readyz and /metrics; empty: none." },
    { "database_url", "RATES_DATABASE_URL", NULL, OPT_STR, 0, 0, "", OPT_SECRET, OFF(database_url),
      NULL,
      "libpq URI or conninfo (secret; or RATES_DATABASE_URL_FILE). Empty: PG* variables, "
      "database rates." },
    { "database_read_url", "RATES_DATABASE_READ_URL", NULL, OPT_STR, 0, 0, "", OPT_SECRET,
      OFF(database_read_url), NULL,
      "Optional libpq URI for /rates reads (replicas); empty: reads use the primary." },
    { "pool_size", "RATES_POOL_SIZE", "--pool-size", OPT_INT, 1, 1000, "8", 0, OFF(pool_size), NULL,
      "Connections to the primary: workers of them for reads, the rest for batches (a "
      "batch holds one for its whole upload); at least workers + max_concurrent_batches, "
      "checked at start." },
    { "workers", "RATES_WORKERS", "--workers", OPT_INT, 1, 1000, "4", 0, OFF(workers), NULL,
      "Worker threads of the read lane (/rates, /regions, /ports, ledger GETs), each with its "
      "own connection; about 2 per core: more only add scheduling delay (p99 3 ms at 4, "
      "20-120 ms at 8 on 2 cores)." },
    { "batch_workers", "RATES_BATCH_WORKERS", "--batch-workers", OPT_INT, 1, 1000, "2", 0,
      OFF(batch_workers), NULL,
      "Worker threads of the batch lane (body chunks, retractions); never used by reads." },
    { "commit_workers", "RATES_COMMIT_WORKERS", "--commit-workers", OPT_INT, 1, 1000, "1", 0,
      OFF(commit_workers), NULL,
      "Batch commits that run at once (the commit lane); more batches wait their turn." },
    { "http_threads", "RATES_HTTP_THREADS", "--http-threads", OPT_INT, 1, 64, "2", 0,
      OFF(http_threads), NULL, "poll threads that parse and answer HTTP." },
    { "queue_max", "RATES_QUEUE_MAX", "--queue-max", OPT_INT, 1, 1000000, "1024", 0, OFF(queue_max),
      NULL, "Jobs waiting in a lane's queue before new ones get 503 with Retry-After." },
    { "max_connections", "RATES_MAX_CONNECTIONS", "--max-connections", OPT_INT, 1, 1000000, "1024",
      0, OFF(max_connections), NULL, "Concurrent HTTP connections per listener." },
    { "max_connections_per_ip", "RATES_MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip", OPT_INT,
      0, 1000000, "256", 0, OFF(max_connections_per_ip), NULL,
      "Connections from one client address on the public listener, beyond which new ones are "
      "closed at once (slowloris); 0: no limit. Set 0 (or the balancer's own per-client limit "
      "times its instances) behind a load balancer or NAT: every client shares its address." },
    { "connection_timeout_s", "RATES_CONNECTION_TIMEOUT_S", "--connection-timeout-s", OPT_INT, 1,
      86400, "30", 0, OFF(connection_timeout_s), NULL,
      "Idle HTTP connection timeout in seconds (any byte resets it: the head and send "
      "deadlines bound slow clients)." },
    { "header_timeout_s", "RATES_HEADER_TIMEOUT_S", "--header-timeout-s", OPT_INT, 1, 3600, "10", 0,
      OFF(header_timeout_s), NULL,
      "Deadline from accept to the end of the request headers, however the bytes trickle in "
      "(on keep-alive: from the previous response, plus the idle timeout)." },
    { "send_timeout_s", "RATES_SEND_TIMEOUT_S", "--send-timeout-s", OPT_INT, 1, 86400, "30", 0,
      OFF(send_timeout_s), NULL,
      "Deadline for a response to be fully sent (a client that does not read is closed)." },
    { "pool_wait_ms", "RATES_POOL_WAIT_MS", "--pool-wait-ms", OPT_INT, 1, 600000, "2000", 0,
      OFF(pool_wait_ms), NULL, "Longest wait for a pooled connection before 503." },
    { "statement_timeout_ms", "RATES_STATEMENT_TIMEOUT_MS", "--statement-timeout-ms", OPT_INT, 1,
      3600000, "5000", 0, OFF(statement_timeout_ms), NULL,
      "PostgreSQL statement_timeout for read queries." },
    { "connect_timeout_s", "RATES_CONNECT_TIMEOUT_S", "--connect-timeout-s", OPT_INT, 2, 600, "3",
      0, OFF(connect_timeout_s), NULL, "libpq connect_timeout in seconds." },
    { "max_span_days", "RATES_MAX_SPAN_DAYS", "--max-span-days", OPT_INT, 1, 3652059, "36600", 0,
      OFF(max_span_days), NULL, "Largest date range /rates accepts, in days." },
    { "cache_bytes", "RATES_CACHE_BYTES", "--cache-bytes", OPT_INT, 0, 1L << 40, "67108864", 0,
      OFF(cache_bytes), NULL,
      "Bound in bytes of the in-process cache of /rates, /regions and /ports answers "
      "(docs/cache.md); 0: no cache (validators still sent)." },
    { "cache_control", "RATES_CACHE_CONTROL", "--cache-control", OPT_STR, 0, 0,
      "public, max-age=0, must-revalidate", 0, OFF(cache_control), config_check_header,
      "Cache-Control of /rates, /regions and /ports answers (shared caches revalidate with "
      "If-None-Match)." },
    { "gzip_min_bytes", "RATES_GZIP_MIN_BYTES", "--gzip-min-bytes", OPT_INT, 0, 1L << 30, "1024", 0,
      OFF(gzip_min_bytes), NULL,
      "Answers of at least this many bytes are sent gzip-compressed to clients that accept it "
      "(and cached compressed); 0: never." },
    { "log_level", "RATES_LOG_LEVEL", "--log-level", OPT_STR, 0, 0, "info", OPT_RELOAD,
      OFF(log_level), config_check_level, "error, warn, info or debug (reloaded on SIGHUP)." },
    { "log_format", "RATES_LOG_FORMAT", "--log-format", OPT_STR, 0, 0, "auto", 0, OFF(log_format),
      config_check_format, "auto (JSON unless stdout is a terminal), json or text." },
    { "ingest_tokens", "RATES_INGEST_TOKENS", NULL, OPT_STR, 0, 0, "", OPT_SECRET | OPT_RELOAD,
      OFF(ingest_tokens), NULL,
      "Write tokens, NAME:TOKEN[,NAME:TOKEN...] (secret; or RATES_INGEST_TOKENS_FILE, one per "
      "line; reloaded on SIGHUP)." },
    { "ingest_open", "RATES_INGEST_OPEN", "--ingest-open", OPT_BOOL, 0, 1, "false", 0,
      OFF(ingest_open), NULL,
      "Development only: accept batches without a token when none is configured." },
    { "max_body_bytes", "RATES_MAX_BODY_BYTES", "--max-body-bytes", OPT_INT, 1, 1L << 40,
      "1073741824", 0, OFF(max_body_bytes), NULL, "Largest batch body in bytes (413 beyond)." },
    { "max_batch_rows", "RATES_MAX_BATCH_ROWS", "--max-batch-rows", OPT_INT, 1, 1L << 40,
      "10000000", 0, OFF(max_batch_rows), NULL, "Most rows in one batch (413 beyond)." },
    { "max_concurrent_batches", "RATES_MAX_CONCURRENT_BATCHES", "--max-concurrent-batches", OPT_INT,
      1, 10000, "4", 0, OFF(max_concurrent_batches), NULL,
      "Batches in progress on this instance; one more gets 503 with Retry-After." },
    { "global_concurrent_batches", "RATES_GLOBAL_CONCURRENT_BATCHES", "--global-concurrent-batches",
      OPT_INT, 1, 10000, "8", 0, OFF(global_concurrent_batches), NULL,
      "Batches in progress across all instances (slot rows locked in PostgreSQL)." },
    { "upload_idle_timeout_s", "RATES_UPLOAD_IDLE_TIMEOUT_S", "--upload-idle-timeout-s", OPT_INT, 1,
      86400, "30", 0, OFF(upload_idle_timeout_s), NULL,
      "A batch upload that sends nothing for this long is rolled back." },
    { "upload_timeout_s", "RATES_UPLOAD_TIMEOUT_S", "--upload-timeout-s", OPT_INT, 1, 86400, "900",
      0, OFF(upload_timeout_s), NULL,
      "Deadline from a batch upload's headers to the end of its body, however the bytes "
      "trickle in: later, 408 and the batch is rolled back (900: 1 GiB at 10 Mbit/s)." },
    { "batch_statement_timeout_ms", "RATES_BATCH_STATEMENT_TIMEOUT_MS",
      "--batch-statement-timeout-ms", OPT_INT, 1, 86400000, "300000", 0,
      OFF(batch_statement_timeout_ms), NULL,
      "statement_timeout for a batch's set-wise validate and insert steps." },
    { "idempotency_ttl_s", "RATES_IDEMPOTENCY_TTL_S", "--idempotency-ttl-s", OPT_INT, 1, 31536000,
      "86400", 0, OFF(idempotency_ttl_s), NULL,
      "How long an Idempotency-Key is remembered, in seconds." },
    { "fold_interval_ms", "RATES_FOLD_INTERVAL_MS", "--fold-interval-ms", OPT_INT, 0, 3600000,
      "1000", 0, OFF(fold_interval_ms), NULL,
      "Period of the background fold of the change log into the daily aggregate (also run "
      "250 ms after a write here); 0: this instance does not fold." },
    { "model", "RATES_MODEL", "--model", OPT_BOOL, 0, 1, "true", 0, OFF(model), NULL,
      "Answer GET /rates from the in-memory read model (docs/readmodel.md); false: every "
      "answer is read from the database." },
    { "model_max_bytes", "RATES_MODEL_MAX_BYTES", "--model-max-bytes", OPT_INT, 0, 1L << 40,
      "268435456", 0, OFF(model_max_bytes), NULL,
      "Bound of the read model's memory; past it the model is dropped and every answer is "
      "read from the database until restart (0: no bound)." },
    { "model_sync_ms", "RATES_MODEL_SYNC_MS", "--model-sync-ms", OPT_INT, 1, 60000, "2000", 0,
      OFF(model_sync_ms), NULL,
      "Longest a write committed here may stay out of the read model (reads here wait for a "
      "small write, a large one waits itself: RATES_MODEL_SYNC_ROWS); past it the model is not "
      "used until it caught up." },
    { "model_sync_rows", "RATES_MODEL_SYNC_ROWS", "--model-sync-rows", OPT_INT, 0, 1L << 40,
      "100000", 0, OFF(model_sync_rows), NULL,
      "A write of at least this many rows waits (at most RATES_MODEL_SYNC_MS) for the read "
      "model to hold it before its 2xx, and reads here are not held meanwhile; smaller writes "
      "answer at once and reads here wait for them instead (0: every write waits)." },
    { "drain_delay_s", "RATES_DRAIN_DELAY_S", "--drain-delay-s", OPT_INT, 0, 3600, "0", 0,
      OFF(drain_delay_s), NULL,
      "On SIGTERM, keep accepting this long with /readyz at 503 (for load balancers)." },
    { "shutdown_timeout_s", "RATES_SHUTDOWN_TIMEOUT_S", "--shutdown-timeout-s", OPT_INT, 0, 86400,
      "60", 0, OFF(shutdown_timeout_s), NULL,
      "Longest wait for in-flight requests and batches after the drain delay." },
    { "upgrade_timeout_s", "RATES_UPGRADE_TIMEOUT_S", "--upgrade-timeout-s", OPT_INT, 1, 3600, "30",
      0, OFF(upgrade_timeout_s), NULL,
      "On SIGUSR2, how long the new process may take to serve before the upgrade is abandoned." },
};
#undef OFF

static char **config_str_slot(struct config *c, const struct opt_def *o)
{
    return (char **)(void *)((char *)c + o->offset);
}

static long *config_long_slot(struct config *c, const struct opt_def *o)
{
    return (long *)(void *)((char *)c + o->offset);
}

static bool *config_bool_slot(struct config *c, const struct opt_def *o)
{
    return (bool *)(void *)((char *)c + o->offset);
}

static int config_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* The one setter: every layer goes through here. */
static int config_set(struct config *c, const struct opt_def *o, const char *value,
                      const char *source, char *err, size_t errcap)
{
    switch (o->type) {
    case OPT_STR: {
        if (o->check && o->check(value) != 0) {
            snprintf(err, errcap, "invalid value for %s from %s: '%s'", o->name, source,
                     (o->flags & OPT_SECRET) ? "<redacted>" : value);
            return -1;
        }
        char *dup = strdup(value);
        if (!dup) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        char **slot = config_str_slot(c, o);
        free(*slot);
        *slot = dup;
        return 0;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
            snprintf(err, errcap, "invalid value for %s from %s: '%s' (an integer from %ld to %ld)",
                     o->name, source, value, o->min, o->max);
            return -1;
        }
        *config_long_slot(c, o) = v;
        return 0;
    }
    case OPT_BOOL:
        if (config_parse_bool(value, config_bool_slot(c, o)) != 0) {
            snprintf(err, errcap, "invalid value for %s from %s: '%s' (true or false)", o->name,
                     source, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

static int config_read_secret_file(const char *path, char **out, char *err, size_t errcap,
                                   const char *source)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "cannot read %s '%s': %s", source, path, strerror(errno));
        return -1;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int too_long = !feof(f);
    fclose(f);
    if (too_long) {
        snprintf(err, errcap, "%s '%s' is larger than 64 KiB", source, path);
        return -1;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    *out = strdup(buf);
    return *out ? 0 : -1;
}

static const struct opt_def *config_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static char *config_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* The file layer: `key = value` lines, `#` comments, blank lines. */
static int config_load_file(struct config *c, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "cannot open config file '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = config_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char source[512];
        snprintf(source, sizeof source, "%s:%d", path, lineno);
        if (!eq) {
            snprintf(err, errcap, "%s: expected 'key = value'", source);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = config_trim(s), *value = config_trim(eq + 1);
        size_t klen = strlen(key);
        if (klen > 5 && strcmp(key + klen - 5, "_file") == 0) {
            key[klen - 5] = '\0';
            const struct opt_def *o = config_find(key);
            if (!o || !(o->flags & OPT_SECRET)) {
                snprintf(err, errcap, "%s: unknown option '%s_file'", source, key);
                rc = -1;
                break;
            }
            char *secret = NULL;
            rc = config_read_secret_file(value, &secret, err, errcap, source);
            if (rc == 0) {
                rc = config_set(c, o, secret, source, err, errcap);
                free(secret);
            }
            continue;
        }
        const struct opt_def *o = config_find(key);
        if (!o) {
            snprintf(err, errcap, "%s: unknown option '%s'", source, key);
            rc = -1;
            break;
        }
        rc = config_set(c, o, value, source, err, errcap);
    }
    fclose(f);
    return rc;
}

static int config_load_env(struct config *c, config_getenv_fn env, char *err, size_t errcap)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt_def *o = &opts[i];
        const char *v = env(o->env);
        if (o->flags & OPT_SECRET) {
            char fname[128];
            snprintf(fname, sizeof fname, "%s_FILE", o->env);
            const char *path = env(fname);
            if (v && path) {
                snprintf(err, errcap, "both %s and %s are set: choose one", o->env, fname);
                return -1;
            }
            if (path) {
                char *secret = NULL;
                if (config_read_secret_file(path, &secret, err, errcap, fname) != 0)
                    return -1;
                int rc = config_set(c, o, secret, fname, err, errcap);
                free(secret);
                if (rc != 0)
                    return -1;
                continue;
            }
        }
        if (v && config_set(c, o, v, o->env, err, errcap) != 0)
            return -1;
    }
    return 0;
}

static const struct opt_def *config_find_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        if (opts[i].flag && strlen(opts[i].flag) == len && strncmp(opts[i].flag, flag, len) == 0)
            return &opts[i];
    return NULL;
}

static int config_is_secret_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        if (!(opts[i].flags & OPT_SECRET))
            continue;
        char want[128];
        snprintf(want, sizeof want, "--%s", opts[i].name);
        for (char *p = want; *p; p++)
            if (*p == '_')
                *p = '-';
        if (strlen(want) == len && strncmp(want, flag, len) == 0)
            return 1;
    }
    return 0;
}

static int config_defaults(struct config *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        if (config_set(c, &opts[i], opts[i].def, "default", err, errcap) != 0)
            return -1;
    return 0;
}

/* Every lane must be able to hold its connections at once: the read lane's workers, and one
 * per batch in progress (a batch holds its connection for its whole upload and commit). */
static int config_check_lanes(const struct config *c, char *err, size_t errcap)
{
    if (c->pool_size >= c->workers + c->max_concurrent_batches)
        return CONFIG_OK;
    snprintf(err, errcap,
             "pool_size %ld is too small for the lanes: workers (%ld, the read lane's own "
             "connections) + max_concurrent_batches (%ld, one connection per batch) need %ld; "
             "raise RATES_POOL_SIZE or lower the others",
             c->pool_size, c->workers, c->max_concurrent_batches,
             c->workers + c->max_concurrent_batches);
    return CONFIG_ERROR;
}

int config_load(struct config *c, int argc, const char *const *argv, config_getenv_fn env,
                char *err, size_t errcap)
{
    if (config_defaults(c, err, errcap) != 0)
        return CONFIG_ERROR;
    /* Pass 1: --help, --version, --config. */
    const char *file = env("RATES_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return CONFIG_HELP;
        if (strcmp(argv[i], "--version") == 0)
            return CONFIG_VERSION;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errcap, "--config needs a file");
                return CONFIG_ERROR;
            }
            file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            file = argv[i] + 9;
        }
    }
    if (file && *file && config_load_file(c, file, err, errcap) != 0)
        return CONFIG_ERROR;
    if (config_load_env(c, env, err, errcap) != 0)
        return CONFIG_ERROR;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errcap, "unexpected argument '%s' (see --help)", a);
            return CONFIG_ERROR;
        }
        const char *eq = strchr(a, '=');
        size_t flen = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt_def *o = config_find_flag(a, flen);
        if (!o) {
            if (config_is_secret_flag(a, flen))
                snprintf(err, errcap,
                         "'%.*s' is a secret and is not accepted as a flag (it would show in ps): "
                         "use its environment variable or its _FILE form",
                         (int)flen, a);
            else
                snprintf(err, errcap, "unknown option '%.*s' (see --help)", (int)flen, a);
            return CONFIG_ERROR;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == OPT_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errcap, "%s needs a value", o->flag);
            return CONFIG_ERROR;
        }
        char source[160];
        snprintf(source, sizeof source, "flag %s", o->flag);
        if (config_set(c, o, value, source, err, errcap) != 0)
            return CONFIG_ERROR;
    }
    return config_check_lanes(c, err, errcap);
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        if (opts[i].type == OPT_STR) {
            char **slot = config_str_slot(c, &opts[i]);
            free(*slot);
            *slot = NULL;
        }
    }
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: ratesd [serve|migrate] [--config FILE] [options]\n\n"
                 "Options (flag / environment variable / default):\n");
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt_def *o = &opts[i];
        fprintf(out, "  %-30s %s  [default: %s]\n      %s\n",
                o->flag ? o->flag : "(no flag: secret)", o->env, *o->def ? o->def : "\"\"", o->doc);
        if (o->flags & OPT_SECRET)
            fprintf(out, "      also %s_FILE (a file holding the value)\n", o->env);
    }
    fprintf(out, "\nThe config file (--config FILE or RATES_CONFIG) holds `name = value` lines;\n"
                 "secrets may be given there as `name_file = PATH`.\n");
}

void config_markdown(FILE *out)
{
    fprintf(out, "| Variable | Flag | Default | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt_def *o = &opts[i];
        char def[96];
        if (*o->def)
            snprintf(def, sizeof def, "`%s`", o->def);
        else
            snprintf(def, sizeof def, "(empty)");
        fprintf(out, "| `%s` | %s%s%s | %s | %s |\n", o->env, o->flag ? "`" : "",
                o->flag ? o->flag : "(secret: env or `_FILE`)", o->flag ? "`" : "", def, o->doc);
    }
}

void config_describe(const struct config *c, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(opts) && n < cap; i++) {
        const struct opt_def *o = &opts[i];
        const char *base = (const char *)c + o->offset;
        int w;
        if (o->type == OPT_STR) {
            const char *v = *(char *const *)(const void *)base;
            w = snprintf(out + n, cap - n, "%s%s=%s", n ? " " : "", o->name,
                         (o->flags & OPT_SECRET) ? (v && *v ? "<set>" : "<unset>") : (v ? v : ""));
        } else if (o->type == OPT_INT) {
            w = snprintf(out + n, cap - n, "%s%s=%ld", n ? " " : "", o->name,
                         *(const long *)(const void *)base);
        } else {
            w = snprintf(out + n, cap - n, "%s%s=%s", n ? " " : "", o->name,
                         *(const bool *)(const void *)base ? "true" : "false");
        }
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* For src/reload.c: every option of the table, in order, with its OPT_RELOAD flag and whether
 * its value differs between fresh and running (strings compared, secrets never shown). */
void config_walk(const struct config *fresh, const struct config *running, config_walk_fn fn,
                 void *arg)
{
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const struct opt_def *o = &opts[i];
        const char *a = (const char *)fresh + o->offset, *b = (const char *)running + o->offset;
        bool changed;
        if (o->type == OPT_STR) {
            const char *x = *(char *const *)(const void *)a, *y = *(char *const *)(const void *)b;
            changed = strcmp(x ? x : "", y ? y : "") != 0;
        } else if (o->type == OPT_INT) {
            changed = *(const long *)(const void *)a != *(const long *)(const void *)b;
        } else {
            changed = *(const bool *)(const void *)a != *(const bool *)(const void *)b;
        }
        fn(o->name, (o->flags & OPT_RELOAD) != 0, changed, arg);
    }
}
