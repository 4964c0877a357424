/* cache.c: the response cache: a chained hash table under a per-process SipHash key (clients
 * choose the keys: without the key nobody can aim them at one chain), grown as it fills,
 * doubly linked so that a removal is O(1); a CLOCK ring for eviction; an admission filter for
 * large answers; a list of fills in progress (single flight); all under one mutex. A clear
 * detaches everything under the mutex in O(buckets) and frees it after. See cache.h. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "siphash.h"

#define CACHE_BUCKETS_MIN 1024 /* grows by doubling while entries > buckets */
/* Admission: an answer that would take more than 1/CACHE_LARGE_DIV of the cache and more than
 * CACHE_LARGE_MIN bytes is stored only when the same key was filled before (a flood of
 * one-off huge answers, such as 100-year spans, cannot flush everything). */
#define CACHE_LARGE_DIV 64
#define CACHE_LARGE_MIN 65536
#define CACHE_SEEN 4096 /* keyed hashes of large misses remembered (a direct-mapped table) */

struct cache_entry {
    struct cache_entry *next, *prev;           /* hash chain (prev NULL: the bucket's head) */
    uint64_t h;                                /* keyed hash of key */
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
    struct cache_entry **buckets; /* nbuckets chains, a power of two */
    size_t nbuckets;
    uint8_t key[SIPHASH_KEY_BYTES]; /* per process, for the table only (never the ETag) */
    uint64_t seen[CACHE_SEEN];      /* large misses: keyed hash | 1, 0 = empty */
    struct cache_entry *hand;       /* the CLOCK hand: NULL when the ring is empty */
    struct cache_flight *flights;
    uint64_t gen;
    int64_t version;
    bool live;
    bool need_primary; /* a local write: fills read the primary until one has ended */
    uint64_t hits, misses, evictions, fills, invalidations, resets, waits, stale_skips;
    uint64_t admission_skips;
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

static uint64_t cache_keyed(const struct cache *c, const char *key)
{
    return siphash24(c->key, key, strlen(key));
}

static struct cache_entry **cache_bucket(const struct cache *c, uint64_t h)
{
    return &c->buckets[h & (c->nbuckets - 1)];
}

/* The table's key: random bytes, or (no getrandom) the clock and the pid, which an attacker
 * outside the host does not know either. */
static void cache_seed(struct cache *c)
{
    if (getrandom(c->key, sizeof c->key, GRND_NONBLOCK) == (ssize_t)sizeof c->key)
        return;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t a = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^ (uint64_t)getpid() << 48;
    uint64_t b = a * 0x9e3779b97f4a7c15ull ^ (uintptr_t)c;
    memcpy(c->key, &a, 8);
    memcpy(c->key + 8, &b, 8);
}

struct cache *cache_new(size_t max_bytes)
{
    struct cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nbuckets = CACHE_BUCKETS_MIN;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    cache_seed(c);
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

/* Unlinks e from its chain and the ring, O(1). Under mu. */
static void cache_unlink(struct cache *c, struct cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        *cache_bucket(c, e->h) = e->next;
    if (e->next)
        e->next->prev = e->prev;
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
}

static void cache_remove(struct cache *c, struct cache_entry *e)
{
    cache_unlink(c, e);
    cache_entry_free(e);
}

/* Empties the table under mu in O(buckets) and returns the entries (a ring, or NULL) for
 * cache_ring_free() after the mutex is released: HTTP threads wait for no free(). */
static struct cache_entry *cache_detach(struct cache *c)
{
    struct cache_entry *ring = c->hand;
    memset(c->buckets, 0, c->nbuckets * sizeof *c->buckets);
    c->hand = NULL;
    c->bytes = 0;
    c->entries = 0;
    return ring;
}

static void cache_ring_free(struct cache_entry *ring)
{
    if (!ring)
        return;
    ring->ring_prev->ring_next = NULL; /* cut the circle */
    while (ring) {
        struct cache_entry *next = ring->ring_next;
        cache_entry_free(ring);
        ring = next;
    }
}

/* Doubles the table while entries outnumber buckets (a failed allocation keeps it). */
static void cache_grow(struct cache *c)
{
    if (c->entries <= c->nbuckets || c->nbuckets > SIZE_MAX / 4 / sizeof *c->buckets)
        return;
    size_t n = c->nbuckets * 2;
    struct cache_entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct cache_entry *e = c->buckets[i];
        while (e) {
            struct cache_entry *next = e->next;
            struct cache_entry **head = &b[e->h & (n - 1)];
            e->prev = NULL;
            e->next = *head;
            if (*head)
                (*head)->prev = e;
            *head = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    cache_ring_free(cache_detach(c));
    free(c->buckets);
    while (c->flights) {
        struct cache_flight *f = c->flights;
        c->flights = f->next;
        free(f);
    }
    pthread_cond_destroy(&c->filled);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct cache_entry *cache_find(struct cache *c, const char *key, uint64_t h)
{
    for (struct cache_entry *e = *cache_bucket(c, h); e; e = e->next)
        if (e->h == h && strcmp(e->key, key) == 0)
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
    uint64_t h = cache_keyed(c, key);
    pthread_mutex_lock(&c->mu);
    struct cache_entry *e = cache_find(c, key, h);
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
    uint64_t h = cache_keyed(c, t->key);
    if (cost > c->max_bytes / CACHE_LARGE_DIV && cost > CACHE_LARGE_MIN) {
        uint64_t *seen = &c->seen[h % CACHE_SEEN];
        if (*seen != (h | 1)) { /* first time: remember, store nothing */
            *seen = h | 1;
            c->admission_skips++;
            return;
        }
    }
    struct cache_entry *old = cache_find(c, t->key, h);
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
    e->h = h;
    struct cache_entry **head = cache_bucket(c, h);
    e->next = *head;
    if (*head)
        (*head)->prev = e;
    *head = e;
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
    cache_grow(c);
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
    struct cache_entry *ring = cache_detach(c);
    pthread_mutex_unlock(&c->mu);
    cache_ring_free(ring);
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
    struct cache_entry *ring = cache_detach(c);
    /* Going live: exactly the version read after LISTEN, even if lower than before (a
     * failover to a standby that had not received the last commits): nothing older than it
     * is left in the cache, and a higher stale mark would refuse every fill. */
    if (live)
        c->version = version;
    pthread_mutex_unlock(&c->mu);
    cache_ring_free(ring);
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
        .admission_skips = c->admission_skips,
        .buckets = c->nbuckets,
        .bytes = c->bytes,
        .entries = c->entries,
        .max_bytes = c->max_bytes,
        .version = c->live ? c->version : 0,
        .live = c->live,
    };
    pthread_mutex_unlock(&c->mu);
}
