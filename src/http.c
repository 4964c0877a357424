/* http.c: libmicrohttpd daemons, the request life cycle, routing and responses.
 * The threading model is explained in http.h. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "acceptor.h"
#include "db.h"
#include "db_route.h"
#include "statemove.h"
#include "deadline.h"
#include "dynbuf.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "mhdlog.h"
#include "reqid.h"
#include "workers.h"

#define HTTP_URI_MAX 8192
#include "rates_limits.h" /* HTTP_MEMORY_LIMIT: per connection, bounds request line and headers */
#define HTTP_CONN_HEADROOM 16 /* connections above the soft limit that still get a 503 */
/* An upload whose client sends nothing after its body deadline is closed by the sweeper this
 * much later: a chunk arriving meanwhile gets the 408 answer first. */
#define HTTP_BODY_GRACE_NS (1000ull * 1000000ull)

struct http_server {
    struct MHD_Daemon *pub;
    struct MHD_Daemon *admin;
    int pub_fd, admin_fd;
    struct workers *lanes[LANE_COUNT]; /* owned: read, batch, commit */
    struct db_pool *pool, *batch_pool, *read_pool;
    long pool_wait_ms;
    struct deadlines *deadlines; /* owned */
    uint64_t head_ns, send_ns, idle_ns;
    const struct http_route *routes;
    int route_count;
    void (*on_write)(void);
    void (*on_commit)(uint64_t rows);
    atomic_bool draining; /* readiness off */
    atomic_bool closing;  /* public responses carry Connection: close */
    atomic_long inflight;
    atomic_long pub_conns; /* open connections on the public listener */
    long max_connections;  /* soft limit: beyond it, a 503 and the connection closes */
    struct acceptor *pub_acceptor, *admin_acceptor; /* owned: MHD never sees the listeners */
};

/* The admin daemon's cls points here so the handler knows which listener it serves. */
struct http_listener {
    struct http_server *srv;
    bool admin;
};
static struct http_listener listener_pub, listener_admin;

static const char *const http_state_names[HTTP_REQ_STATE_COUNT] = {
    [HTTP_REQ_ACCEPTED] = "ACCEPTED",   [HTTP_REQ_ROUTED] = "ROUTED",
    [HTTP_REQ_REQUESTED] = "REQUESTED", [HTTP_REQ_BODY_ENDED] = "BODY_ENDED",
    [HTTP_REQ_DEFERRED] = "DEFERRED",   [HTTP_REQ_RESPONDED] = "RESPONDED",
};

/* Allowed moves of the request life cycle (enum http_req_state), from row to column. */
static const bool http_moves[HTTP_REQ_STATE_COUNT][HTTP_REQ_STATE_COUNT] = {
    [HTTP_REQ_ACCEPTED] = { [HTTP_REQ_ROUTED] = true, [HTTP_REQ_RESPONDED] = true },
    [HTTP_REQ_ROUTED] = { [HTTP_REQ_REQUESTED] = true,
                          [HTTP_REQ_DEFERRED] = true,
                          [HTTP_REQ_RESPONDED] = true },
    [HTTP_REQ_REQUESTED] = { [HTTP_REQ_DEFERRED] = true,
                             [HTTP_REQ_BODY_ENDED] = true,
                             [HTTP_REQ_RESPONDED] = true },
    [HTTP_REQ_BODY_ENDED] = { [HTTP_REQ_DEFERRED] = true, [HTTP_REQ_RESPONDED] = true },
    [HTTP_REQ_DEFERRED] = { [HTTP_REQ_ROUTED] = true,
                            [HTTP_REQ_REQUESTED] = true,
                            [HTTP_REQ_BODY_ENDED] = true },
    [HTTP_REQ_RESPONDED] = { [HTTP_REQ_RESPONDED] = false },
};

bool http_req_set_state(struct http_req *req, enum http_req_state to)
{
    enum http_req_state from = req->state_;
    if (to >= HTTP_REQ_STATE_COUNT || !http_moves[from][to]) {
        statemove_refuse(MACHINE_HTTP, http_state_names[from],
                         to < HTTP_REQ_STATE_COUNT ? http_state_names[to] : "(out of range)",
                         req->request_id);
        return false;
    }
    req->state_ = to;
    return true;
}

void *http_state_new(struct http_req *req, size_t size)
{
    void *state = calloc(1, size);
    if (!state) {
        http_respond_error(req, 500, "Out of memory");
        return NULL;
    }
    req->state = state;
    req->state_plain = true;
    return state;
}

