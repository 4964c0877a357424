/* follow.c: the read model's follower (follow.h). Ownership: the thread owns its PGconn;
 * follow_model is created by the thread's first load and freed by follow_stop() after the
 * join (the HTTP server is stopped first); readers reach it only after an acquire load of
 * the state saw current, which the thread stores (release) after the model is published. */
#include "follow.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "model_load.h"
#include "model_nodes.h"
#include "statemove.h"

#define FOLLOW_POLL_MS 1000  /* a pass at least this often, notifications or not */
#define FOLLOW_RETRY_MS 1000 /* the wait after a failed connect or pass */

static pthread_t follow_thread;
static bool follow_started;
static struct follow_settings follow_cfg; /* url: follow_url */
static char *follow_url;                  /* strdup'd by follow_start(), freed by follow_stop() */
static int follow_wake = -1;              /* eventfd: sync tickets and stop */
static _Atomic int follow_st = FOLLOW_OFF;
static struct model *follow_model; /* see the header comment */
static int64_t follow_epoch;       /* the thread's own */

static pthread_mutex_t follow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t follow_cond = PTHREAD_COND_INITIALIZER;
/* Under follow_lock: sync tickets handed out, the ticket of the last pass that ended and of
 * the last that succeeded (a pass carries the newest ticket when it begins), whether the
 * first load ended, and stop. */
static uint64_t want_gen, done_gen;
static _Atomic uint64_t ok_gen; /* written under follow_lock; read anywhere */
static bool first_done, stopping;
/* The ticket of this process's newest commit (written under follow_lock, read by the HTTP
 * threads without it), when it was handed out, and the newest one that marked the model
 * stale (so that one late pass is counted once). */
static _Atomic uint64_t commit_gen, commit_ns;
static uint64_t commit_stale_gen;

const char *follow_state_name(int state)
{
    static const char *const names[FOLLOW_STATE_COUNT] = { "off", "loading", "current", "stale",
                                                           "too_large" };
    return state >= 0 && state < FOLLOW_STATE_COUNT ? names[state] : "unknown";
}

enum follow_state follow_state(void)
{
    return (enum follow_state)atomic_load_explicit(&follow_st, memory_order_acquire);
}

/* The one setter (follow_lock held). A move to the same state is no move. */
static void follow_set(enum follow_state to)
{
    static const unsigned legal[FOLLOW_STATE_COUNT] = {
        [FOLLOW_OFF] = 1u << FOLLOW_LOADING,
        [FOLLOW_LOADING] =
            1u << FOLLOW_CURRENT | 1u << FOLLOW_STALE | 1u << FOLLOW_TOO_LARGE | 1u << FOLLOW_OFF,
        [FOLLOW_CURRENT] = 1u << FOLLOW_STALE | 1u << FOLLOW_TOO_LARGE | 1u << FOLLOW_OFF,
        [FOLLOW_STALE] = 1u << FOLLOW_CURRENT | 1u << FOLLOW_TOO_LARGE | 1u << FOLLOW_OFF,
        [FOLLOW_TOO_LARGE] = 1u << FOLLOW_OFF,
    };
    int from = atomic_load_explicit(&follow_st, memory_order_relaxed);
    if (from == (int)to)
        return;
    if (!(legal[from] & 1u << to)) {
        statemove_refuse(MACHINE_MODEL, follow_state_name(from), follow_state_name(to), "");
        return;
    }
    atomic_store_explicit(&follow_st, (int)to, memory_order_release);
    metrics_model_state(follow_state_name(to));
}

/* Reads ask the database from now on (follow_lock held); a no-op unless the model was being
 * served or loaded (stop, too_large: no move). */
static void follow_mark_stale(void)
{
    int st = atomic_load_explicit(&follow_st, memory_order_relaxed);
    if (st == FOLLOW_CURRENT || st == FOLLOW_LOADING)
        follow_set(FOLLOW_STALE);
}

static void follow_publish_stats(void)
{
    if (!follow_model)
        return;
    struct model_stats s;
    model_stats(follow_model, &s);
    metrics_model_size(s.version, s.keys, s.bytes);
}

/* Runs sql, keeps nothing; true when it gave want. */
static bool follow_exec(PGconn *pg, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = r && PQresultStatus(r) == want;
    PQclear(r);
    return ok;
}

/* Replaces the model's contents with an empty model's (its memory goes back). */
static void follow_drop_model(void)
{
    struct model_nodes *none = model_nodes_new();
    if (!none || model_nodes_finish(none) != 0) {
        model_nodes_free(none);
        return;
    }
    struct model *empty = model_new(none, 0);
    if (empty && follow_model)
        model_replace(follow_model, empty);
    else
        model_free(empty);
}

