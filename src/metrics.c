/* metrics.c: process-wide metrics and their Prometheus text rendering. */
#include "metrics.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "dynbuf.h"

#define HIST_MAX_BUCKETS 16

struct hist {
    const double *bounds; /* seconds, ascending */
    int n;
    atomic_uint_fast64_t counts[HIST_MAX_BUCKETS + 1];
    atomic_uint_fast64_t sum_ns;
};

static const double http_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1,     2.5,  10 };
static const double db_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025,  0.05,    0.1,    0.25,  1,      5 };
static const double batch_bounds[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

static const int status_codes[] = { 200, 201, 204, 304, 400, 401, 403, 404, 405,
                                    409, 413, 414, 415, 422, 431, 500, 503 };
#define STATUS_COUNT ((int)ARRAY_LEN(status_codes) + 1)

static const char *const route_names[ROUTE_COUNT] = {
    "/",       "/rates",   "/batches", "/batches/{id}", "/healthz",
    "/readyz", "/metrics", "/regions", "/ports",        "other"
};
static const char *const outcome_names[BATCH_OUTCOME_COUNT] = { "committed", "rejected", "replayed",
                                                                "aborted", "retracted" };

static atomic_uint_fast64_t requests[ROUTE_COUNT][STATUS_COUNT];
static struct hist request_hist[ROUTE_COUNT];
static atomic_int inflight;
static const char *const pool_names[POOL_COUNT] = { "primary", "batch", "read" };
static const char *const lane_names[LANE_COUNT] = { "read", "batch", "commit" };
static atomic_bool pool_present[POOL_COUNT];
static atomic_long pool_size[POOL_COUNT], pool_in_use[POOL_COUNT];
static struct hist pool_wait_hist[POOL_COUNT];
static atomic_long lane_workers[LANE_COUNT];
static atomic_int lane_depth[LANE_COUNT], lane_busy[LANE_COUNT];
static struct hist lane_wait_hist[LANE_COUNT];
static atomic_uint_fast64_t lane_rejects[LANE_COUNT];
static struct hist db_query_hist;
static atomic_uint_fast64_t db_errors, db_reconnects;
static atomic_uint_fast64_t batches[BATCH_OUTCOME_COUNT];
static atomic_uint_fast64_t batch_rows, batch_bytes;
static struct hist batch_hist;
static atomic_int batch_inflight;
static double start_time_s;
static atomic_long connections[2]; /* public, admin */
static atomic_uint_fast64_t connections_refused;
static atomic_uint_fast64_t deadline_closed[2]; /* send, head */
static _Atomic(struct cache *) cache_ref;       /* the response cache, or NULL (not owned) */
static atomic_uint_fast64_t cache_not_modified, cache_rereads;

static void hist_init(struct hist *h, const double *bounds, int n)
{
    h->bounds = bounds;
    h->n = n;
}

static void hist_observe(struct hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < h->n && s > h->bounds[i])
        i++;
    atomic_fetch_add(&h->counts[i], 1);
    atomic_fetch_add(&h->sum_ns, ns);
}

void metrics_init(void)
{
    for (int r = 0; r < ROUTE_COUNT; r++)
        hist_init(&request_hist[r], http_bounds, (int)ARRAY_LEN(http_bounds));
    for (int p = 0; p < POOL_COUNT; p++)
        hist_init(&pool_wait_hist[p], db_bounds, (int)ARRAY_LEN(db_bounds));
    for (int l = 0; l < LANE_COUNT; l++)
        hist_init(&lane_wait_hist[l], db_bounds, (int)ARRAY_LEN(db_bounds));
    hist_init(&db_query_hist, db_bounds, (int)ARRAY_LEN(db_bounds));
    hist_init(&batch_hist, batch_bounds, (int)ARRAY_LEN(batch_bounds));
    start_time_s = (double)clock_wall_ns() / 1e9;
}

void metrics_request_done(int route, int status, uint64_t duration_ns)
{
    if (route < 0 || route >= ROUTE_COUNT)
        route = ROUTE_OTHER;
    int s = STATUS_COUNT - 1;
    for (int i = 0; i < (int)ARRAY_LEN(status_codes); i++)
        if (status_codes[i] == status)
            s = i;
    atomic_fetch_add(&requests[route][s], 1);
    hist_observe(&request_hist[route], duration_ns);
}

