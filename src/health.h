/* health.h: GET /, /healthz, /readyz and /metrics, and the readiness monitor thread. */
#ifndef RATES_HEALTH_H
#define RATES_HEALTH_H

#include <stdbool.h>

struct http_req;

/* Starts a thread that checks the database and the schema version every interval_ms on its
 * own connection, so that /readyz answers at once and never waits behind request work. */
int health_start(const char *url, long connect_timeout_s, long interval_ms);
void health_stop(void);

void health_root(struct http_req *req);
void health_healthz(struct http_req *req);
void health_readyz(struct http_req *req);
void health_metrics(struct http_req *req);

#endif