/* A whole model from the snapshot of the open transaction. */
static enum model_load_status follow_reload(PGconn *pg, const struct model_mark *mark, char *err,
                                            size_t cap)
{
    uint64_t t0 = clock_mono_ns();
    struct model *fresh = NULL;
    enum model_load_status st =
        model_load_snapshot(pg, mark, follow_cfg.max_bytes, &fresh, err, cap);
    if (st != MODEL_LOAD_OK)
        return st;
    if (follow_model)
        model_replace(follow_model, fresh);
    else
        follow_model = fresh; /* published to readers by the state's release store */
    follow_epoch = mark->epoch;
    uint64_t ns = clock_mono_ns() - t0;
    struct model_stats s;
    model_stats(follow_model, &s);
    metrics_model_loaded(ns);
    LOG_INFO("model: loaded version %llu, %zu keys in %zu pairs, %zu bytes, in %.3f s",
             (unsigned long long)s.version, s.keys, s.pairs, s.bytes, (double)ns / 1e9);
    return MODEL_LOAD_OK;
}

/* One pass in one snapshot: follow, or reload when following is not enough. */
static enum model_load_status follow_pass(PGconn *pg, bool *need_reload, char *err, size_t cap)
{
    if (!follow_exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", PGRES_COMMAND_OK)) {
        snprintf(err, cap, "model: BEGIN: %s", PQerrorMessage(pg));
        return MODEL_LOAD_DB;
    }
    struct model_mark mark;
    enum model_load_status st = model_load_mark(pg, &mark, err, cap);
    bool changed = false;
    if (st == MODEL_LOAD_OK) {
        int64_t have = follow_model ? (int64_t)model_version(follow_model) : 0;
        if (*need_reload || !follow_model || mark.epoch != follow_epoch || mark.pruned > have) {
            st = follow_reload(pg, &mark, err, cap);
            changed = true;
            if (st == MODEL_LOAD_OK)
                *need_reload = false;
        } else if (mark.version > have) {
            uint64_t t0 = clock_mono_ns();
            st = model_load_follow(pg, follow_model, &mark, follow_cfg.max_bytes, err, cap);
            changed = true;
            if (st == MODEL_LOAD_OK)
                metrics_model_applied(clock_mono_ns() - t0);
        }
    }
    if (PQstatus(pg) == CONNECTION_OK)
        (void)follow_exec(pg, st == MODEL_LOAD_OK ? "COMMIT" : "ROLLBACK", PGRES_COMMAND_OK);
    if (st == MODEL_LOAD_MISMATCH)
        *need_reload = true; /* the next pass starts from a snapshot */
    if (changed)
        follow_publish_stats();
    return st;
}

/* Until a notification, a ticket, stop or timeout_ms. A lost connection is closed (*pg
 * NULL) and the model goes stale at once. */
static void follow_idle(PGconn **pg, long timeout_ms)
{
    if (*pg) {
        PGnotify *n;
        bool any = false;
        while ((n = PQnotifies(*pg)) != NULL) { /* arrived during the pass */
            PQfreemem(n);
            any = true;
        }
        if (any)
            return;
    }
    struct pollfd fds[2] = { { .fd = follow_wake, .events = POLLIN },
                             { .fd = *pg ? PQsocket(*pg) : -1, .events = POLLIN } };
    if (poll(fds, 2, (int)timeout_ms) <= 0)
        return;
    if (fds[0].revents & POLLIN) {
        uint64_t v;
        (void)!read(follow_wake, &v, sizeof v);
    }
    if (*pg && fds[1].revents) {
        PGnotify *n;
        bool ok = PQconsumeInput(*pg) == 1;
        while (ok && (n = PQnotifies(*pg)) != NULL)
            PQfreemem(n); /* the payload is never trusted: the pass reads the tables */
        if (!ok || PQstatus(*pg) != CONNECTION_OK) {
            LOG_WARN("model: lost the connection to the primary; reads ask the database until "
                     "the model is reloaded");
            PQfinish(*pg);
            *pg = NULL;
            pthread_mutex_lock(&follow_lock);
            follow_mark_stale();
            pthread_mutex_unlock(&follow_lock);
        }
    }
}

