/* workers.c: N threads serving a bounded FIFO of suspended requests. */
#include "workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct http_req *head, *tail;
    long depth, max;
    bool stopping;
    struct db_pool *pool;
    long pool_wait_ms;
    long nthreads;
    pthread_t *threads;
};

/* True when conn is a standby that has not yet replayed lsn (or cannot tell): the read must
 * then go to the primary to see the client's own write. */
static bool workers_replica_behind(struct db_conn *conn, const char *lsn)
{
    const char *params[1] = { lsn };
    PGresult *r = PQexecParams(conn->pg,
                               "SELECT pg_is_in_recovery() AND "
                               "coalesce(pg_last_wal_replay_lsn() < $1::pg_lsn, true)",
                               1, NULL, params, NULL, NULL, 0);
    bool behind = PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
                  strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    return behind;
}

/* WORK_DB takes a connection of the primary pool, WORK_DB_READ one of the read pool (the
 * same pool when no RATES_DATABASE_READ_URL is set). */
static int workers_acquire(struct workers *w, struct http_req *req, struct db_pool **pool,
                           struct db_conn **conn, char *err, size_t errcap)
{
    *pool = (req->work_flags & WORK_DB_READ) && APP.read_pool ? APP.read_pool : w->pool;
    int rc = db_pool_acquire(*pool, w->pool_wait_ms, conn, err, errcap);
    if (rc != DB_OK || *pool == w->pool || !req->min_lsn[0] ||
        !workers_replica_behind(*conn, req->min_lsn))
        return rc;
    db_pool_release(*pool, *conn);
    *conn = NULL;
    *pool = w->pool;
    return db_pool_acquire(*pool, w->pool_wait_ms, conn, err, errcap);
}

static void workers_run_one(struct workers *w, struct http_req *req)
{
    struct db_conn *conn = NULL;
    struct db_pool *pool = w->pool;
    if (req->work_flags & (WORK_DB | WORK_DB_READ)) {
        char err[512];
        int rc = workers_acquire(w, req, &pool, &conn, err, sizeof err);
        if (rc != DB_OK) {
            str_copy(req->note, sizeof req->note, err);
            http_add_header(req, "Retry-After", "1");
            http_respond_error(req, 503, rc == DB_ERR_TIMEOUT ? "Service overloaded, retry later"
                                                              : "Database unavailable");
            http_resume(req);
            return;
        }
    }
    req->work(req, conn);
    if (conn)
        db_pool_release(pool, conn);
    http_resume(req);
}

static void *workers_main(void *arg)
{
    struct workers *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->ready, &w->lock);
        struct http_req *req = w->head;
        if (!req) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        w->head = req->next;
        if (!w->head)
            w->tail = NULL;
        w->depth--;
        pthread_mutex_unlock(&w->lock);
        metrics_queue_depth_add(-1);
        req->next = NULL;
        workers_run_one(w, req);
    }
}

struct workers *workers_start(long threads, long queue_max, struct db_pool *pool,
                              long pool_wait_ms)
{
    struct workers *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->threads = calloc((size_t)threads, sizeof *w->threads);
    if (!w->threads) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);
    w->max = queue_max;
    w->pool = pool;
    w->pool_wait_ms = pool_wait_ms;
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&w->threads[i], NULL, workers_main, w) != 0) {
            LOG_ERROR("cannot start worker thread %ld", i);
            break;
        }
        w->nthreads++;
    }
    return w;
}

int workers_submit(struct workers *w, struct http_req *req)
{
    pthread_mutex_lock(&w->lock);
    if (w->depth >= w->max || w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    req->next = NULL;
    if (w->tail)
        w->tail->next = req;
    else
        w->head = req;
    w->tail = req;
    w->depth++;
    pthread_cond_signal(&w->ready);
    pthread_mutex_unlock(&w->lock);
    metrics_queue_depth_add(1);
    return 0;
}

void workers_stop(struct workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->ready);
    pthread_mutex_unlock(&w->lock);
    for (long i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->ready);
    free(w->threads);
    free(w);
}
