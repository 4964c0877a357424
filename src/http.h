/* http.h: the HTTP front end on GNU libmicrohttpd, routes, responses and deferred work.
 *
 * Threading model: one thread per listener accepts (src/acceptor.h: MHD never holds the
 * listening socket) and a few poll threads (RATES_HTTP_THREADS; http_daemon says why not
 * epoll) parse and answer; they never block. Anything that talks to PostgreSQL is deferred: the connection is suspended
 * (MHD_suspend_connection), the request goes to the bounded queue of a lane (src/workers.h)
 * whose threads own the blocking libpq calls, and the job's completion resumes the connection
 * when the response is ready. A slow query therefore never stalls other connections, slow
 * clients cost a socket and not a thread, and a full queue answers 503 at once.
 *
 * Lanes (http_defer flags): reads (RATES_WORKERS threads, their own primary and replica
 * connections), batch chunks and retractions (RATES_BATCH_WORKERS, the batch connections),
 * batch commits (RATES_COMMIT_WORKERS, 1 by default). Batch work never takes a read worker or
 * a read connection, so reads never queue behind it.
 *
 * Slow clients: src/deadline.c closes connections whose request head or response takes longer
 * than RATES_HEADER_TIMEOUT_S / RATES_SEND_TIMEOUT_S, whatever the idle timeout; an upload's
 * body has its own total deadline (http_body_deadline, RATES_UPLOAD_TIMEOUT_S). A body on a
 * route that takes none (no on_body; 404, 405) is refused with the head (413, or the 404/405)
 * and the connection closed: nothing reads it, so nothing has to bound it.
 *
 * Framing (request smuggling): libmicrohttpd 0.9.75 accepts Content-Length together with
 * Transfer-Encoding (it uses chunked), repeated Content-Length headers and obs-fold lines (it
 * glues the continuation onto the header's NAME). A request with any of these, or with a
 * Transfer-Encoding other than "chunked", is answered 400 and the connection closed. */
#ifndef RATES_HTTP_H
#define RATES_HTTP_H

#include "common.h"
#include "workers.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct db_conn;
struct http_req;
struct http_server;

enum { HTTP_GET = 1, HTTP_HEAD = 2, HTTP_POST = 4, HTTP_DELETE = 8, HTTP_PUT = 16 };
/* http_defer flags */
enum {
    WORK_DB = 1,      /* the worker acquires a pooled connection around the call */
    WORK_DB_READ = 2, /* the same from the read pool (replicas, RATES_DATABASE_READ_URL); a
                       * request with "Rates-Consistency: primary" reads the primary instead,
                       * and one with "Rates-Min-LSN: X/Y" reads a replica only once it has
                       * replayed that WAL position (read-your-writes, docs/high-availability.md) */
    /* The lane; none of these: the read lane. */
    WORK_LANE_BATCH = 4,  /* batch chunks and retractions (connections of the batch pool) */
    WORK_LANE_COMMIT = 8, /* batch commits, RATES_COMMIT_WORKERS at once */
    WORK_DB_PREFER = 16,  /* with WORK_DB: a read that prefers the primary (the response cache
                           * after a local write) but must keep working while no primary
                           * accepts connections: then the read pool, and req->fell_back */
};

/* The life of a request; only the HTTP thread serving it moves it (http_req_set_state refuses
 * a move the table does not allow, and aborts in the sanitizer build).
 *   ACCEPTED    request line in (MHD's URI callback); headers not yet complete
 *   ROUTED      headers in, route found; a body route's on_request has run
 *   REQUESTED   on_request has run; the body, if any, is being read
 *   BODY_ENDED  the body has ended (on_end has run)
 *   DEFERRED    a lane job owns the work, the connection is suspended; on resume it goes back
 *               to the state it was deferred from (resume_to)
 *   RESPONDED   the response is queued; nothing more runs */
enum http_req_state {
    HTTP_REQ_ACCEPTED = 0,
    HTTP_REQ_ROUTED,
    HTTP_REQ_REQUESTED,
    HTTP_REQ_BODY_ENDED,
    HTTP_REQ_DEFERRED,
    HTTP_REQ_RESPONDED,
    HTTP_REQ_STATE_COUNT
};

