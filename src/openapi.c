/* openapi.c: serves the compiled-in OpenAPI document and the static reference page (Redoc). */
#include "openapi.h"

#include <string.h>

#include "http.h"

/* The page and its script come from this server only; Redoc injects its styles (styled
 * components) and fetches /openapi.json; nothing else is allowed (no CDN, no fonts, no frames). */
static const char openapi_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

static void openapi_send(struct http_req *req, const char *type, const unsigned char *body,
                         size_t len)
{
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    http_respond(req, 200, type, (const char *)body, len); /* copied */
}

void openapi_on_request(struct http_req *req)
{
    openapi_send(req, "application/json", openapi_json, openapi_json_len);
}

void openapi_docs_on_request(struct http_req *req)
{
    if (strcmp(req->path, "/docs") == 0 || strcmp(req->path, "/docs/") == 0) {
        http_add_header(req, "Content-Security-Policy", openapi_csp);
        openapi_send(req, "text/html; charset=utf-8", openapi_docs_html, openapi_docs_html_len);
    } else if (strcmp(req->path, "/docs/redoc.standalone.js") == 0) {
        openapi_send(req, "text/javascript; charset=utf-8", openapi_docs_js, openapi_docs_js_len);
    } else {
        http_respond_error(req, 404, "Not found");
    }
}
