/* regions.h: the region tree for clients: GET /regions and GET /ports?region=slug. Expanding a
 * slug into its ports is region_ports() in the database (db/migrations/0006), shared with
 * /rates. */
#ifndef RATES_REGIONS_H
#define RATES_REGIONS_H

#include <stdbool.h>

struct http_req;

/* Longest slug or code looked up; a longer value cannot name anything. */
#define REGIONS_SLUG_MAX 256

/* Registers the prepared statements; call before the pool starts. */
void regions_init(void);
/* GET /regions: the tree as a flat list in depth-first order (docs/regions.md). */
void regions_on_request(struct http_req *req);
/* GET /ports[?region=slug]: every port, or the ports under a region at any depth. */
void regions_ports_on_request(struct http_req *req);

#endif