void http_add_header(struct http_req *req, const char *name, const char *value)
{
    for (int i = 0; i < req->hdr_count; i++) {
        if (strcasecmp(req->hdr_name[i], name) == 0) {
            char *v = strdup(value);
            if (v) {
                free(req->hdr_value[i]);
                req->hdr_value[i] = v;
            }
            return;
        }
    }
    if (req->hdr_count >= HTTP_MAX_HEADERS)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    req->hdr_name[req->hdr_count] = n;
    req->hdr_value[req->hdr_count] = v;
    req->hdr_count++;
}

const char *http_header(struct http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void http_respond_owned(struct http_req *req, int status, const char *content_type, char *body,
                        size_t len)
{
    free(req->body);
    req->status = status;
    req->content_type = content_type;
    req->body = body;
    req->body_len = body ? len : 0;
    req->has_response = true;
}

void http_respond(struct http_req *req, int status, const char *content_type, const char *body,
                  size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, body, len);
        copy[len] = '\0';
    }
    http_respond_owned(req, copy ? status : 500, content_type, copy, copy ? len : 0);
}

void http_respond_error(struct http_req *req, int status, const char *message)
{
    struct dynbuf b;
    dynbuf_init(&b, 4096);
    if (dynbuf_adds(&b, "{\"error\": ") != 0 ||
        dynbuf_add_json_string(&b, message, strlen(message)) != 0 || dynbuf_adds(&b, "}") != 0) {
        dynbuf_free(&b);
        http_respond(req, status, "application/json", "{\"error\": \"error\"}", 18);
        return;
    }
    size_t len;
    char *body = dynbuf_take(&b, &len);
    http_respond_owned(req, status, "application/json", body, len);
    if (!req->note[0] && status >= 400)
        str_copy(req->note, sizeof req->note, message);
}

static void http_request_id(struct http_req *req)
{
    const char *given = http_header(req, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n < sizeof req->request_id;
        for (size_t i = 0; ok && i < n; i++) {
            char c = given[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '-' || c == '_' || c == '.' || c == ':';
        }
        if (ok) {
            memcpy(req->request_id, given, n + 1);
            return;
        }
    }
    reqid_make(req->request_id, sizeof req->request_id);
}

static unsigned http_method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return HTTP_GET;
    if (strcmp(m, "HEAD") == 0)
        return HTTP_HEAD;
    if (strcmp(m, "POST") == 0)
        return HTTP_POST;
    if (strcmp(m, "DELETE") == 0)
        return HTTP_DELETE;
    if (strcmp(m, "PUT") == 0)
        return HTTP_PUT;
    return 0;
}

static void http_allow_header(struct http_req *req, unsigned methods)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        { HTTP_GET, "GET" }, { HTTP_HEAD, "HEAD" },     { HTTP_POST, "POST" },
        { HTTP_PUT, "PUT" }, { HTTP_DELETE, "DELETE" },
    };
    char allow[64] = "";
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        if (!(methods & names[i].bit))
            continue;
        if (allow[0])
            strcat(allow, ", ");
        strcat(allow, names[i].name);
    }
    http_add_header(req, "Allow", allow);
}

static void http_route_find(struct http_req *req)
{
    struct http_server *srv = req->srv;
    unsigned allowed = 0;
    const struct http_route *match = NULL;
    for (int i = 0; i < srv->route_count; i++) {
        const struct http_route *r = &srv->routes[i];
        if (req->admin && !r->admin)
            continue;
        if (!req->admin && r->admin_only && srv->admin_fd >= 0)
            continue;
        bool hit = r->prefix ? strncmp(req->path, r->path, strlen(r->path)) == 0 &&
                                   req->path[strlen(r->path)] != '\0'
                             : strcmp(req->path, r->path) == 0;
        if (!hit)
            continue;
        allowed |= r->methods;
        if (r->methods & req->method_bit) {
            match = r;
            break;
        }
    }
    if (match) {
        req->route = match;
        return;
    }
    if (allowed) {
        http_allow_header(req, allowed);
        http_respond_error(req, 405, "Method not allowed");
    } else {
        http_respond_error(req, 404, "Not found");
    }
}

static int http_metric_of(const struct http_req *req)
{
    return req->route ? req->route->metric : ROUTE_OTHER;
}

