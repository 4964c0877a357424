/* metrics.h: atomic counters, gauges and fixed-bucket histograms; one Prometheus renderer. */
#ifndef RATES_METRICS_H
#define RATES_METRICS_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dynbuf;

/* Route labels are a fixed set so that label cardinality stays bounded. */
enum metrics_route {
    ROUTE_ROOT = 0,
    ROUTE_RATES,
    ROUTE_BATCHES,
    ROUTE_BATCH,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_REGIONS,
    ROUTE_PORTS,
    ROUTE_OTHER,
    ROUTE_COUNT
};

enum metrics_batch_outcome {
    BATCH_COMMITTED = 0,
    BATCH_REJECTED,
    BATCH_REPLAYED,
    BATCH_ABORTED,
    BATCH_RETRACTED,
    BATCH_OUTCOME_COUNT
};

/* Lanes of database work (src/workers.h) and connection pools: fixed label sets. */
enum metrics_lane { LANE_READ = 0, LANE_BATCH, LANE_COMMIT, LANE_COUNT };
enum metrics_pool { POOL_PRIMARY = 0, POOL_BATCH, POOL_READ, POOL_COUNT };

void metrics_init(void);
void metrics_request_done(int route, int status, uint64_t duration_ns);
void metrics_inflight_add(int delta);
/* pool is an enum metrics_pool. */
void metrics_pool_set(int pool, long size, long in_use);
void metrics_pool_wait(int pool, uint64_t ns);
void metrics_db_query(uint64_t ns);
void metrics_db_error(void);
void metrics_db_reconnect(void);
/* lane is an enum metrics_lane. */
const char *metrics_lane_name(int lane);
void metrics_lane_workers_set(int lane, long n);
void metrics_lane_queued(int lane);
void metrics_lane_dequeued(int lane, uint64_t waited_ns);
void metrics_lane_busy_add(int lane, int delta);
void metrics_rejected_overload(int lane);
void metrics_batch_done(int outcome, uint64_t rows, uint64_t bytes, uint64_t duration_ns);
void metrics_batch_inflight_add(int delta);
/* Open HTTP connections per listener, and connections refused over the soft limit. */
void metrics_connections_add(bool admin, int delta);
void metrics_connection_refused(void);
/* Whether the start-up self-check found libmicrohttpd's refusal log lines readable
 * (src/mhdlog.h): if not, requests it refuses itself are not counted. */
void metrics_set_refusal_log_ok(bool ok);
/* A connection closed by src/deadline.c: late in its request head, or in its response. */
void metrics_deadline_closed(bool head);
/* Appends the whole exposition in the Prometheus text format 0.0.4. */
/* The response cache whose statistics /metrics shows (NULL: none; not owned). */
struct cache;
void metrics_set_cache(struct cache *c);
void metrics_cache_not_modified(void);
void metrics_cache_reread(void);

/* State machines whose illegal moves are refused and counted (src/statemove.c). */
enum metrics_machine { MACHINE_HTTP = 0, MACHINE_INGEST, MACHINE_MODEL, MACHINE_COUNT };
const char *metrics_machine_name(int machine);
void metrics_illegal_state_move(int machine);

/* The read model (src/follow.c): its state (a static name), size, loads and applies, syncs of
 * a write that timed out, writes answered once the model held them (main.c), and /rates
 * answers by source (the model or the database). */
void metrics_model_state(const char *state);
void metrics_model_size(uint64_t version, size_t keys, size_t bytes);
void metrics_model_loaded(uint64_t ns);
void metrics_model_applied(uint64_t ns);
void metrics_model_sync_timeout(void);
void metrics_model_commit_synced(void);
void metrics_model_read(bool from_model);

/* The background fold (src/fold.c): one run's result, rows moved and time; the tail left. */
enum metrics_fold_result { FOLD_MOVED = 0, FOLD_IDLE, FOLD_BUSY, FOLD_ERROR, FOLD_RESULT_COUNT };
void metrics_fold_done(int result, uint64_t rows, uint64_t ns);
void metrics_fold_tail(long long rows, double lag_s);

int metrics_render(struct dynbuf *out) WUR;

#endif
