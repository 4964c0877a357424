/* cache.c: the response cache: a chained hash table, a CLOCK ring for eviction, a list of
 * fills in progress (single flight), all under one mutex. See cache.h for the contract. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_BUCKETS 4096

struct cache_entry {
    struct cache_entry *next;                  /* hash chain */
    struct cache_entry *ring_prev, *ring_next; /* CLOCK ring */
    char *key;                                 /* owned */
    char *body, *gz;                           /* owned; gz may be NULL */
    size_t len, gzlen, cost;
    int64_t version;
    uint64_t gen;
    bool referenced;
};

struct cache_flight {
    struct cache_flight *next;
    char key[CACHE_KEY_MAX + 1];
    int waiters;
    bool done;
};

struct cache {
    pthread_mutex_t mu;
    pthread_cond_t filled;
    size_t max_bytes, bytes, entries;
    struct cache_entry *buckets[CACHE_BUCKETS];
    struct cache_entry *hand; /* the CLOCK hand: NULL when the ring is empty */
    struct cache_flight *flights;
    uint64_t gen;
    int64_t version;
    bool live;
    bool need_primary; /* a local write: fills read the primary until one has ended */
    uint64_t hits, misses, evictions, fills, invalidations, resets, waits, stale_skips;
};

uint64_t cache_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

struct cache *cache_new(size_t max_bytes)
{
    struct cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->filled, &ca);
    pthread_condattr_destroy(&ca);
    c->max_bytes = max_bytes;
    c->gen = 1;
    return c;
}

static void cache_entry_free(struct cache_entry *e)
{
    free(e->key);
    free(e->body);
    free(e->gz);
    free(e);
}

/* Unlinks e from its chain and the ring and frees it. Under mu. */
static void cache_remove(struct cache *c, struct cache_entry *e)
{
    struct cache_entry **pp = &c->buckets[cache_hash(e->key) % CACHE_BUCKETS];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    if (e->ring_next == e) {
        c->hand = NULL;
    } else {
        e->ring_prev->ring_next = e->ring_next;
        e->ring_next->ring_prev = e->ring_prev;
        if (c->hand == e)
            c->hand = e->ring_next;
    }
    c->bytes -= e->cost;
    c->entries--;
    cache_entry_free(e);
}