void metrics_inflight_add(int delta)
{
    atomic_fetch_add(&inflight, delta);
}
static int metrics_pool_index(int pool)
{
    return pool >= 0 && pool < POOL_COUNT ? pool : POOL_PRIMARY;
}

static int metrics_lane_index(int lane)
{
    return lane >= 0 && lane < LANE_COUNT ? lane : LANE_READ;
}

void metrics_pool_set(int pool, long size, long in_use)
{
    pool = metrics_pool_index(pool);
    atomic_store(&pool_present[pool], true);
    atomic_store(&pool_size[pool], size);
    atomic_store(&pool_in_use[pool], in_use);
}
void metrics_pool_wait(int pool, uint64_t ns)
{
    hist_observe(&pool_wait_hist[metrics_pool_index(pool)], ns);
}
const char *metrics_lane_name(int lane)
{
    return lane_names[metrics_lane_index(lane)];
}
void metrics_lane_workers_set(int lane, long n)
{
    atomic_store(&lane_workers[metrics_lane_index(lane)], n);
}
void metrics_lane_queued(int lane)
{
    atomic_fetch_add(&lane_depth[metrics_lane_index(lane)], 1);
}
void metrics_lane_dequeued(int lane, uint64_t waited_ns)
{
    lane = metrics_lane_index(lane);
    atomic_fetch_sub(&lane_depth[lane], 1);
    hist_observe(&lane_wait_hist[lane], waited_ns);
}
void metrics_lane_busy_add(int lane, int delta)
{
    atomic_fetch_add(&lane_busy[metrics_lane_index(lane)], delta);
}
void metrics_rejected_overload(int lane)
{
    atomic_fetch_add(&lane_rejects[metrics_lane_index(lane)], 1);
}
void metrics_db_query(uint64_t ns)
{
    hist_observe(&db_query_hist, ns);
}
void metrics_db_error(void)
{
    atomic_fetch_add(&db_errors, 1);
}
void metrics_db_reconnect(void)
{
    atomic_fetch_add(&db_reconnects, 1);
}
void metrics_batch_inflight_add(int delta)
{
    atomic_fetch_add(&batch_inflight, delta);
}
void metrics_connections_add(bool admin, int delta)
{
    atomic_fetch_add(&connections[admin], delta);
}
void metrics_connection_refused(void)
{
    atomic_fetch_add(&connections_refused, 1);
}
static atomic_int refusal_log_ok = 1;
void metrics_set_refusal_log_ok(bool ok)
{
    atomic_store(&refusal_log_ok, ok ? 1 : 0);
}
void metrics_deadline_closed(bool head)
{
    atomic_fetch_add(&deadline_closed[head], 1);
}

static atomic_uint_fast64_t illegal_moves[MACHINE_COUNT];

const char *metrics_machine_name(int machine)
{
    static const char *const names[MACHINE_COUNT] = { "http", "ingest", "model" };
    return machine >= 0 && machine < MACHINE_COUNT ? names[machine] : "other";
}

void metrics_illegal_state_move(int machine)
{
    if (machine >= 0 && machine < MACHINE_COUNT)
        atomic_fetch_add(&illegal_moves[machine], 1);
}

static int render_head(struct dynbuf *o, const char *name, const char *type, const char *help);

/* One unlabelled series: its name, type, help and value. */
struct metrics_row {
    const char *name, *type, *help;
    uint64_t v;
};
static int render_rows(struct dynbuf *o, const struct metrics_row *rows, size_t n);

static _Atomic(const char *) model_state_name = "off";
static atomic_uint_fast64_t model_version, model_keys, model_bytes;
static atomic_uint_fast64_t model_loads, model_load_ns_last, model_applies, model_apply_ns;
static atomic_uint_fast64_t model_sync_timeouts, model_commits_synced, model_reads[2];

