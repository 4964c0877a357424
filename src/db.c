/* db.c: the connection pool. Slots are connected lazily; a failed connect arms a short
 * backoff during which acquirers fail fast (503) instead of piling up on connect_timeout. */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define DB_MAX_STATEMENTS 32
#define DB_BACKOFF_MIN_NS 50000000ull   /* 50 ms */
#define DB_BACKOFF_MAX_NS 1000000000ull /* 1 s: service resumes within ~1 s of the db */

struct db_statement {
    const char *name;
    const char *sql;
    int nparams;
};

static struct db_statement statements[DB_MAX_STATEMENTS];
static int statement_count;

struct db_slot {
    struct db_conn conn;
    struct db_pool *owner;
    bool in_use;
    bool discard;
    bool ever_connected;
};

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct db_slot *slots;
    int size;
    int in_use;
    bool closed;
    uint64_t backoff_until_ns;
    uint64_t backoff_ns;
    char *url;
    long statement_timeout_ms;
    long connect_timeout_s;
    char *app;
    int metric; /* enum metrics_pool: the pool label of its gauges */
    char last_error[256];
};

void db_register_statement(const char *name, const char *sql, int nparams)
{
    if (statement_count >= DB_MAX_STATEMENTS)
        return;
    statements[statement_count].name = name;
    statements[statement_count].sql = sql;
    statements[statement_count].nparams = nparams;
    statement_count++;
}

static void db_oneline(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
}

PGconn *db_connect_once(const char *url, long connect_timeout_s, const char *app, char *err,
                        size_t errcap)
{
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%ld", connect_timeout_s);
    const char *dbname = url;
    if (!url || !*url)
        dbname = getenv("PGDATABASE") ? NULL : "rates";
    /* Our defaults come first: settings in the URL override them. Like psql, the name is a
     * fallback (PGAPPNAME or the URL's application_name win), and the timeout is ours only
     * when libpq's environment gives none (PGCONNECT_TIMEOUT). */
    const char *keys[4] = { "fallback_application_name", NULL, NULL, NULL };
    const char *vals[4] = { app, NULL, NULL, NULL };
    int k = 1;
    const char *env_timeout = getenv("PGCONNECT_TIMEOUT");
    if (!env_timeout || !*env_timeout) {
        keys[k] = "connect_timeout";
        vals[k++] = timeout;
    }
    keys[k] = "dbname";
    vals[k] = dbname;
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errcap, "connect failed: %s", PQerrorMessage(pg));
        db_oneline(err);
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

struct db_pool *db_pool_new(const struct db_pool_settings *s)
{
    struct db_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->slots = calloc((size_t)s->size, sizeof *p->slots);
    p->url = strdup(s->url ? s->url : "");
    p->app = strdup(s->application_name ? s->application_name : "ratesd");
    if (!p->slots || !p->url || !p->app) {
        free(p->slots);
        free(p->url);
        free(p->app);
        free(p);
        return NULL;
    }
    for (int i = 0; i < s->size; i++) {
        p->slots[i].conn.slot = i;
        p->slots[i].owner = p;
    }
    p->size = s->size;
    p->statement_timeout_ms = s->statement_timeout_ms;
    p->connect_timeout_s = s->connect_timeout_s;
    p->metric = s->metric;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    metrics_pool_set(p->metric, p->size, 0);
    return p;
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    pthread_cond_broadcast(&p->freed);
    for (int i = 0; i < p->size; i++) {
        if (p->slots[i].conn.pg && !p->slots[i].in_use) {
            PQfinish(p->slots[i].conn.pg);
            p->slots[i].conn.pg = NULL;
        }
    }
    /* Read under the lock: a rollback may be releasing its slot (db_pool_release). */
    bool any_in_use = false;
    for (int i = 0; i < p->size; i++)
        any_in_use |= p->slots[i].in_use;
    pthread_mutex_unlock(&p->lock);
    /* Slots still in use belong to their holders; they are freed when the process exits. */
    if (any_in_use)
        return;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->slots);
    free(p->url);
    free(p->app);
    free(p);
}

