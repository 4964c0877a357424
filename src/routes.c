/* routes.c: every endpoint, its methods and its handlers, in one table. */
#include "routes.h"

#include "health.h"
#include "ingest.h"
#include "metrics.h"
#include "openapi.h"
#include "rates.h"
#include "regions.h"

const struct http_route routes[] = {
    { "/", false, HTTP_GET | HTTP_HEAD, ROUTE_ROOT, false, health_root, NULL, NULL, NULL },
    { "/rates", false, HTTP_GET | HTTP_HEAD, ROUTE_RATES, false, rates_on_request, NULL, NULL,
      NULL },
    { "/regions", false, HTTP_GET | HTTP_HEAD, ROUTE_REGIONS, false, regions_on_request, NULL, NULL,
      NULL },
    { "/ports", false, HTTP_GET | HTTP_HEAD, ROUTE_PORTS, false, regions_ports_on_request, NULL,
      NULL, NULL },
    { "/batches", false, HTTP_POST, ROUTE_BATCHES, false, ingest_on_request, ingest_on_body,
      ingest_on_end, ingest_on_free },
    { "/batches/", true, HTTP_GET | HTTP_HEAD | HTTP_DELETE, ROUTE_BATCH, false, batches_on_request,
      NULL, NULL, NULL },
    { "/healthz", false, HTTP_GET | HTTP_HEAD, ROUTE_HEALTHZ, true, health_healthz, NULL, NULL,
      NULL },
    { "/readyz", false, HTTP_GET | HTTP_HEAD, ROUTE_READYZ, true, health_readyz, NULL, NULL, NULL },
    { "/metrics", false, HTTP_GET | HTTP_HEAD, ROUTE_METRICS, true, health_metrics, NULL, NULL,
      NULL },
    { "/openapi.json", false, HTTP_GET | HTTP_HEAD, ROUTE_OTHER, false, openapi_on_request, NULL,
      NULL, NULL },
    { "/docs", false, HTTP_GET | HTTP_HEAD, ROUTE_OTHER, false, openapi_docs_on_request, NULL, NULL,
      NULL },
    { "/docs/", true, HTTP_GET | HTTP_HEAD, ROUTE_OTHER, false, openapi_docs_on_request, NULL, NULL,
      NULL },
};
const int routes_count = (int)(sizeof routes / sizeof routes[0]);