/* A connection with LISTEN done, or NULL (logged unless quiet: already failing). */
static PGconn *follow_connect(bool quiet)
{
    char err[512];
    PGconn *pg = db_connect_once(follow_cfg.url, follow_cfg.connect_timeout_s, "ratesd-model", err,
                                 sizeof err);
    if (pg && !follow_exec(pg, "LISTEN rates_data_version", PGRES_COMMAND_OK)) {
        snprintf(err, sizeof err, "LISTEN: %s", PQerrorMessage(pg));
        PQfinish(pg);
        pg = NULL;
    }
    if (!pg && !quiet)
        LOG_WARN("model: %s", err);
    return pg;
}

static void *follow_main(void *arg)
{
    (void)arg;
    PGconn *pg = NULL;
    bool need_reload = true, failing = false;
    for (;;) {
        pthread_mutex_lock(&follow_lock);
        bool stop = stopping;
        uint64_t g = want_gen;
        pthread_mutex_unlock(&follow_lock);
        if (stop)
            break;
        char err[512] = "";
        enum model_load_status st = MODEL_LOAD_DB;
        if (!pg) {
            pg = follow_connect(failing);
            need_reload = true; /* a new connection may lead to a new primary */
            if (pg && follow_cfg.on_connect)
                follow_cfg.on_connect();
        }
        if (pg)
            st = follow_pass(pg, &need_reload, err, sizeof err);
        if (pg && PQstatus(pg) != CONNECTION_OK) {
            PQfinish(pg);
            pg = NULL;
        }
        pthread_mutex_lock(&follow_lock);
        done_gen = g > done_gen ? g : done_gen;
        if (st == MODEL_LOAD_OK) {
            ok_gen = g > ok_gen ? g : ok_gen;
            /* Current only when no commit of this instance is newer than the snapshot. */
            if (want_gen == g && !stopping)
                follow_set(FOLLOW_CURRENT);
        } else if (st == MODEL_LOAD_TOO_LARGE && !stopping) {
            follow_set(FOLLOW_TOO_LARGE);
        } else {
            follow_mark_stale();
        }
        first_done = true;
        pthread_cond_broadcast(&follow_cond);
        pthread_mutex_unlock(&follow_lock);
        if (st == MODEL_LOAD_TOO_LARGE) {
            LOG_ERROR("%s: the model is dropped and every read asks the database until restart",
                      err);
            follow_drop_model();
            follow_publish_stats();
            break;
        }
        if (st != MODEL_LOAD_OK && *err && !failing)
            LOG_WARN("%s", err);
        if (st == MODEL_LOAD_OK && failing)
            LOG_INFO("model: current again");
        failing = st != MODEL_LOAD_OK;
        if (st != MODEL_LOAD_MISMATCH)
            follow_idle(&pg, st == MODEL_LOAD_OK ? FOLLOW_POLL_MS : FOLLOW_RETRY_MS);
    }
    if (pg)
        PQfinish(pg);
    return NULL;
}

int follow_start(const struct follow_settings *s)
{
    follow_cfg = *s;
    follow_url = strdup(s->url ? s->url : "");
    follow_cfg.url = follow_url;
    follow_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!follow_url || follow_wake < 0) {
        free(follow_url);
        follow_url = NULL;
        if (follow_wake >= 0)
            close(follow_wake);
        follow_wake = -1;
        return -1;
    }
    pthread_mutex_lock(&follow_lock);
    stopping = false;
    first_done = false;
    follow_set(FOLLOW_LOADING);
    pthread_mutex_unlock(&follow_lock);
    if (pthread_create(&follow_thread, NULL, follow_main, NULL) != 0) {
        pthread_mutex_lock(&follow_lock);
        follow_set(FOLLOW_OFF);
        pthread_mutex_unlock(&follow_lock);
        free(follow_url);
        follow_url = NULL;
        close(follow_wake);
        follow_wake = -1;
        return -1;
    }
    follow_started = true;
    return 0;
}

bool follow_wait_loaded(long timeout_ms)
{
    if (!follow_started)
        return false;
    struct timespec until = clock_after_ms(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&follow_lock);
    while (!first_done && !stopping)
        if (pthread_cond_timedwait(&follow_cond, &follow_lock, &until) != 0)
            break;
    pthread_mutex_unlock(&follow_lock);
    return follow_state() == FOLLOW_CURRENT;
}

static void follow_kick(void)
{
    uint64_t one = 1;
    (void)!write(follow_wake, &one, sizeof one);
}

void follow_stop(void)
{
    if (!follow_started)
        return;
    pthread_mutex_lock(&follow_lock);
    stopping = true;
    follow_set(FOLLOW_OFF);
    pthread_cond_broadcast(&follow_cond);
    pthread_mutex_unlock(&follow_lock);
    follow_kick();
    pthread_join(follow_thread, NULL);
    follow_started = false;
    model_free(follow_model);
    follow_model = NULL;
    close(follow_wake);
    follow_wake = -1;
    free(follow_url);
    follow_url = NULL;
    follow_cfg.url = NULL;
}