/* Session setup on a new connection: timeouts and prepared statements. */
static int db_setup(struct db_pool *p, PGconn *pg, char *err, size_t errcap)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %ld; SET idle_in_transaction_session_timeout = 0; "
             "SET extra_float_digits = 1",
             p->statement_timeout_ms);
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errcap, "session setup failed: %s", PQerrorMessage(pg));
        db_oneline(err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    for (int i = 0; i < statement_count; i++) {
        r = PQprepare(pg, statements[i].name, statements[i].sql, statements[i].nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errcap, "prepare %s failed: %s", statements[i].name, PQerrorMessage(pg));
            db_oneline(err);
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    return 0;
}

int db_pool_acquire(struct db_pool *p, long wait_ms, struct db_conn **out, char *err, size_t errcap)
{
    uint64_t t0 = clock_mono_ns();
    struct timespec deadline = clock_after_ms(CLOCK_REALTIME, wait_ms);
    pthread_mutex_lock(&p->lock);
    struct db_slot *slot = NULL;
    while (!p->closed) {
        /* Prefer a slot that is already connected. */
        for (int i = 0; i < p->size && !slot; i++)
            if (!p->slots[i].in_use && p->slots[i].conn.pg)
                slot = &p->slots[i];
        for (int i = 0; i < p->size && !slot; i++)
            if (!p->slots[i].in_use)
                slot = &p->slots[i];
        if (slot)
            break;
        if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            metrics_pool_wait(p->metric, clock_mono_ns() - t0);
            snprintf(err, errcap, "no database connection free after %ld ms", wait_ms);
            return DB_ERR_TIMEOUT;
        }
    }
    if (p->closed) {
        pthread_mutex_unlock(&p->lock);
        snprintf(err, errcap, "database pool is closed");
        return DB_ERR_CLOSED;
    }
    if (!slot->conn.pg && clock_mono_ns() < p->backoff_until_ns) {
        snprintf(err, errcap, "database unavailable (%s)", p->last_error);
        pthread_mutex_unlock(&p->lock);
        metrics_pool_wait(p->metric, clock_mono_ns() - t0);
        return DB_ERR_CONNECT;
    }
    slot->in_use = true;
    slot->discard = false;
    p->in_use++;
    metrics_pool_set(p->metric, p->size, p->in_use);
    pthread_mutex_unlock(&p->lock);

    if (!slot->conn.pg) {
        char cerr[512];
        PGconn *pg = db_connect_once(p->url, p->connect_timeout_s, p->app, cerr, sizeof cerr);
        if (pg && db_setup(p, pg, cerr, sizeof cerr) != 0) {
            PQfinish(pg);
            pg = NULL;
        }
        pthread_mutex_lock(&p->lock);
        if (!pg) {
            p->backoff_ns = p->backoff_ns ? p->backoff_ns * 2 : DB_BACKOFF_MIN_NS;
            if (p->backoff_ns > DB_BACKOFF_MAX_NS)
                p->backoff_ns = DB_BACKOFF_MAX_NS;
            p->backoff_until_ns = clock_mono_ns() + p->backoff_ns;
            str_copy(p->last_error, sizeof p->last_error, cerr);
            slot->in_use = false;
            p->in_use--;
            metrics_pool_set(p->metric, p->size, p->in_use);
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->lock);
            metrics_db_error();
            metrics_pool_wait(p->metric, clock_mono_ns() - t0);
            snprintf(err, errcap, "database unavailable (%s)", cerr);
            return DB_ERR_CONNECT;
        }
        p->backoff_ns = 0;
        p->backoff_until_ns = 0;
        if (slot->ever_connected)
            metrics_db_reconnect();
        slot->ever_connected = true;
        slot->conn.pg = pg;
        pthread_mutex_unlock(&p->lock);
    }
    metrics_pool_wait(p->metric, clock_mono_ns() - t0);
    *out = &slot->conn;
    return DB_OK;
}

int db_conn_reconnect(struct db_pool *p, struct db_conn *c, char *err, size_t errcap)
{
    /* Reconnect to the pool c came from: a primary connection must never be replaced by a
     * replica's (the read pool has its own URL). */
    p = ((struct db_slot *)(void *)c)->owner;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = db_connect_once(p->url, p->connect_timeout_s, p->app, err, errcap);
    if (c->pg && db_setup(p, c->pg, err, errcap) != 0) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (!c->pg) {
        metrics_db_error();
        return -1;
    }
    metrics_db_reconnect();
    return 0;
}

void db_conn_discard(struct db_conn *c)
{
    /* The slot array holds conn as its first member. */
    ((struct db_slot *)(void *)c)->discard = true;
}

bool db_conn_broken(const struct db_conn *c)
{
    return !c->pg || PQstatus(c->pg) != CONNECTION_OK;
}

void db_pool_release(struct db_pool *p, struct db_conn *c)
{
    struct db_slot *slot = (struct db_slot *)(void *)c;
    bool close_it = slot->discard || db_conn_broken(c);
    if (!close_it && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        /* Never hand out a connection inside a transaction: roll back or drop it. */
        PGresult *r = PQexec(c->pg, "ROLLBACK");
        close_it =
            PQresultStatus(r) != PGRES_COMMAND_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE;
        PQclear(r);
    }
    if (close_it && c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    pthread_mutex_lock(&p->lock);
    slot->in_use = false;
    slot->discard = false;
    p->in_use--;
    metrics_pool_set(p->metric, p->size, p->in_use);
    if (p->closed && c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void db_error_copy(const struct db_conn *c, const PGresult *res, char *err, size_t errcap)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if ((!msg || !*msg) && c && c->pg)
        msg = PQerrorMessage(c->pg);
    snprintf(err, errcap, "%s", msg && *msg ? msg : "unknown database error");
    db_oneline(err);
}