static struct deadline_conn *http_deadline_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result http_queue(struct http_req *req)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        req->body_len, req->body ? req->body : (void *)(uintptr_t) "",
        req->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    /* A committed write: the cache forgets before the client can read after it. */
    if (req->srv->on_write && (req->method_bit & (HTTP_POST | HTTP_PUT | HTTP_DELETE)) &&
        req->status >= 200 && req->status < 300)
        req->srv->on_write();
    req->bytes_sent = req->body_len;
    req->body = NULL; /* now owned by the response */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->content_type ? req->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    for (int i = 0; i < req->hdr_count; i++)
        MHD_add_response_header(resp, req->hdr_name[i], req->hdr_value[i]);
    if (req->db_ns || req->model_ns) {
        char timing[64];
        snprintf(timing, sizeof timing, "%s;dur=%.3f", req->db_ns ? "db" : "model",
                 (double)(req->db_ns ? req->db_ns : req->model_ns) / 1e6);
        MHD_add_response_header(resp, "Server-Timing", timing);
    }
    if (atomic_load(&req->srv->closing) && !req->admin)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    deadline_conn_set(http_deadline_of(req->conn), DEADLINE_SEND, req->srv->send_ns);
    http_req_set_state(req, HTTP_REQ_RESPONDED);
    return rc;
}

/* What a job asks the database layer for (src/db_route.h): the lane and the read's flags
 * decide; the choice of pool, the LSN check and the fallback are db_route's. */
static int http_acquire(struct http_req *req, struct db_route_got *got, char *err, size_t errcap)
{
    struct http_server *srv = req->srv;
    const struct db_route route = { .primary = srv->pool,
                                    .batch = srv->batch_pool,
                                    .replicas = srv->read_pool,
                                    .wait_ms = srv->pool_wait_ms };
    enum db_route_want want = DB_ROUTE_PRIMARY;
    if (req->work_flags & (WORK_LANE_BATCH | WORK_LANE_COMMIT))
        want = DB_ROUTE_BATCH;
    else if (req->work_flags & WORK_DB_READ)
        want = DB_ROUTE_REPLICA;
    else if (req->work_flags & WORK_DB_PREFER)
        want = DB_ROUTE_PREFER;
    int rc = db_route_acquire(&route, want, req->min_lsn, got, err, errcap);
    req->fell_back = got->fell_back;
    return rc;
}

/* On a lane thread: the request's work, with a pooled connection when asked for. */
static void http_job_run(struct workers_job *job)
{
    struct http_req *req =
        (struct http_req *)(void *)((char *)job - offsetof(struct http_req, job));
    struct db_route_got got = { 0 };
    if (req->work_flags & (WORK_DB | WORK_DB_READ)) {
        char err[512];
        int rc = http_acquire(req, &got, err, sizeof err);
        if (rc != DB_OK) {
            str_copy(req->note, sizeof req->note, err);
            http_add_header(req, "Retry-After", "1");
            http_respond_error(req, 503,
                               rc == DB_ERR_TIMEOUT ? "Service overloaded, retry later"
                                                    : "Database unavailable");
            return;
        }
    }
    req->work(req, got.conn);
    if (got.conn)
        db_pool_release(got.pool, got.conn);
}

/* On the lane thread, after the run: the connection resumes (MHD then calls http_access on
 * the HTTP thread, which moves the state). req belongs to the HTTP side from here on. */
static void http_job_done(struct workers_job *job)
{
    struct http_req *req =
        (struct http_req *)(void *)((char *)job - offsetof(struct http_req, job));
    if (req->srv->on_commit && (req->method_bit & (HTTP_POST | HTTP_PUT | HTTP_DELETE)) &&
        req->status >= 200 && req->status < 300)
        req->srv->on_commit(req->write_rows);
    /* Read before publishing: once job_done is seen, the HTTP thread may finish and free req
     * (a connection it ends meanwhile). The MHD connection outlives a suspended request. */
    struct MHD_Connection *conn = req->conn;
    atomic_store_explicit(&req->job_done, true, memory_order_release);
    MHD_resume_connection(conn);
}

static int http_lane_of(unsigned flags)
{
    if (flags & WORK_LANE_COMMIT)
        return LANE_COMMIT;
    if (flags & WORK_LANE_BATCH)
        return LANE_BATCH;
    return LANE_READ;
}

