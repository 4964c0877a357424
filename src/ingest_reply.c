/* ingest_reply.c: the JSON answers of POST /batches and the one-line error summary. */
#include "ingest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"

#define INGEST_REPLY_MAX (256 * 1024)

static int ingest_reply_errors(struct dynbuf *d, const struct ingest *b)
{
    int rc = dynbuf_adds(d, ", \"errors\": [");
    for (size_t i = 0; rc == 0 && i < b->nerrors; i++) {
        const struct ingest_error *e = &b->errors[i];
        rc = dynbuf_printf(d, "%s{\"line\": %llu, \"field\": ", i ? ", " : "",
                           (unsigned long long)e->line);
        rc |= dynbuf_add_json_string(d, e->field, strlen(e->field));
        rc |= dynbuf_adds(d, ", \"message\": ");
        rc |= dynbuf_add_json_string(d, e->message, strlen(e->message));
        rc |= dynbuf_adds(d, "}");
    }
    rc |= dynbuf_printf(d, "], \"error_count\": %llu", (unsigned long long)b->error_total);
    return rc;
}

void ingest_reply(struct http_req *req, struct ingest *b)
{
    struct dynbuf d;
    dynbuf_init(&d, INGEST_REPLY_MAX);
    int rc;
    bool ok = b->status == 201;
    if (ok) {
        bool replay = b->outcome == BATCH_REPLAYED;
        long long id = replay ? (long long)b->replay_id : (long long)b->batch_id;
        rc = dynbuf_printf(&d,
                           "{\"batch_id\": %lld, \"rows\": %llu, \"bytes\": %llu, "
                           "\"duration_ms\": %.3f, \"replayed\": %s}",
                           id, (unsigned long long)(replay ? b->replay_rows : b->rows),
                           (unsigned long long)(replay ? b->replay_bytes : b->bytes),
                           replay ? b->replay_duration_ms : b->duration_ms,
                           replay ? "true" : "false");
        char loc[48];
        snprintf(loc, sizeof loc, "/batches/%lld", id);
        http_add_header(req, "Location", loc);
    } else {
        rc = dynbuf_adds(&d, "{\"error\": ");
        rc |= dynbuf_add_json_string(&d, b->message, strlen(b->message));
        if (b->code) {
            rc |= dynbuf_adds(&d, ", \"code\": ");
            rc |= dynbuf_add_json_string(&d, b->code, strlen(b->code));
        }
        if (b->replay_retracted && b->replay_id)
            rc |= dynbuf_printf(&d, ", \"batch_id\": %lld", (long long)b->replay_id);
        else if (b->batch_id && b->record)
            rc |= dynbuf_printf(&d, ", \"batch_id\": %lld", (long long)b->batch_id);
        if (b->error_total)
            rc |= ingest_reply_errors(&d, b);
        rc |= dynbuf_adds(&d, "}");
        if (b->retry_after)
            http_add_header(req, "Retry-After", "1");
        snprintf(req->note, sizeof req->note, "batch refused: %.200s", b->message);
    }
    if (rc != 0) {
        dynbuf_free(&d);
        http_respond_error(req, 500, "Response too large");
        return;
    }
    size_t len;
    char *body = dynbuf_take(&d, &len);
    http_respond_owned(req, ok ? 201 : b->status, "application/json", body, len);
}

void ingest_error_summary(const struct ingest *b, char *out, size_t cap)
{
    if (b->nerrors > 0)
        snprintf(out, cap, "%s (%llu errors; first at line %llu, %s: %s)", b->message,
                 (unsigned long long)b->error_total, (unsigned long long)b->errors[0].line,
                 b->errors[0].field, b->errors[0].message);
    else
        snprintf(out, cap, "%s", b->message[0] ? b->message : "aborted");
}