void metrics_model_state(const char *state)
{
    atomic_store(&model_state_name, state);
}
void metrics_model_size(uint64_t version, size_t keys, size_t bytes)
{
    atomic_store(&model_version, version);
    atomic_store(&model_keys, keys);
    atomic_store(&model_bytes, bytes);
}
void metrics_model_loaded(uint64_t ns)
{
    atomic_fetch_add(&model_loads, 1);
    atomic_store(&model_load_ns_last, ns);
}
void metrics_model_applied(uint64_t ns)
{
    atomic_fetch_add(&model_applies, 1);
    atomic_fetch_add(&model_apply_ns, ns);
}
void metrics_model_sync_timeout(void)
{
    atomic_fetch_add(&model_sync_timeouts, 1);
}
void metrics_model_commit_synced(void)
{
    atomic_fetch_add(&model_commits_synced, 1);
}
void metrics_model_read(bool from_model)
{
    atomic_fetch_add(&model_reads[from_model], 1);
}

static int render_model(struct dynbuf *o)
{
    static const char *const states[] = { "off", "loading", "current", "stale", "too_large" };
    const char *now = atomic_load(&model_state_name);
    int rc = render_head(o, "rates_model_state", "gauge",
                         "The read model's state (1 for the state it is in; docs/readmodel.md).");
    for (size_t i = 0; i < ARRAY_LEN(states); i++)
        rc |= dynbuf_printf(o, "rates_model_state{state=\"%s\"} %d\n", states[i],
                            strcmp(states[i], now) == 0);
    const struct metrics_row rows[] = {
        { "rates_model_version", "gauge", "Data version the read model is at.",
          atomic_load(&model_version) },
        { "rates_model_keys", "gauge", "Node-pair-day keys in the read model.",
          atomic_load(&model_keys) },
        { "rates_model_bytes", "gauge", "Memory the read model holds (RATES_MODEL_MAX_BYTES).",
          atomic_load(&model_bytes) },
        { "rates_model_loads_total", "counter",
          "Whole loads of the read model from a snapshot (start, reconnect, epoch, gap).",
          atomic_load(&model_loads) },
        { "rates_model_applies_total", "counter", "Passes that applied new change rows.",
          atomic_load(&model_applies) },
        { "rates_model_sync_timeouts_total", "counter",
          "Commits of this instance still not in the model RATES_MODEL_SYNC_MS after them (the "
          "model went stale until it caught up).",
          atomic_load(&model_sync_timeouts) },
        { "rates_model_commits_synced_total", "counter",
          "Writes of this instance (RATES_MODEL_SYNC_ROWS rows or more) answered once the model "
          "held them.",
          atomic_load(&model_commits_synced) },
    };
    rc |= render_rows(o, rows, ARRAY_LEN(rows));
    rc |= render_head(o, "rates_model_load_seconds", "gauge", "Duration of the last whole load.");
    rc |= dynbuf_printf(o, "rates_model_load_seconds %.6f\n",
                        (double)atomic_load(&model_load_ns_last) / 1e9);
    rc |= render_head(o, "rates_model_apply_seconds_total", "counter",
                      "Time spent reading and applying change rows.");
    rc |= dynbuf_printf(o, "rates_model_apply_seconds_total %.6f\n",
                        (double)atomic_load(&model_apply_ns) / 1e9);
    rc |= render_head(o, "rates_model_reads_total", "counter",
                      "GET /rates answers computed, by source (the model, or the database when "
                      "the model is not current or the request asks the database).");
    rc |= dynbuf_printf(o,
                        "rates_model_reads_total{source=\"model\"} %llu\n"
                        "rates_model_reads_total{source=\"database\"} %llu\n",
                        (unsigned long long)atomic_load(&model_reads[1]),
                        (unsigned long long)atomic_load(&model_reads[0]));
    return rc;
}

static atomic_uint_fast64_t fold_runs[FOLD_RESULT_COUNT];
static atomic_uint_fast64_t fold_rows, fold_ns;
static atomic_llong fold_tail_rows;
static _Atomic double fold_lag_s;

void metrics_fold_done(int result, uint64_t rows, uint64_t ns)
{
    if (result < 0 || result >= FOLD_RESULT_COUNT)
        return;
    atomic_fetch_add(&fold_runs[result], 1);
    atomic_fetch_add(&fold_rows, rows);
    atomic_fetch_add(&fold_ns, ns);
}