int http_defer(struct http_req *req, http_work_fn fn, unsigned flags)
{
    req->work = fn;
    req->work_flags = flags;
    if (flags & WORK_DB_READ) {
        /* Read-your-writes (docs/high-availability.md): decided here, on the HTTP thread. */
        const char *consistency = http_header(req, "Rates-Consistency");
        const char *lsn = http_header(req, "Rates-Min-LSN");
        if (consistency && strcasecmp(consistency, "primary") == 0)
            req->work_flags = (flags & ~(unsigned)WORK_DB_READ) | WORK_DB;
        else if (lsn)
            str_copy(req->min_lsn, sizeof req->min_lsn, lsn);
    }
    int lane = http_lane_of(flags);
    enum http_req_state from = req->state_;
    if (!http_req_set_state(req, HTTP_REQ_DEFERRED)) {
        http_respond_error(req, 500, "Internal error: request deferred twice");
        return -1;
    }
    req->resume_to = from;
    atomic_store_explicit(&req->job_done, false, memory_order_relaxed);
    req->job.run = http_job_run;
    req->job.done = http_job_done;
    /* Suspend before queueing, so that a fast job's resume always follows the suspend. */
    MHD_suspend_connection(req->conn);
    if (workers_submit(req->srv->lanes[lane], &req->job) != 0) {
        MHD_resume_connection(req->conn);
        http_req_set_state(req, from);
        metrics_rejected_overload(lane);
        http_add_header(req, "Retry-After", "1");
        http_respond_error(req, 503, "Service overloaded, retry later");
        return -1;
    }
    return 0;
}

/* The headers that frame the body, as http_framing_each counts them. */
struct http_framing {
    int content_length;    /* Content-Length headers */
    int transfer_encoding; /* Transfer-Encoding headers */
    bool chunked;          /* the last Transfer-Encoding is exactly "chunked" */
    bool body;             /* a body is announced: Content-Length > 0, or Transfer-Encoding */
    bool folded;           /* an obs-fold line was glued on (see below) */
};

static enum MHD_Result http_framing_each(void *cls, enum MHD_ValueKind kind, const char *key,
                                         size_t key_size, const char *value, size_t value_size)
{
    struct http_framing *f = cls;
    (void)kind;
    (void)value_size;
    if (!key || !value)
        return MHD_YES;
    if (strcasecmp(key, "Content-Length") == 0) {
        f->content_length++;
        f->body |= strtoull(value, NULL, 10) > 0;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->transfer_encoding++;
        f->chunked = strcasecmp(value, "chunked") == 0;
        f->body = true;
    }
    /* libmicrohttpd 0.9.75 parses each header line in place, the value after the name on the
     * same line; for an obs-fold line it copies the NAME elsewhere and appends the
     * continuation to it ("X-A: a\r\n b" reads as "X-Ab: a"), so the value no longer follows
     * its name. Only addresses are compared; nothing outside the two strings is read.
     * (Checked by tests/integration/httpd/test_request_bounds.py: a library that copies
     * headers would refuse every request there.) */
    uintptr_t name_end = (uintptr_t)key + key_size, at = (uintptr_t)value;
    if (at <= name_end || at - name_end > HTTP_MEMORY_LIMIT)
        f->folded = true;
    return MHD_YES;
}

/* Why the request's framing is refused (400), or NULL; f gets the counts. */
static const char *http_framing_check(struct http_req *req, struct http_framing *f)
{
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, http_framing_each, f);
    if (f->folded)
        return "Header lines continued on the next line (obs-fold) are not accepted";
    if (f->content_length > 0 && f->transfer_encoding > 0)
        return "Content-Length together with Transfer-Encoding is not accepted";
    if (f->content_length > 1)
        return "More than one Content-Length is not accepted";
    if (f->transfer_encoding > 1 || (f->transfer_encoding == 1 && !f->chunked))
        return "Transfer-Encoding must be chunked, once";
    return NULL;
}

/* Answers before the body is read, and closes the connection (MHD would also close it after
 * an early answer; the header makes it so when there is no body either). */
static enum MHD_Result http_refuse_close(struct http_req *req, int status, const char *message)
{
    if (status)
        http_respond_error(req, status, message);
    http_add_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
    req->respond_early = true;
    return http_queue(req);
}

/* Writes req's response on the socket and ends the connection (http_abort, the body
 * deadline): MHD refuses to queue one before the body has ended. Non-blocking and best
 * effort: the answer is a few hundred bytes into an idle socket's empty send buffer. */
