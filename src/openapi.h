/* openapi.h: GET /openapi.json (the API's OpenAPI 3.1 document) and GET /docs (its reference page). */
#ifndef RATES_OPENAPI_H
#define RATES_OPENAPI_H

#include <stddef.h>

struct http_req;

/* Compiled in by tools/embed_api.sh from api/openapi.json, api/docs.html and Redoc's bundle;
 * each array ends with a NUL that *_len does not count. */
extern const unsigned char openapi_json[];
extern const size_t openapi_json_len;
extern const unsigned char openapi_docs_html[];
extern const size_t openapi_docs_html_len;
extern const unsigned char openapi_docs_js[];
extern const size_t openapi_docs_js_len;

void openapi_on_request(struct http_req *req);      /* /openapi.json */
void openapi_docs_on_request(struct http_req *req); /* /docs and /docs/<asset> */

#endif