/* Hands out a ticket (*ticket) and kicks a pass; with wait_ms > 0 and the model current,
 * waits for a pass that carried the ticket. Returns whether one succeeded; *was_current tells
 * whether the model was served when the ticket was taken. */
static bool follow_ticket(long wait_ms, bool *was_current, uint64_t *ticket)
{
    pthread_mutex_lock(&follow_lock);
    int st = atomic_load_explicit(&follow_st, memory_order_relaxed);
    *was_current = st == FOLLOW_CURRENT;
    /* Even when the model is not served, the ticket keeps a pass that began before this
     * call from declaring it current. */
    uint64_t t = ++want_gen;
    *ticket = t;
    pthread_mutex_unlock(&follow_lock);
    follow_kick();
    if (!*was_current || wait_ms <= 0)
        return false;
    struct timespec until = clock_after_ms(CLOCK_REALTIME, wait_ms);
    pthread_mutex_lock(&follow_lock);
    while (done_gen < t && !stopping)
        if (pthread_cond_timedwait(&follow_cond, &follow_lock, &until) != 0)
            break;
    bool ok = ok_gen >= t;
    pthread_mutex_unlock(&follow_lock);
    return ok;
}

/* The model is still without a commit of this process: past sync_ms since that commit, it
 * goes stale (reads ask the database until a pass catches up) and the miss is counted once.
 * follow_lock held. */
static void follow_commit_overdue(void)
{
    uint64_t g = atomic_load(&commit_gen);
    if (atomic_load(&ok_gen) >= g || commit_stale_gen >= g)
        return;
    if (clock_mono_ns() - atomic_load(&commit_ns) < (uint64_t)follow_cfg.sync_ms * 1000000ull)
        return;
    commit_stale_gen = g;
    follow_mark_stale();
    metrics_model_sync_timeout();
}

void follow_note_commit(void)
{
    if (!follow_started)
        return;
    bool was_current = false;
    uint64_t t = 0;
    (void)follow_ticket(0, &was_current, &t); /* kicks the pass, never waits */
    pthread_mutex_lock(&follow_lock);
    follow_commit_overdue(); /* the previous commit's, before this one replaces it */
    if (t > atomic_load(&commit_gen)) {
        atomic_store(&commit_ns, clock_mono_ns());
        atomic_store(&commit_gen, t);
    }
    pthread_mutex_unlock(&follow_lock);
}

bool follow_behind_commit(void)
{
    if (atomic_load(&ok_gen) >= atomic_load(&commit_gen))
        return false;
    if (clock_mono_ns() - atomic_load(&commit_ns) >= (uint64_t)follow_cfg.sync_ms * 1000000ull) {
        pthread_mutex_lock(&follow_lock); /* rare: a pass overdue */
        follow_commit_overdue();
        pthread_mutex_unlock(&follow_lock);
    }
    return true;
}

bool follow_fresh(long timeout_ms)
{
    if (!follow_started || follow_state() != FOLLOW_CURRENT)
        return false;
    bool was_current = false;
    uint64_t t = 0;
    return follow_ticket(timeout_ms, &was_current, &t) && follow_state() == FOLLOW_CURRENT;
}

bool follow_wait_version(int64_t version, long timeout_ms)
{
    if (!follow_started)
        return false;
    follow_kick();
    struct timespec until = clock_after_ms(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&follow_lock);
    bool ok = false;
    uint64_t need_gen = atomic_load(&commit_gen); /* and every commit of this process so far */
    for (;;) {
        uint64_t have = follow_model ? model_version(follow_model) : 0;
        ok = follow_state() == FOLLOW_CURRENT && (int64_t)have >= version &&
             atomic_load(&ok_gen) >= need_gen;
        if (ok || stopping || follow_state() != FOLLOW_CURRENT ||
            pthread_cond_timedwait(&follow_cond, &follow_lock, &until) != 0)
            break;
    }
    if (!ok)
        follow_commit_overdue();
    pthread_mutex_unlock(&follow_lock);
    return ok;
}

bool follow_read(const char *orig, size_t orig_len, const char *dest, size_t dest_len, int32_t from,
                 int32_t to, struct model_row *out, size_t cap, size_t *count, uint64_t *version,
                 bool *known)
{
    if (follow_state() != FOLLOW_CURRENT)
        return false;
    *count = model_read(follow_model, orig, orig_len, dest, dest_len, from, to, out, cap, version,
                        known);
    return true;
}