static enum MHD_Result http_answer_now(struct http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char head[1024];
    const char *reason = MHD_get_reason_phrase_for((unsigned)req->status);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: %s\r\n"
                     "X-Request-Id: %s\r\nContent-Length: %zu\r\n",
                     req->status, reason && *reason ? reason : "Error",
                     req->content_type ? req->content_type : "application/json", req->request_id,
                     req->body_len);
    for (int i = 0; i < req->hdr_count && n > 0 && (size_t)n < sizeof head; i++) {
        if (strcasecmp(req->hdr_name[i], MHD_HTTP_HEADER_CONNECTION) != 0)
            n += snprintf(head + n, sizeof head - (size_t)n, "%s: %s\r\n", req->hdr_name[i],
                          req->hdr_value[i]);
    }
    if (ci && n > 0 && (size_t)n + 2 < sizeof head) {
        memcpy(head + n, "\r\n", 2);
        n += 2;
        struct iovec iov[2] = { { .iov_base = head, .iov_len = (size_t)n },
                                { .iov_base = req->body, .iov_len = req->body_len } };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = req->body ? 2 : 1 };
        ssize_t w = sendmsg(ci->connect_fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        req->bytes_sent = w > n ? (uint64_t)(w - n) : 0;
        shutdown(ci->connect_fd, SHUT_WR); /* the FIN right behind the answer */
    }
    http_req_set_state(req, HTTP_REQ_RESPONDED);
    return MHD_NO; /* MHD closes the connection; the route's on_free sees completed=false */
}

void http_body_deadline(struct http_req *req, uint64_t limit_ns)
{
    req->body_due_ns = clock_mono_ns() + limit_ns;
    deadline_conn_set(http_deadline_of(req->conn), DEADLINE_BODY, limit_ns + HTTP_BODY_GRACE_NS);
}

void http_abort(struct http_req *req)
{
    if (!req->has_response)
        http_respond_error(req, 500, "Internal error");
    req->abort_body = true;
}

static void *http_uri_log(void *cls, const char *uri, struct MHD_Connection *con)
{
    struct http_listener *l = cls;
    struct http_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->srv = l->srv;
    req->admin = l->admin;
    req->conn = con;
    req->t_start_ns = clock_mono_ns();
    size_t n = strnlen(uri, HTTP_URI_MAX + 1);
    if (n > HTTP_URI_MAX) {
        n = HTTP_URI_MAX;
        req->uri_too_long = true;
    }
    req->uri = malloc(n + 1);
    if (req->uri) {
        memcpy(req->uri, uri, n);
        req->uri[n] = '\0';
        char *q = strchr(req->uri, '?');
        req->query = q ? q + 1 : NULL;
    }
    atomic_fetch_add(&req->srv->inflight, 1);
    metrics_inflight_add(1);
    return req;
}

/* False while req waits for its lane job. Once the job is done (the connection resumed),
 * the state moves back to where it was deferred from. */
static bool http_resumed(struct http_req *req)
{
    if (req->state_ != HTTP_REQ_DEFERRED)
        return true;
    if (!atomic_load_explicit(&req->job_done, memory_order_acquire))
        return false;
    http_req_set_state(req, req->resume_to);
    return true;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *con, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct http_req *req = *con_cls;
    if (!req || !req->uri)
        return MHD_NO;
    /* MHD may call again before a deferred job is done (data it still holds): consume nothing,
     * the job owns req. */
    if (!http_resumed(req))
        return MHD_YES;
    if (req->state_ == HTTP_REQ_RESPONDED)
        return MHD_YES;
    if (req->state_ == HTTP_REQ_ACCEPTED) {
        req->method = method;
        req->path = url;
        req->method_bit = http_method_bit(method);
        http_request_id(req);
        if (req->uri_too_long) {
            http_respond_error(req, 414, "URI too long (8192 bytes at most)");
            req->respond_early = true;
            return http_queue(req);
        }
        if (!req->admin && atomic_load(&req->srv->pub_conns) > req->srv->max_connections) {
            /* A clear refusal, then the connection closes and frees its slot. */
            metrics_connection_refused();
            http_add_header(req, "Retry-After", "1");
            http_add_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
            http_respond_error(req, 503, "Too many connections, retry later");
            req->respond_early = true;
            return http_queue(req);
        }
        struct http_framing framing = { 0 };
        const char *bad = http_framing_check(req, &framing);
        if (bad)
            return http_refuse_close(req, 400, bad);
        http_req_set_state(req, HTTP_REQ_ROUTED);
        /* The head is in: an upload route sets its body deadline, lane work has none. */
        deadline_conn_set(http_deadline_of(con), DEADLINE_NONE, 0);
        http_route_find(req);
        /* Nothing reads a body sent where none is taken: refuse it now (keeping a 404 or 405
         * already decided) rather than let it trickle in, each byte resetting the idle timer. */
        if (framing.body && !(req->route && req->route->on_body))
            return http_refuse_close(req, req->has_response ? 0 : 413,
                                     "This request takes no body");
        /* Routes that take a body decide at once (auth, limits, 100-continue); the others
         * run on the next call, once MHD has the whole request, so that keep-alive holds. */
        if (req->route && req->route->on_body && req->route->on_request) {
            http_req_set_state(req, HTTP_REQ_REQUESTED);
            req->route->on_request(req);
        }
        if (req->state_ == HTTP_REQ_DEFERRED)
            return MHD_YES; /* the job owns req now: read nothing it may write */
        /* Answering before the body is read makes MHD close the connection: only do it when
         * a route asks to refuse a body it will not read (413, 401, 415 before upload). */
        if (req->has_response && req->respond_early)
            return http_queue(req);
        return MHD_YES;
    }
    if (req->state_ == HTTP_REQ_ROUTED) {
        http_req_set_state(req, HTTP_REQ_REQUESTED);
        if (!req->has_response && req->route && req->route->on_request)
            req->route->on_request(req);
        if (req->state_ == HTTP_REQ_DEFERRED)
            return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->state_ == HTTP_REQ_REQUESTED && !req->discard_body && !req->has_response &&
            req->route && req->route->on_body)
            req->route->on_body(req, upload_data, n);
        if (req->state_ == HTTP_REQ_DEFERRED)
            return MHD_YES;
        if (req->abort_body)
            return http_answer_now(req);
        if (req->body_due_ns && clock_mono_ns() > req->body_due_ns) {
            /* Late (a route that checks its own deadline has answered above); keep an
             * answer already decided, whose body is being drained. */
            req->body_late = true;
            if (!req->has_response)
                http_respond_error(req, 408, "The body took longer than its deadline");
            return http_answer_now(req);
        }
        return MHD_YES;
    }
    if (req->state_ == HTTP_REQ_REQUESTED) {
        http_req_set_state(req, HTTP_REQ_BODY_ENDED);
        if (req->body_due_ns) { /* the body is in: the commit is lane work, with no deadline */
            req->body_due_ns = 0;
            deadline_conn_set(http_deadline_of(con), DEADLINE_NONE, 0);
        }
        if (!req->has_response && req->route && req->route->on_end)
            req->route->on_end(req);
        if (req->state_ == HTTP_REQ_DEFERRED)
            return MHD_YES;
    }
    if (req->has_response)
        return http_queue(req);
    /* A route that neither answered nor deferred: a programming error; never hang. */
    http_respond_error(req, 500, "Internal error: no response");
    return http_queue(req);
}