typedef void (*http_work_fn)(struct http_req *req, struct db_conn *conn);

struct http_route {
    const char *path; /* exact path, or a prefix when prefix is true */
    bool prefix;
    unsigned methods;
    int metric; /* enum metrics_route */
    bool admin; /* also served on the admin listener */
    /* Public listener too, except when an admin listener is configured (/metrics). */
    bool admin_only;
    /* Called once the headers are in. May respond, defer, or wait for the body. */
    void (*on_request)(struct http_req *req);
    /* Called for each body chunk; the data is valid only during the call. */
    void (*on_body)(struct http_req *req, const char *data, size_t len);
    /* Called when the body has ended (POST/PUT only). */
    void (*on_end)(struct http_req *req);
    /* Called when the request is finished, whatever happened; frees req->state.
     * completed is false when the client went away or the server stopped the connection. */
    void (*on_free)(struct http_req *req, bool completed);
};

#define HTTP_MAX_HEADERS 6

struct http_req {
    struct MHD_Connection *conn;
    struct http_server *srv;
    const struct http_route *route;
    char *uri;          /* owned: the raw request target */
    const char *method; /* MHD-owned */
    const char *path;   /* MHD-owned, decoded */
    const char *query;  /* into uri, or NULL */
    unsigned method_bit;
    char request_id[72];
    uint64_t t_start_ns;
    uint64_t db_ns;    /* time spent in the database, for Server-Timing and the log */
    uint64_t model_ns; /* time spent reading the read model, for Server-Timing */
    void *state;       /* owned by the route (freed in on_free), or by http.c when
                             * made with http_state_new() */
    bool state_plain;  /* state came from http_state_new(): http.c frees it */
    /* The response, queued when the connection is next served. */
    int status;
    char *body; /* owned */
    size_t body_len;
    const char *content_type;
    char *hdr_name[HTTP_MAX_HEADERS];
    char *hdr_value[HTTP_MAX_HEADERS];
    int hdr_count;
    char note[256]; /* why it failed, for the log line */
    uint64_t bytes_sent;
    /* Internal */
    enum http_req_state state_;    /* the life cycle: only http_req_set_state() writes it */
    enum http_req_state resume_to; /* DEFERRED: where the request continues */
    bool has_response;             /* a response is set (by the route, maybe on a lane thread) */
    bool admin;                    /* served on the admin listener */
    bool discard_body;             /* answer already decided: drop the rest of the body */
    bool respond_early;   /* queue the response before reading the body (closes the conn) */
    bool uri_too_long;    /* longer than the request target we keep: 414 */
    uint64_t body_due_ns; /* upload: the body must have ended by then (0: no deadline) */
    bool body_late;       /* the body deadline passed: answered 408 and closed mid-body */
    bool abort_body;      /* on_body asks to answer now and close, mid-body (http_abort) */
    http_work_fn work;
    unsigned work_flags;
    char min_lsn[40];       /* WORK_DB_READ: the Rates-Min-LSN header, or empty */
    bool fell_back;         /* WORK_DB_PREFER: the primary was unreachable, a replica answered */
    uint64_t write_rows;    /* a committed write: the rows it changed, for on_commit */
    struct workers_job job; /* the deferred work, while DEFERRED */
    atomic_bool job_done;   /* set by the lane after the job (then the connection resumes);
                             * the one field the lane writes that the HTTP thread reads
                             * before resuming: MHD may call the handler again while still
                             * suspended (a chunked body's remaining data) */
};

struct http_server_settings {
    const char *listen;
    const char *admin_listen;
    int listen_fd; /* inherited listening socket or -1 */
    int admin_fd;
    long http_threads;
    long workers;        /* read lane */
    long batch_workers;  /* batch lane: chunks and retractions */
    long commit_workers; /* commit lane */
    long queue_max;      /* per lane */
    long max_connections;
    long max_connections_per_ip; /* public listener; 0: none */
    long connection_timeout_s;
    long header_timeout_s; /* accept (or the previous response) to the end of the headers */
    long send_timeout_s;   /* a response queued to fully sent */
    long pool_wait_ms;
    struct db_pool *pool;       /* primary, read lane */
    struct db_pool *batch_pool; /* primary, batch lanes */
    struct db_pool *read_pool;  /* replicas (reads), or the same as pool */
    const struct http_route *routes;
    int route_count;
    /* Called on the HTTP thread before a 2xx answer to POST, PUT or DELETE is queued: the
     * write has committed (the response cache invalidates here); NULL: nothing. */
    void (*on_write)(void);
    /* Called on the worker that answered a POST, PUT or DELETE with a 2xx, before the answer
     * is handed to the HTTP thread (the read model takes the write in), with the rows the
     * write changed (req->write_rows); may block for a bounded time. NULL: nothing. */
    void (*on_commit)(uint64_t rows);
};

