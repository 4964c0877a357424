/* ingest.h: POST /batches (streaming atomic batch ingestion) and GET/DELETE /batches/{id}.
 * See docs/ingest.md for the design; ingest_int.h for the state machine. */
#ifndef RATES_INGEST_H
#define RATES_INGEST_H

#include <stdbool.h>
#include <stddef.h>

struct http_req;

/* POST /batches */
void ingest_on_request(struct http_req *req);
void ingest_on_body(struct http_req *req, const char *data, size_t len);
void ingest_on_end(struct http_req *req);
void ingest_on_free(struct http_req *req, bool completed);

/* GET and DELETE /batches/{id} (the ledger; DELETE retracts a committed batch). */
void batches_on_request(struct http_req *req);

#endif