static void http_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    /* Keep-alive: the next request's head must come within the idle timeout + the head's. */
    if (ok)
        deadline_conn_set(http_deadline_of(con), DEADLINE_HEAD,
                          req->srv->idle_ns + req->srv->head_ns);
    if (req->route && req->route->on_free)
        req->route->on_free(req, ok && req->state_ == HTTP_REQ_RESPONDED);
    if (req->state_plain)
        free(req->state);
    uint64_t dur = clock_mono_ns() - req->t_start_ns;
    if (req->state_ != HTTP_REQ_ACCEPTED) {
        int status = req->state_ == HTTP_REQ_RESPONDED ? req->status : 499;
        metrics_request_done(http_metric_of(req), status, dur);
        struct log_request_line line = {
            .request_id = req->request_id,
            .method = req->method,
            .path = req->path,
            .status = status,
            .bytes = req->bytes_sent,
            .duration_ms = (double)dur / 1e6,
            .db_ms = (double)req->db_ns / 1e6,
            .note = req->note[0] ? req->note
                                 : (ok ? NULL
                                       : "connection closed before the "
                                         "response was sent"),
        };
        if (req->route != NULL || req->status != 200)
            log_request(&line);
    }
    atomic_fetch_sub(&req->srv->inflight, 1);
    metrics_inflight_add(-1);
    free(req->body);
    for (int i = 0; i < req->hdr_count; i++) {
        free(req->hdr_name[i]);
        free(req->hdr_value[i]);
    }
    free(req->uri);
    free(req);
}

/* Counts open connections (the soft limit and the graceful stop need the number). */
static void http_conn_notify(void *cls, struct MHD_Connection *con, void **socket_ctx,
                             enum MHD_ConnectionNotificationCode code)
{
    struct http_listener *l = cls;
    long d = code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        /* Responses are written whole; never let Nagle hold back their last segment. */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        int one = 1;
        if (ci) {
            setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            *socket_ctx = deadline_conn_open(l->srv->deadlines, ci->connect_fd, l->srv->head_ns);
        }
    } else {
        /* Before MHD closes the fd: the sweeper never shuts down a reused one. */
        deadline_conn_close(*socket_ctx);
        *socket_ctx = NULL;
    }
    if (!l->admin)
        atomic_fetch_add(&l->srv->pub_conns, d);
    metrics_connections_add(l->admin, (int)d);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    /* Requests MHD refuses itself never reach a route: count them here (src/mhdlog.h). */
    int status = mhdlog_refusal_status(msg);
    if (status)
        metrics_request_done(ROUTE_OTHER, status, 0);
    log_write(LOG_LVL_DEBUG, NULL, "http: %s", msg);
}