static void cache_clear(struct cache *c)
{
    while (c->hand)
        cache_remove(c, c->hand);
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    cache_clear(c);
    while (c->flights) {
        struct cache_flight *f = c->flights;
        c->flights = f->next;
        free(f);
    }
    pthread_cond_destroy(&c->filled);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct cache_entry *cache_find(struct cache *c, const char *key)
{
    for (struct cache_entry *e = c->buckets[cache_hash(key) % CACHE_BUCKETS]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static bool cache_valid(const struct cache *c, const struct cache_entry *e)
{
    return c->live && e->gen == c->gen && e->version >= c->version;
}

static bool cache_lookup(struct cache *c, const char *key, bool gzip, char **body, size_t *len,
                         bool *gz, int64_t *version, bool count_miss)
{
    pthread_mutex_lock(&c->mu);
    struct cache_entry *e = cache_find(c, key);
    if (e && !cache_valid(c, e)) {
        cache_remove(c, e);
        e = NULL;
    }
    bool hit = false;
    if (e) {
        bool use_gz = gzip && e->gz;
        size_t n = use_gz ? e->gzlen : e->len;
        char *copy = malloc(n + 1);
        if (copy) {
            memcpy(copy, use_gz ? e->gz : e->body, n);
            copy[n] = '\0';
            *body = copy;
            *len = n;
            *gz = use_gz;
            *version = e->version;
            e->referenced = true;
            hit = true;
        }
    }
    if (hit)
        c->hits++;
    else if (count_miss)
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

bool cache_get(struct cache *c, const char *key, bool gzip, char **body, size_t *len, bool *gz,
               int64_t *version)
{
    return cache_lookup(c, key, gzip, body, len, gz, version, true);
}

bool cache_get_again(struct cache *c, const char *key, bool gzip, char **body, size_t *len,
                     bool *gz, int64_t *version)
{
    return cache_lookup(c, key, gzip, body, len, gz, version, false);
}

int64_t cache_version(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t v = c->live ? c->version : 0;
    pthread_mutex_unlock(&c->mu);
    return v;
}

static struct cache_flight *cache_flight_find(struct cache *c, const char *key)
{
    for (struct cache_flight *f = c->flights; f; f = f->next)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

bool cache_fill_begin(struct cache *c, const char *key, long wait_ms, struct cache_ticket *t)
{
    str_copy(t->key, sizeof t->key, key);
    pthread_mutex_lock(&c->mu);
    t->gen = c->gen;
    t->leader = true;
    t->primary = false;
    struct cache_flight *f = cache_flight_find(c, key);
    if (!f) {
        f = calloc(1, sizeof *f);
        if (f) {
            str_copy(f->key, sizeof f->key, key);
            f->next = c->flights;
            c->flights = f;
        }
        pthread_mutex_unlock(&c->mu);
        return true;
    }
    if (f->waiters >= CACHE_WAITERS_MAX || wait_ms <= 0) {
        pthread_mutex_unlock(&c->mu);
        t->gen = 0; /* not the flight's leader: stores nothing */
        return true;
    }
    /* Wait for this flight (the struct stays until its last waiter leaves). */
    struct timespec until = clock_after_ms(CLOCK_MONOTONIC, wait_ms);
    f->waiters++;
    c->waits++;
    while (!f->done) {
        if (pthread_cond_timedwait(&c->filled, &c->mu, &until) == ETIMEDOUT)
            break;
    }
    f->waiters--;
    if (f->done && f->waiters == 0) {
        struct cache_flight **pp = &c->flights;
        while (*pp && *pp != f)
            pp = &(*pp)->next;
        if (*pp)
            *pp = f->next;
        free(f);
    }
    pthread_mutex_unlock(&c->mu);
    t->leader = false;
    return false;
}

/* Makes room for cost bytes by CLOCK: a referenced entry gets a second chance. Under mu. */
static void cache_evict_for(struct cache *c, size_t cost)
{
    while (c->hand && c->bytes + cost > c->max_bytes) {
        struct cache_entry *e = c->hand;
        if (e->referenced && cache_valid(c, e)) {
            e->referenced = false;
            c->hand = e->ring_next;
            continue;
        }
        cache_remove(c, e);
        c->evictions++;
    }
}

static void cache_store(struct cache *c, const struct cache_ticket *t, const char *body, size_t len,
                        const char *gz, size_t gzlen, int64_t version)
{
    size_t cost = sizeof(struct cache_entry) + strlen(t->key) + 1 + len + gzlen;
    if (!body || t->gen != c->gen || !c->live || version < c->version || cost > c->max_bytes ||
        (c->need_primary && !t->primary)) {
        c->stale_skips += body && c->max_bytes > 0;
        return;
    }
    if (version > c->version)
        c->version = version;
    if (t->primary)
        c->need_primary = false;
    struct cache_entry *old = cache_find(c, t->key);
    if (old)
        cache_remove(c, old);
    cache_evict_for(c, cost);
    struct cache_entry *e = calloc(1, sizeof *e);
    if (!e)
        return;
    e->key = strdup(t->key);
    e->body = malloc(len + 1);
    e->gz = gz ? malloc(gzlen + 1) : NULL;
    if (!e->key || !e->body || (gz && !e->gz)) {
        cache_entry_free(e);
        return;
    }
    memcpy(e->body, body, len);
    e->body[len] = '\0';
    if (gz)
        memcpy(e->gz, gz, gzlen);
    e->len = len;
    e->gzlen = gz ? gzlen : 0;
    e->cost = cost;
    e->version = version;
    e->gen = c->gen;
    size_t b = cache_hash(t->key) % CACHE_BUCKETS;
    e->next = c->buckets[b];
    c->buckets[b] = e;
    if (!c->hand) {
        e->ring_next = e->ring_prev = e;
        c->hand = e;
    } else { /* just behind the hand: the last to be looked at */
        e->ring_next = c->hand;
        e->ring_prev = c->hand->ring_prev;
        c->hand->ring_prev->ring_next = e;
        c->hand->ring_prev = e;
    }
    c->bytes += cost;
    c->entries++;
    c->fills++;
}

void cache_fill_end(struct cache *c, const struct cache_ticket *t, const char *body, size_t len,
                    const char *gz, size_t gzlen, int64_t version)
{
    if (!t->leader)
        return;
    pthread_mutex_lock(&c->mu);
    if (t->gen != 0)
        cache_store(c, t, body, len, gz, gzlen, version);
    struct cache_flight **pp = &c->flights;
    while (*pp && strcmp((*pp)->key, t->key) != 0)
        pp = &(*pp)->next;
    struct cache_flight *f = *pp;
    if (f && t->gen != 0) {
        f->done = true;
        *pp = f->next; /* a new miss starts a new flight */
        if (f->waiters == 0)
            free(f);
        else
            pthread_cond_broadcast(&c->filled);
    }
    pthread_mutex_unlock(&c->mu);
}

void cache_invalidate(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    c->gen++;
    c->invalidations++;
    c->need_primary = true;
    cache_clear(c);
    pthread_mutex_unlock(&c->mu);
}

bool cache_needs_primary(struct cache *c)
{
    pthread_mutex_lock(&c->mu);
    bool v = c->need_primary;
    pthread_mutex_unlock(&c->mu);
    return v;
}

void cache_fill_primary(struct cache_ticket *t)
{
    t->primary = true;
}

void cache_note_version(struct cache *c, int64_t version)
{
    pthread_mutex_lock(&c->mu);
    if (version > c->version)
        c->version = version;
    pthread_mutex_unlock(&c->mu);
}

void cache_set_live(struct cache *c, bool live, int64_t version)
{
    pthread_mutex_lock(&c->mu);
    if (c->live && !live)
        c->resets++;
    c->live = live;
    c->gen++;
    cache_clear(c);
    /* Going live: exactly the version read after LISTEN, even if lower than before (a
     * failover to a standby that had not received the last commits): nothing older than it
     * is left in the cache, and a higher stale mark would refuse every fill. */
    if (live)
        c->version = version;
    pthread_mutex_unlock(&c->mu);
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = (struct cache_stats){
        .hits = c->hits,
        .misses = c->misses,
        .evictions = c->evictions,
        .fills = c->fills,
        .invalidations = c->invalidations,
        .resets = c->resets,
        .waits = c->waits,
        .stale_skips = c->stale_skips,
        .bytes = c->bytes,
        .entries = c->entries,
        .max_bytes = c->max_bytes,
        .version = c->live ? c->version : 0,
        .live = c->live,
    };
    pthread_mutex_unlock(&c->mu);
}
