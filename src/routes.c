/* routes.c: every endpoint, its methods and its handlers, in one table. */
#include "routes.h"

#include "health.h"
#include "ingest.h"
#include "metrics.h"
#include "openapi.h"
#include "rates.h"
#include "regions.h"

#define GET_HEAD (HTTP_GET | HTTP_HEAD)

const struct http_route routes[] = {
    { .path = "/", .methods = GET_HEAD, .metric = ROUTE_ROOT, .on_request = health_root },
    { .path = "/rates",
      .methods = GET_HEAD,
      .metric = ROUTE_RATES,
      .on_request = rates_on_request },
    { .path = "/regions",
      .methods = GET_HEAD,
      .metric = ROUTE_REGIONS,
      .on_request = regions_on_request },
    { .path = "/ports",
      .methods = GET_HEAD,
      .metric = ROUTE_PORTS,
      .on_request = regions_ports_on_request },
    /* The one route that takes a body (http.c refuses a body anywhere else). */
    { .path = "/batches",
      .methods = HTTP_POST,
      .metric = ROUTE_BATCHES,
      .on_request = ingest_on_request,
      .on_body = ingest_on_body,
      .on_end = ingest_on_end,
      .on_free = ingest_on_free },
    { .path = "/batches/",
      .prefix = true,
      .methods = GET_HEAD | HTTP_DELETE,
      .metric = ROUTE_BATCH,
      .on_request = batches_on_request },
    /* Probes: on both listeners (HAProxy and Ansible check /readyz on the public port). */
    { .path = "/healthz",
      .methods = GET_HEAD,
      .metric = ROUTE_HEALTHZ,
      .admin = true,
      .on_request = health_healthz },
    { .path = "/readyz",
      .methods = GET_HEAD,
      .metric = ROUTE_READYZ,
      .admin = true,
      .on_request = health_readyz },
    /* Only on the admin listener when one is configured (RATES_ADMIN_LISTEN). */
    { .path = "/metrics",
      .methods = GET_HEAD,
      .metric = ROUTE_METRICS,
      .admin = true,
      .admin_only = true,
      .on_request = health_metrics },
    { .path = "/openapi.json",
      .methods = GET_HEAD,
      .metric = ROUTE_OTHER,
      .on_request = openapi_on_request },
    { .path = "/docs",
      .methods = GET_HEAD,
      .metric = ROUTE_OTHER,
      .on_request = openapi_docs_on_request },
    { .path = "/docs/",
      .prefix = true,
      .methods = GET_HEAD,
      .metric = ROUTE_OTHER,
      .on_request = openapi_docs_on_request },
};
const int routes_count = (int)(sizeof routes / sizeof routes[0]);