static struct MHD_Daemon *http_daemon(struct http_listener *l, long threads,
                                      const struct http_server_settings *s)
{
    /* No listener in MHD: src/acceptor.c accepts and adds (acceptor.h says why); MHD_USE_ITC
     * wakes the daemon thread for each added connection.
     * poll(2), not epoll: 0.9.75's epoll loop drains the ready list in rounds of 128 events
     * and waits again, with the full timeout, whenever a round was full. When the round that
     * consumed the wake-up of an added (or resumed) connection held exactly 128 events, the
     * next wait sleeps with that connection unserved until another of the thread's sockets
     * stirs or a timeout falls due: measured, a /healthz from another address waited 3 s
     * behind 127 silent slow heads in 7 of 20 trials, none of 60 with poll
     * (test_slow_clients.py). poll costs 2-3 % of req/s at 64 and 250 connections. */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* The hard limit (MHD closes at accept) sits above the soft one (a 503 JSON answer). */
    long hard = s->max_connections + s->max_connections / 8 + HTTP_CONN_HEADROOM;
    struct MHD_OptionItem o[16];
    int n = 0;
    if (!l->admin && s->max_connections_per_ip > 0)
        o[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                          s->max_connections_per_ip, NULL };
    if (threads > 1) /* MHD warns about a pool of one */
        o[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };
    o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, hard, NULL };
    o[n++] =
        (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, s->connection_timeout_s, NULL };
    o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_MEMORY_LIMIT, NULL };
    o[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    /* The logger first, so that MHD's complaints about later options reach it. */
    return MHD_start_daemon(flags, 0, NULL, NULL, http_access, l, MHD_OPTION_EXTERNAL_LOGGER,
                            http_mhd_log, NULL, MHD_OPTION_ARRAY, o, MHD_OPTION_URI_LOG_CALLBACK,
                            http_uri_log, l, MHD_OPTION_NOTIFY_COMPLETED, http_completed, l,
                            MHD_OPTION_NOTIFY_CONNECTION, http_conn_notify, l, MHD_OPTION_END);
}

struct http_server *http_server_start(const struct http_server_settings *s, char *err,
                                      size_t errcap)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    srv->pub_fd = srv->admin_fd = -1;
    srv->pool = s->pool;
    srv->batch_pool = s->batch_pool ? s->batch_pool : s->pool;
    srv->read_pool = s->read_pool ? s->read_pool : s->pool;
    srv->pool_wait_ms = s->pool_wait_ms;
    srv->head_ns = (uint64_t)s->header_timeout_s * 1000000000ull;
    srv->send_ns = (uint64_t)s->send_timeout_s * 1000000000ull;
    srv->idle_ns = (uint64_t)s->connection_timeout_s * 1000000000ull;
    srv->deadlines = deadlines_start();
    if (!srv->deadlines) {
        snprintf(err, errcap, "cannot start the deadline sweeper");
        goto fail;
    }
    srv->routes = s->routes;
    srv->route_count = s->route_count;
    srv->on_write = s->on_write;
    srv->on_commit = s->on_commit;
    srv->max_connections = s->max_connections;
    srv->pub_fd = s->listen_fd >= 0 ? s->listen_fd : listen_open(s->listen, err, errcap);
    if (srv->pub_fd < 0)
        goto fail;
    srv->admin_fd = -1;
    if (s->admin_fd >= 0)
        srv->admin_fd = s->admin_fd;
    else if (s->admin_listen && *s->admin_listen) {
        srv->admin_fd = listen_open(s->admin_listen, err, errcap);
        if (srv->admin_fd < 0)
            goto fail;
    }
    const long threads[LANE_COUNT] = { [LANE_READ] = s->workers,
                                       [LANE_BATCH] = s->batch_workers > 0 ? s->batch_workers : 1,
                                       [LANE_COMMIT] =
                                           s->commit_workers > 0 ? s->commit_workers : 1 };
    for (int l = 0; l < LANE_COUNT; l++) {
        srv->lanes[l] = workers_start(l, threads[l], s->queue_max);
        if (!srv->lanes[l]) {
            snprintf(err, errcap, "cannot start the %s lane's workers", metrics_lane_name(l));
            goto fail;
        }
    }
    listener_pub.srv = srv;
    listener_pub.admin = false;
    srv->pub = http_daemon(&listener_pub, s->http_threads, s);
    if (!srv->pub) {
        snprintf(err, errcap, "cannot start the HTTP server on %s", s->listen);
        goto fail;
    }
    if (srv->admin_fd >= 0) {
        listener_admin.srv = srv;
        listener_admin.admin = true;
        srv->admin = http_daemon(&listener_admin, 1, s);
        if (!srv->admin) {
            snprintf(err, errcap, "cannot start the admin listener on %s", s->admin_listen);
            goto fail;
        }
    }
    /* Accepting starts last: every daemon and lane is up by the first connection. */
    srv->pub_acceptor = acceptor_start(srv->pub_fd, srv->pub, err, errcap);
    if (!srv->pub_acceptor)
        goto fail;
    if (srv->admin) {
        srv->admin_acceptor = acceptor_start(srv->admin_fd, srv->admin, err, errcap);
        if (!srv->admin_acceptor)
            goto fail;
    }
    return srv;
