/* cache_listen.c: the LISTEN thread that keeps the response cache exact across instances. */
#include "cache_listen.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libpq-fe.h>

#include "cache.h"
#include "db.h"
#include "log.h"

#define LISTEN_POLL_MS 100
#define LISTEN_PING_MS 1000 /* heartbeat period */
#define LISTEN_PONG_MS 2000 /* longest wait for its answer before the connection counts as lost */
#define LISTEN_RETRY_MIN_MS 100
#define LISTEN_RETRY_MAX_MS 2000

static struct {
    pthread_t thread;
    bool started;
    atomic_bool stop;
    struct cache *cache;
    char *url;
    long connect_timeout_s;
} L;

/* Keepalives on the client side: a balancer's idle timeout or a dead peer is noticed in
 * ~25 s (10 s idle, 3 probes 5 s apart) instead of never. Harmless on a Unix socket. */
static void cache_listen_keepalive(PGconn *pg)
{
    int fd = PQsocket(pg), one = 1, idle = 10, intvl = 5, cnt = 3;
    if (fd < 0)
        return;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* LISTEN first, then the version: a commit in between is both read and notified, never
 * missed. Returns the version (> 0), or 0 on failure. */
static int64_t cache_listen_subscribe(PGconn *pg)
{
    PGresult *r = PQexec(pg, "LISTEN rates_data_version");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return 0;
    r = PQexec(pg, "SELECT version FROM public.rates_data_version WHERE id = 1");
    int64_t v = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static uint64_t cache_listen_now_ms(void)
{
    return clock_mono_ns() / 1000000u;
}

/* Serves notifications until the connection fails or the thread is asked to stop. A heartbeat
 * reads the version every LISTEN_PING_MS: a connection cut silently (no RST: a balancer's
 * idle timeout, a partition) is noticed when the answer takes longer than LISTEN_PONG_MS,
 * which bounds how long this instance can serve answers older than a commit it was not told
 * of; the version read also covers a notification that never came. */
static void cache_listen_serve(PGconn *pg)
{
    uint64_t next_ping = cache_listen_now_ms() + LISTEN_PING_MS, sent_at = 0;
    bool pending = false, again = false;
    while (!atomic_load(&L.stop)) {
        struct pollfd p = { .fd = PQsocket(pg), .events = POLLIN };
        int n = poll(&p, 1, LISTEN_POLL_MS);
        if (n < 0)
            continue;
        if (n > 0 && PQconsumeInput(pg) != 1)
            return;
        /* A notification is a doorbell, never data: any role that may connect can NOTIFY
         * with any payload (a forged huge version would make every fill look stale). The
         * version is read from the table at once; a notification that comes while a read is
         * in flight asks for one more read after it (its commit may be newer than that
         * read's snapshot). */
        PGnotify *note;
        bool rung = false;
        while ((note = PQnotifies(pg)) != NULL) {
            rung = true;
            PQfreemem(note);
        }
        if (PQstatus(pg) != CONNECTION_OK)
            return;
        uint64_t now = cache_listen_now_ms();
        if (rung) {
            if (pending)
                again = true;
            else
                next_ping = now;
        }
        if (pending && !PQisBusy(pg)) {
            bool ok = true;
            PGresult *r;
            while ((r = PQgetResult(pg)) != NULL) {
                if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                    cache_note_version(L.cache, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
                else
                    ok = false;
                PQclear(r);
            }
            if (!ok)
                return;
            pending = false;
            if (again) {
                again = false;
                next_ping = now;
            }
        }
        if (pending && now - sent_at > LISTEN_PONG_MS) {
            LOG_WARN("cache: listener heartbeat unanswered for %d ms", LISTEN_PONG_MS);
            return;
        }
        if (!pending && now >= next_ping) {
            if (PQsendQuery(pg, "SELECT version FROM public.rates_data_version WHERE id = 1") != 1)
                return;
            pending = true;
            sent_at = now;
            next_ping = now + LISTEN_PING_MS;
        }
    }
}

static void cache_listen_sleep(long ms)
{
    for (long left = ms; left > 0 && !atomic_load(&L.stop); left -= 50)
        nanosleep(&(struct timespec){ .tv_nsec = 50000000L }, NULL);
}

static void *cache_listen_main(void *arg)
{
    (void)arg;
    long retry = LISTEN_RETRY_MIN_MS;
    bool warned = false;
    while (!atomic_load(&L.stop)) {
        char err[512];
        PGconn *pg = db_connect_once(L.url, L.connect_timeout_s, "ratesd-cache", err, sizeof err);
        int64_t v = 0;
        if (pg) {
            cache_listen_keepalive(pg);
            v = cache_listen_subscribe(pg);
            if (v <= 0)
                str_copy(err, sizeof err, PQerrorMessage(pg));
        }
        if (v > 0) {
            cache_set_live(L.cache, true, v);
            LOG_INFO("cache: listening for data versions (at %lld)", (long long)v);
            warned = false;
            retry = LISTEN_RETRY_MIN_MS;
            cache_listen_serve(pg);
            cache_set_live(L.cache, false, 0);
            if (!atomic_load(&L.stop))
                LOG_WARN("cache: listener connection lost; cache dropped until it is back");
        } else if (!warned) {
            LOG_WARN("cache: cannot listen for data versions, not caching: %s", err);
            warned = true;
        }
        if (pg)
            PQfinish(pg);
        cache_listen_sleep(retry);
        retry = retry * 2 > LISTEN_RETRY_MAX_MS ? LISTEN_RETRY_MAX_MS : retry * 2;
    }
    return NULL;
}

int cache_listen_start(struct cache *c, const char *url, long connect_timeout_s)
{
    L.cache = c;
    L.url = strdup(url ? url : "");
    L.connect_timeout_s = connect_timeout_s;
    atomic_store(&L.stop, false);
    if (!L.url || pthread_create(&L.thread, NULL, cache_listen_main, NULL) != 0) {
        free(L.url);
        L.url = NULL;
        return -1;
    }
    L.started = true;
    return 0;
}

void cache_listen_stop(void)
{
    if (!L.started)
        return;
    atomic_store(&L.stop, true);
    pthread_join(L.thread, NULL);
    L.started = false;
    free(L.url);
    L.url = NULL;
}