/* Starts the listeners and the workers. Returns NULL with err on failure. */
struct http_server *http_server_start(const struct http_server_settings *s, char *err,
                                      size_t errcap);
/* Readiness off; responses now carry Connection: close. */
void http_server_set_draining(struct http_server *srv);
bool http_server_draining(const struct http_server *srv);
/* Runs fn(arg) as a job of the batch lane, tied to no request (the rollback of an upload whose
 * connection ended): http_server_stop() runs every queued job before it returns, so shutdown
 * waits for it. arg belongs to fn. Returns 0, or -1 when the lane refuses (full, stopped, no
 * memory): the caller runs fn itself. */
int http_server_batch_job(struct http_server *srv, void (*fn)(void *arg), void *arg) WUR;
/* Public responses carry Connection: close; readiness unchanged (self-upgrade hand-over). */
void http_server_set_closing(struct http_server *srv);
/* Open connections on the public listener. */
long http_server_connections(const struct http_server *srv);
/* The admin listening socket, or -1. */
int http_server_admin_fd(const struct http_server *srv);
/* Stops accepting new connections on the public listener: its acceptor thread is joined and
 * the socket closed now (a self-upgrade's child keeps its own reference). */
void http_server_stop_accepting(struct http_server *srv);
/* Requests and batches still in progress. */
long http_server_inflight(const struct http_server *srv);
/* Stops everything, in an order that never touches freed memory: both listeners stop
 * accepting, the lanes refuse new jobs and finish the queued ones (their connections resume),
 * the daemons close what is left (routes roll back), then the lanes are freed. */
void http_server_stop(struct http_server *srv);
/* The public listening socket (for a self-upgrade to inherit); -1 once accepting stopped. */
int http_server_listen_fd(const struct http_server *srv);

/* Zeroed per-request state of size bytes, owned by the request and freed when it completes
 * (routes with plain state need no on_free). NULL after answering 500 when out of memory. */
void *http_state_new(struct http_req *req, size_t size);

/* Responses. body is copied (http_respond) or adopted (http_respond_owned). */
void http_respond(struct http_req *req, int status, const char *content_type, const char *body,
                  size_t len);
void http_respond_owned(struct http_req *req, int status, const char *content_type, char *body,
                        size_t len);
/* {"error": message} with application/json. */
void http_respond_error(struct http_req *req, int status, const char *message);
void http_add_header(struct http_req *req, const char *name, const char *value);
/* A request header, or NULL. */
const char *http_header(struct http_req *req, const char *name);

/* The body must have ended limit_ns from now (an upload route's on_request sets it): a chunk
 * that arrives later is answered 408 and the connection closed (the route's on_free sees
 * req->body_late and rolls back); a client that sends nothing more is closed by the
 * sweeper shortly after. */
void http_body_deadline(struct http_req *req, uint64_t limit_ns);
/* From on_body: answer the response set (or 500) now, mid-body, and close the connection.
 * libmicrohttpd 0.9.75 refuses to queue a response before the body has ended, so http.c
 * writes this one small answer on the socket itself (best effort, never blocking). */
void http_abort(struct http_req *req);

/* Suspends the connection and queues fn on the lane flags name. Returns 0, or -1 when that
 * lane's queue is full or stopped (a 503 with Retry-After has then been set). After 0 the
 * caller must not touch req: the job owns it until the connection resumes. */
int http_defer(struct http_req *req, http_work_fn fn, unsigned flags);
/* Moves the life cycle (see enum http_req_state). false (and, in the sanitizer build, an
 * abort) when the move is not allowed. HTTP thread only. */
bool http_req_set_state(struct http_req *req, enum http_req_state to);

#endif