fail:
    acceptor_stop(srv->pub_acceptor);
    if (srv->admin)
        MHD_stop_daemon(srv->admin);
    if (srv->pub)
        MHD_stop_daemon(srv->pub);
    for (int l = 0; l < LANE_COUNT; l++)
        workers_free(srv->lanes[l]);
    deadlines_free(srv->deadlines);
    if (srv->pub_fd >= 0 && s->listen_fd < 0)
        close(srv->pub_fd);
    if (srv->admin_fd >= 0 && s->admin_fd < 0)
        close(srv->admin_fd);
    free(srv);
    return NULL;
}

void http_server_set_draining(struct http_server *srv)
{
    atomic_store(&srv->draining, true);
    atomic_store(&srv->closing, true);
}

void http_server_set_closing(struct http_server *srv)
{
    atomic_store(&srv->closing, true);
}

long http_server_connections(const struct http_server *srv)
{
    return atomic_load(&srv->pub_conns);
}

int http_server_admin_fd(const struct http_server *srv)
{
    return srv->admin_fd;
}

struct http_detached {
    struct workers_job job; /* first: the job is the allocation */
    void (*fn)(void *arg);
    void *arg;
};

static void http_detached_run(struct workers_job *job)
{
    struct http_detached *d = (struct http_detached *)(void *)job;
    d->fn(d->arg);
}

static void http_detached_done(struct workers_job *job)
{
    free(job);
}

int http_server_batch_job(struct http_server *srv, void (*fn)(void *arg), void *arg)
{
    struct http_detached *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->job.run = http_detached_run;
    d->job.done = http_detached_done;
    d->fn = fn;
    d->arg = arg;
    if (workers_submit(srv->lanes[LANE_BATCH], &d->job) != 0) {
        free(d);
        return -1;
    }
    return 0;
}

bool http_server_draining(const struct http_server *srv)
{
    return atomic_load(&srv->draining);
}

/* Joins the public acceptor, then closes the listener: with no process left holding it
 * (an upgrade's child holds its own), the kernel refuses new connections at once. */
void http_server_stop_accepting(struct http_server *srv)
{
    if (!srv->pub_acceptor)
        return;
    acceptor_stop(srv->pub_acceptor);
    srv->pub_acceptor = NULL;
    close(srv->pub_fd);
    srv->pub_fd = -1;
}

int http_server_listen_fd(const struct http_server *srv)
{
    return srv->pub_fd;
}

long http_server_inflight(const struct http_server *srv)
{
    return atomic_load(&srv->inflight);
}

void http_server_stop(struct http_server *srv)
{
    /* 1. Neither listener accepts any more (the public one may have stopped already). */
    http_server_stop_accepting(srv);
    if (srv->admin_acceptor) {
        acceptor_stop(srv->admin_acceptor);
        srv->admin_acceptor = NULL;
        close(srv->admin_fd);
        srv->admin_fd = -1;
    }
    /* 2. The lanes refuse new jobs (a late request gets 503, the daemons still run to send
     * it) and finish the queued ones, which resume their connections. */
    for (int l = 0; l < LANE_COUNT; l++)
        workers_stop(srv->lanes[l]);
    /* 3. Nothing is suspended now: the daemons close what is left (routes roll back). */
    if (srv->admin)
        MHD_stop_daemon(srv->admin);
    MHD_stop_daemon(srv->pub);
    /* 4. No request can reach a lane any more: free them. */
    for (int l = 0; l < LANE_COUNT; l++)
        workers_free(srv->lanes[l]);
    deadlines_free(srv->deadlines); /* every connection has closed */
    free(srv);
}