void metrics_fold_tail(long long rows, double lag_s)
{
    atomic_store(&fold_tail_rows, rows);
    atomic_store(&fold_lag_s, lag_s);
}

void metrics_batch_done(int outcome, uint64_t rows, uint64_t bytes, uint64_t duration_ns)
{
    if (outcome < 0 || outcome >= BATCH_OUTCOME_COUNT)
        return;
    atomic_fetch_add(&batches[outcome], 1);
    if (outcome == BATCH_COMMITTED) {
        atomic_fetch_add(&batch_rows, rows);
        atomic_fetch_add(&batch_bytes, bytes);
    }
    if (outcome != BATCH_REPLAYED && outcome != BATCH_RETRACTED)
        hist_observe(&batch_hist, duration_ns);
}

static int render_head(struct dynbuf *o, const char *name, const char *type, const char *help)
{
    return dynbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_rows(struct dynbuf *o, const struct metrics_row *rows, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= render_head(o, rows[i].name, rows[i].type, rows[i].help);
        rc |= dynbuf_printf(o, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    }
    return rc;
}

static int render_hist(struct dynbuf *o, const char *name, const char *labels, struct hist *h)
{
    uint64_t cum = 0;
    const char *sep = *labels ? "," : "";
    for (int i = 0; i <= h->n; i++) {
        cum += atomic_load(&h->counts[i]);
        char le[32];
        if (i < h->n)
            snprintf(le, sizeof le, "%g", h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        if (dynbuf_printf(o, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, le,
                          (unsigned long long)cum) != 0)
            return -1;
    }
    double sum = (double)atomic_load(&h->sum_ns) / 1e9;
    if (*labels)
        return dynbuf_printf(o, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, labels, sum, name,
                             labels, (unsigned long long)cum);
    return dynbuf_printf(o, "%s_sum %.9f\n%s_count %llu\n", name, sum, name,
                         (unsigned long long)cum);
}

/* Per lane (src/workers.h): workers, queue depth, busy workers, queue wait, 503s. */
static int render_lanes(struct dynbuf *o)
{
    int rc = 0;
    rc |= render_head(o, "rates_lane_workers", "gauge", "Worker threads of a lane.");
    for (int l = 0; l < LANE_COUNT; l++)
        rc |= dynbuf_printf(o, "rates_lane_workers{lane=\"%s\"} %ld\n", lane_names[l],
                            atomic_load(&lane_workers[l]));
    rc |= render_head(o, "rates_lane_busy_workers", "gauge", "Workers of a lane running a job.");
    for (int l = 0; l < LANE_COUNT; l++)
        rc |= dynbuf_printf(o, "rates_lane_busy_workers{lane=\"%s\"} %d\n", lane_names[l],
                            atomic_load(&lane_busy[l]));
    rc |= render_head(o, "rates_lane_queue_depth", "gauge", "Jobs waiting for a worker of a lane.");
    for (int l = 0; l < LANE_COUNT; l++)
        rc |= dynbuf_printf(o, "rates_lane_queue_depth{lane=\"%s\"} %d\n", lane_names[l],
                            atomic_load(&lane_depth[l]));
    rc |= render_head(o, "rates_lane_wait_seconds", "histogram",
                      "Time a job waited in a lane's queue for a worker.");
    for (int l = 0; l < LANE_COUNT; l++) {
        char labels[32];
        snprintf(labels, sizeof labels, "lane=\"%s\"", lane_names[l]);
        rc |= render_hist(o, "rates_lane_wait_seconds", labels, &lane_wait_hist[l]);
    }
    rc |= render_head(o, "rates_overload_rejections_total", "counter",
                      "Requests refused with 503 because a lane's queue was full.");
    for (int l = 0; l < LANE_COUNT; l++)
        rc |= dynbuf_printf(o, "rates_overload_rejections_total{lane=\"%s\"} %llu\n", lane_names[l],
                            (unsigned long long)atomic_load(&lane_rejects[l]));
    return rc ? -1 : 0;
}

/* Per pool: primary (read lane), batch (primary connections of the batch lanes), read
 * (replicas, only when RATES_DATABASE_READ_URL is set). */
static int render_pools(struct dynbuf *o)
{
    int rc = 0;
    rc |=
        render_head(o, "rates_db_pool_size", "gauge", "Configured database connections, by pool.");
    for (int p = 0; p < POOL_COUNT; p++)
        if (atomic_load(&pool_present[p]))
            rc |= dynbuf_printf(o, "rates_db_pool_size{pool=\"%s\"} %ld\n", pool_names[p],
                                atomic_load(&pool_size[p]));
    rc |= render_head(o, "rates_db_pool_in_use", "gauge",
                      "Database connections checked out, by pool.");
    for (int p = 0; p < POOL_COUNT; p++)
        if (atomic_load(&pool_present[p]))
            rc |= dynbuf_printf(o, "rates_db_pool_in_use{pool=\"%s\"} %ld\n", pool_names[p],
                                atomic_load(&pool_in_use[p]));
    rc |= render_head(o, "rates_db_pool_wait_seconds", "histogram",
                      "Wait for a pooled database connection, by pool.");
    for (int p = 0; p < POOL_COUNT; p++) {
        if (!atomic_load(&pool_present[p]))
            continue;
        char labels[32];
        snprintf(labels, sizeof labels, "pool=\"%s\"", pool_names[p]);
        rc |= render_hist(o, "rates_db_pool_wait_seconds", labels, &pool_wait_hist[p]);
    }
    return rc ? -1 : 0;
}

static int render_process(struct dynbuf *o)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    long rss_pages = 0, vsz_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &vsz_pages, &rss_pages) != 2)
            rss_pages = vsz_pages = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int rc = 0;
    rc |= render_head(o, "process_cpu_seconds_total", "counter", "User and system CPU time.");
    rc |= dynbuf_printf(o, "process_cpu_seconds_total %.3f\n", cpu);
    rc |= render_head(o, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    rc |= dynbuf_printf(o, "process_resident_memory_bytes %ld\n", rss_pages * page);
    rc |= render_head(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    rc |= dynbuf_printf(o, "process_virtual_memory_bytes %ld\n", vsz_pages * page);
    rc |= render_head(o, "process_open_fds", "gauge", "Open file descriptors.");
    rc |= dynbuf_printf(o, "process_open_fds %d\n", fds);
    rc |= render_head(o, "process_max_fds", "gauge", "Limit on open file descriptors.");
    rc |= dynbuf_printf(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    rc |= render_head(o, "process_start_time_seconds", "gauge", "Start time since the Unix epoch.");
    rc |= dynbuf_printf(o, "process_start_time_seconds %.3f\n", start_time_s);
    return rc ? -1 : 0;
}

void metrics_set_cache(struct cache *c)
{
    atomic_store(&cache_ref, c);
}

void metrics_cache_not_modified(void)
{
    atomic_fetch_add(&cache_not_modified, 1);
}

void metrics_cache_reread(void)
{
    atomic_fetch_add(&cache_rereads, 1);
}

static int render_cache(struct dynbuf *o)
{
    struct cache *c = atomic_load(&cache_ref);
    struct cache_stats s = { 0 };
    if (c)
        cache_stats(c, &s);
    const struct metrics_row rows[] = {
        { "rates_cache_hits_total", "counter", "Read answers served from the response cache.",
          s.hits },
        { "rates_cache_misses_total", "counter", "Cache lookups that found no valid answer.",
          s.misses },
        { "rates_cache_evictions_total", "counter",
          "Answers evicted to stay within the byte bound.", s.evictions },
        { "rates_cache_fills_total", "counter", "Answers stored in the cache.", s.fills },
        { "rates_cache_fill_waits_total", "counter",
          "Identical misses that waited for another request's fill (single flight).", s.waits },
        { "rates_cache_stale_skips_total", "counter",
          "Answers not stored: read before a write or at an older version than the newest known.",
          s.stale_skips },
        { "rates_cache_admission_skips_total", "counter",
          "Large answers (over 1/64 of the cache and 64 KiB) not stored on their first fill.",
          s.admission_skips },
        { "rates_cache_invalidations_total", "counter",
          "Whole-cache invalidations after a write committed on this instance.", s.invalidations },
        { "rates_cache_resets_total", "counter",
          "Cache drops because the LISTEN connection was lost.", s.resets },
        { "rates_cache_not_modified_total", "counter",
          "304 answers to If-None-Match without touching the database.",
          (uint64_t)atomic_load(&cache_not_modified) },
        { "rates_cache_replica_rereads_total", "counter",
          "Replica answers older than the newest version known, read again on the primary.",
          (uint64_t)atomic_load(&cache_rereads) },
        { "rates_cache_bytes", "gauge", "Bytes the cached answers take.", s.bytes },
        { "rates_cache_max_bytes", "gauge", "The byte bound (RATES_CACHE_BYTES).", s.max_bytes },
        { "rates_cache_entries", "gauge", "Answers in the cache.", s.entries },
        { "rates_cache_live", "gauge",
          "1 while the listener is subscribed and the cache serves, else 0.", s.live },
        { "rates_cache_data_version", "gauge", "The newest data version known (0: none).",
          (uint64_t)(s.version > 0 ? s.version : 0) },
    };
    return render_rows(o, rows, ARRAY_LEN(rows));
}

static int render_fold(struct dynbuf *o)
{
    static const char *const names[FOLD_RESULT_COUNT] = { "moved", "idle", "busy", "error" };
    int rc = render_head(o, "rates_fold_runs_total", "counter",
                         "Background folds of the change log by result (busy: another "
                         "instance was folding).");
    for (int i = 0; i < FOLD_RESULT_COUNT; i++)
        rc |= dynbuf_printf(o, "rates_fold_runs_total{result=\"%s\"} %llu\n", names[i],
                            (unsigned long long)atomic_load(&fold_runs[i]));
    rc |= render_head(o, "rates_fold_rows_total", "counter",
                      "Change-log rows moved into rates_daily by this instance's folds.");
    rc |= dynbuf_printf(o, "rates_fold_rows_total %llu\n",
                        (unsigned long long)atomic_load(&fold_rows));
    rc |= render_head(o, "rates_fold_seconds_total", "counter", "Time spent in folds.");
    rc |= dynbuf_printf(o, "rates_fold_seconds_total %.6f\n", (double)atomic_load(&fold_ns) / 1e9);
    rc |= render_head(o, "rates_fold_tail_rows", "gauge",
                      "Change-log rows not folded yet, after this instance's last fold.");
    rc |= dynbuf_printf(o, "rates_fold_tail_rows %lld\n", atomic_load(&fold_tail_rows));
    rc |= render_head(o, "rates_fold_lag_seconds", "gauge",
                      "Age of the last fold while rows wait (0: nothing waits).");
    rc |= dynbuf_printf(o, "rates_fold_lag_seconds %.3f\n", atomic_load(&fold_lag_s));
    return rc;
}

int metrics_render(struct dynbuf *o)
{
    int rc = 0;
    rc |= render_head(o, "rates_build_info", "gauge", "Build version and commit.");
    rc |= dynbuf_printf(o, "rates_build_info{version=\"%s\",commit=\"%s\"} 1\n", RATES_VERSION,
                        RATES_COMMIT);
    rc |= render_head(o, "rates_http_requests_total", "counter",
                      "HTTP requests answered, by route and status.");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        for (int s = 0; s < STATUS_COUNT; s++) {
            uint64_t v = atomic_load(&requests[r][s]);
            if (v == 0)
                continue;
            char code[8];
            if (s < (int)ARRAY_LEN(status_codes))
                snprintf(code, sizeof code, "%d", status_codes[s]);
            else
                snprintf(code, sizeof code, "other");
            rc |= dynbuf_printf(o, "rates_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                                route_names[r], code, (unsigned long long)v);
        }
    }
    rc |= render_head(o, "rates_http_request_duration_seconds", "histogram",
                      "Time from request start to response, by route.");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_names[r]);
        rc |= render_hist(o, "rates_http_request_duration_seconds", labels, &request_hist[r]);
    }
    rc |= render_head(o, "rates_http_requests_in_flight", "gauge",
                      "Requests received and not yet answered.");
    rc |= dynbuf_printf(o, "rates_http_requests_in_flight %d\n", atomic_load(&inflight));
    rc |= render_head(o, "rates_http_connections", "gauge", "Open HTTP connections, by listener.");
    rc |= dynbuf_printf(o,
                        "rates_http_connections{listener=\"public\"} %ld\n"
                        "rates_http_connections{listener=\"admin\"} %ld\n",
                        atomic_load(&connections[0]), atomic_load(&connections[1]));
    rc |= render_head(o, "rates_http_refusal_log_ok", "gauge",
                      "1 when libmicrohttpd's own refusals (400, 414, 431) can be counted.");
    rc |= dynbuf_printf(o, "rates_http_refusal_log_ok %d\n", atomic_load(&refusal_log_ok));
    rc |= render_head(o, "rates_http_connections_refused_total", "counter",
                      "Connections answered 503 because the connection limit was reached.");
    rc |= dynbuf_printf(o, "rates_http_connections_refused_total %llu\n",
                        (unsigned long long)atomic_load(&connections_refused));
    rc |= render_head(o, "rates_http_deadline_closed_total", "counter",
                      "Connections closed because their request head or response overstayed "
                      "RATES_HEADER_TIMEOUT_S or RATES_SEND_TIMEOUT_S.");
    rc |= dynbuf_printf(o,
                        "rates_http_deadline_closed_total{phase=\"head\"} %llu\n"
                        "rates_http_deadline_closed_total{phase=\"send\"} %llu\n",
                        (unsigned long long)atomic_load(&deadline_closed[1]),
                        (unsigned long long)atomic_load(&deadline_closed[0]));
    rc |= render_lanes(o);
    rc |= render_pools(o);
    rc |= render_head(o, "rates_illegal_state_moves_total", "counter",
                      "State machine moves refused as illegal, by machine (0 unless a bug).");
    for (int m = 0; m < MACHINE_COUNT; m++)
        rc |= dynbuf_printf(o, "rates_illegal_state_moves_total{machine=\"%s\"} %llu\n",
                            metrics_machine_name(m),
                            (unsigned long long)atomic_load(&illegal_moves[m]));
    rc |= render_fold(o);
    rc |= render_model(o);
    rc |= render_head(o, "rates_db_query_duration_seconds", "histogram",
                      "Duration of read queries at the database.");
    rc |= render_hist(o, "rates_db_query_duration_seconds", "", &db_query_hist);
    rc |= render_head(o, "rates_db_errors_total", "counter",
                      "Database errors (connection failures and failed statements).");
    rc |= dynbuf_printf(o, "rates_db_errors_total %llu\n",
                        (unsigned long long)atomic_load(&db_errors));
    rc |= render_head(o, "rates_db_reconnects_total", "counter",
                      "New database connections made after a broken one was discarded.");
    rc |= dynbuf_printf(o, "rates_db_reconnects_total %llu\n",
                        (unsigned long long)atomic_load(&db_reconnects));
    rc |= render_head(o, "rates_batches_total", "counter", "Batches by outcome.");
    for (int i = 0; i < BATCH_OUTCOME_COUNT; i++)
        rc |= dynbuf_printf(o, "rates_batches_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                            (unsigned long long)atomic_load(&batches[i]));
    rc |= render_head(o, "rates_batch_rows_total", "counter", "Rows committed by batches.");
    rc |= dynbuf_printf(o, "rates_batch_rows_total %llu\n",
                        (unsigned long long)atomic_load(&batch_rows));
    rc |= render_head(o, "rates_batch_bytes_total", "counter", "Body bytes of committed batches.");
    rc |= dynbuf_printf(o, "rates_batch_bytes_total %llu\n",
                        (unsigned long long)atomic_load(&batch_bytes));
    rc |= render_head(o, "rates_batch_duration_seconds", "histogram",
                      "Time from a batch's first byte to its outcome.");
    rc |= render_hist(o, "rates_batch_duration_seconds", "", &batch_hist);
    rc |= render_head(o, "rates_batches_in_flight", "gauge", "Batches being received.");
    rc |= dynbuf_printf(o, "rates_batches_in_flight %d\n", atomic_load(&batch_inflight));
    rc |= render_cache(o);
    rc |= render_process(o);
    return rc ? -1 : 0;
}
