/* model_build.c: a whole read model from raw prices (model_build.h). Bounds: every window
 * index is checked against its length; days are widened in 64 bits and clamped to int32. */
#include "model_build.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BUILD_EMPTY UINT64_MAX
#define BUILD_FIRST_DAYS 32     /* a new pair's window */
#define BUILD_DENSE_MIN 1024    /* a window may always reach this many days */
#define BUILD_DENSE_PER_PRICE 4 /* beyond it, at most this many days per price added */
#define BUILD_SPARSE_FIRST 16   /* a list's first size */
#define BUILD_QUEUE 256         /* prices queued before their cells are touched */

struct build_pair {
    uint64_t key;           /* model_pair_key(), or BUILD_EMPTY */
    struct model_row *rows; /* dense: the window, one row per day (day set by finish) */
    int32_t base;           /* dense: the day of rows[0] */
    uint32_t len;           /* dense: the window's days; sparse: rows in use */
    uint32_t cap;           /* sparse: rows allocated */
    bool sparse;
    uint64_t adds; /* prices added */
};

/* A price waiting in the queue: its port pair's key, day and price. */
struct build_queued {
    uint64_t key;
    int32_t day;
    int64_t price;
};

struct model_build {
    struct model_nodes *nodes;
    /* Prices go through a queue: each flush prefetches the table slots and then the window
     * cells of BUILD_QUEUE prices before it adds any, so that their cache misses overlap
     * (one at a time, the misses were 94 % of the build: perf annotate, 10 M prices). */
    struct build_queued queue[BUILD_QUEUE];
    size_t queued;
    struct build_pair *pairs;
    size_t npairs_slots; /* a power of two, at most 3/4 used */
    size_t npairs;
    size_t bytes; /* rows allocated, in bytes (the table is added by model_build_bytes()) */
};

static struct build_pair *pairs_new(size_t n)
{
    struct build_pair *p = malloc(n * sizeof *p);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = (struct build_pair){ .key = BUILD_EMPTY };
    return p;
}

static struct build_pair *pairs_find(struct build_pair *pairs, size_t n, uint64_t key)
{
    size_t mask = n - 1;
    for (size_t i = model_pair_hash(key) & mask;; i = (i + 1) & mask)
        if (pairs[i].key == key || pairs[i].key == BUILD_EMPTY)
            return &pairs[i];
}

struct model_build *model_build_new(struct model_nodes *nodes)
{
    struct model_build *b = calloc(1, sizeof *b);
    if (b) {
        b->npairs_slots = 1024;
        b->pairs = pairs_new(b->npairs_slots);
    }
    if (!b || !b->pairs) {
        free(b);
        model_nodes_free(nodes);
        return NULL;
    }
    b->nodes = nodes;
    return b;
}

void model_build_free(struct model_build *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->npairs_slots; i++)
        free(b->pairs[i].rows);
    free(b->pairs);
    model_nodes_free(b->nodes);
    free(b);
}

int64_t model_build_port(const struct model_build *b, const char *code, size_t len)
{
    return model_nodes_find(b->nodes, code, len);
}

size_t model_build_bytes(const struct model_build *b)
{
    return b->bytes + b->npairs_slots * sizeof *b->pairs;
}

/* The entry of key, made when it is new (the table grows first). NULL: out of memory. */
static struct build_pair *build_pair(struct model_build *b, uint64_t key)
{
    struct build_pair *p = pairs_find(b->pairs, b->npairs_slots, key);
    if (p->key == key)
        return p;
    if ((b->npairs + 1) * 4 > b->npairs_slots * 3) {
        size_t n = b->npairs_slots * 2;
        struct build_pair *grown = pairs_new(n);
        if (!grown)
            return NULL;
        for (size_t i = 0; i < b->npairs_slots; i++)
            if (b->pairs[i].key != BUILD_EMPTY)
                *pairs_find(grown, n, b->pairs[i].key) = b->pairs[i];
        free(b->pairs);
        b->pairs = grown;
        b->npairs_slots = n;
        p = pairs_find(b->pairs, n, key);
    }
    *p = (struct build_pair){ .key = key };
    b->npairs++;
    return p;
}

/* Adds one price to a row; MODEL_NEGATIVE when the count or the sum would leave its range. */
static enum model_status row_add(struct model_row *r, uint32_t n, int64_t sum)
{
    if (r->n > UINT32_MAX - n || __builtin_add_overflow(r->sum, sum, &r->sum))
        return MODEL_NEGATIVE;
    r->n += n;
    return MODEL_OK;
}

static int row_day_cmp(const void *a, const void *b)
{
    const struct model_row *x = a, *y = b;
    return (x->day > y->day) - (x->day < y->day);
}

/* Sorts a sparse list by day and combines each day's rows into one. */
static enum model_status sparse_compact(struct build_pair *p)
{
    if (p->len < 2)
        return MODEL_OK;
    qsort(p->rows, p->len, sizeof *p->rows, row_day_cmp);
    uint32_t k = 0;
    for (uint32_t i = 1; i < p->len; i++) {
        if (p->rows[i].day == p->rows[k].day) {
            if (row_add(&p->rows[k], p->rows[i].n, p->rows[i].sum) != MODEL_OK)
                return MODEL_NEGATIVE;
        } else {
            p->rows[++k] = p->rows[i];
        }
    }
    p->len = k + 1;
    return MODEL_OK;
}

/* A dense window's days with prices, moved to its front with their days set; returns how
 * many. */
static uint32_t dense_compact(struct build_pair *p)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->len; i++)
        if (p->rows[i].n) {
            p->rows[k] = p->rows[i];
            p->rows[k].day = (int32_t)((int64_t)p->base + i);
            k++;
        }
    return k;
}

/* Makes a dense pair sparse: its days with prices become the list. */
static enum model_status dense_to_sparse(struct model_build *b, struct build_pair *p)
{
    uint32_t k = dense_compact(p);
    uint32_t cap = k * 2 > BUILD_SPARSE_FIRST ? k * 2 : BUILD_SPARSE_FIRST;
    struct model_row *rows = malloc((size_t)cap * sizeof *rows);
    if (!rows)
        return MODEL_NOMEM;
    memcpy(rows, p->rows, (size_t)k * sizeof *rows);
    free(p->rows);
    b->bytes -= (size_t)p->len * sizeof *rows;
    b->bytes += (size_t)cap * sizeof *rows;
    p->rows = rows;
    p->len = k;
    p->cap = cap;
    p->sparse = true;
    return MODEL_OK;
}

static enum model_status sparse_add(struct model_build *b, struct build_pair *p, int32_t day,
                                    uint32_t n, int64_t sum)
{
    if (p->len == p->cap) {
        if (sparse_compact(p) != MODEL_OK)
            return MODEL_NEGATIVE;
        if (p->len == p->cap || p->len > p->cap / 2) {
            if (p->cap > UINT32_MAX / 2)
                return MODEL_NOMEM;
            uint32_t cap = p->cap ? p->cap * 2 : BUILD_SPARSE_FIRST;
            struct model_row *rows = realloc(p->rows, (size_t)cap * sizeof *rows);
            if (!rows)
                return MODEL_NOMEM;
            b->bytes += (size_t)(cap - p->cap) * sizeof *rows;
            p->rows = rows;
            p->cap = cap;
        }
    }
    p->rows[p->len++] = (struct model_row){ .day = day, .n = n, .sum = sum };
    return MODEL_OK;
}

/* Widens a dense window to take day (with room on that side), or makes the pair sparse
 * when the window would be too large for the prices it holds. */
static enum model_status dense_widen(struct model_build *b, struct build_pair *p, int32_t day)
{
    /* A new pair's first window (BUILD_FIRST_DAYS, below BUILD_DENSE_MIN), or the old one
     * widened to day with a quarter of room on that side. */
    int64_t lo = (int64_t)day - BUILD_FIRST_DAYS / 2, hi = (int64_t)day + BUILD_FIRST_DAYS / 2;
    if (p->len) {
        lo = day < p->base ? day : p->base;
        hi = (int64_t)p->base + p->len;
        if ((int64_t)day + 1 > hi)
            hi = (int64_t)day + 1;
        int64_t slack = (hi - lo) / 4 > 32 ? (hi - lo) / 4 : 32;
        if (day < p->base)
            lo -= slack;
        else
            hi += slack;
        uint64_t limit = p->adds * BUILD_DENSE_PER_PRICE;
        if (limit < BUILD_DENSE_MIN)
            limit = BUILD_DENSE_MIN;
        if ((uint64_t)(hi - lo) > limit)
            return dense_to_sparse(b, p);
    }
    lo = lo < INT32_MIN ? INT32_MIN : lo;
    hi = hi > (int64_t)INT32_MAX + 1 ? (int64_t)INT32_MAX + 1 : hi;
    struct model_row *rows = calloc((size_t)(hi - lo), sizeof *rows);
    if (!rows)
        return MODEL_NOMEM;
    if (p->len)
        memcpy(rows + (p->base - lo), p->rows, (size_t)p->len * sizeof *rows);
    free(p->rows);
    b->bytes += (size_t)((hi - lo) - p->len) * sizeof *rows;
    p->rows = rows;
    p->base = (int32_t)lo;
    p->len = (uint32_t)(hi - lo);
    return MODEL_OK;
}

/* n prices on day adding up to sum (adds: how many prices that is, for the density rule). */
static enum model_status pair_add(struct model_build *b, struct build_pair *p, int32_t day,
                                  uint32_t n, int64_t sum)
{
    enum model_status st = MODEL_OK;
    p->adds += n;
    if (!p->sparse && (day < p->base || (int64_t)day >= (int64_t)p->base + p->len))
        st = dense_widen(b, p, day);
    if (st == MODEL_OK)
        st = p->sparse ? sparse_add(b, p, day, n, sum)
                       : row_add(&p->rows[(int64_t)day - p->base], n, sum);
    return st;
}

/* Adds the queued prices: slots prefetched, pairs found (made), cells prefetched, then the
 * adds. A cell whose window moved meanwhile (an earlier price of the same pair widened it)
 * or that is not in its window goes the slow way, pair_add(). */
static enum model_status build_flush(struct model_build *b)
{
    size_t n = b->queued;
    struct build_pair *pairs[BUILD_QUEUE];
    struct model_row *cells[BUILD_QUEUE], *windows[BUILD_QUEUE];
    b->queued = 0;
    size_t mask = b->npairs_slots - 1;
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&b->pairs[model_pair_hash(b->queue[i].key) & mask]);
    size_t slots = b->npairs_slots;
    for (size_t i = 0; i < n; i++)
        if (!(pairs[i] = build_pair(b, b->queue[i].key)))
            return MODEL_NOMEM;
    if (slots != b->npairs_slots) /* the table grew: the earlier pointers moved */
        for (size_t i = 0; i < n; i++)
            pairs[i] = pairs_find(b->pairs, b->npairs_slots, b->queue[i].key);
    for (size_t i = 0; i < n; i++) {
        const struct build_pair *p = pairs[i];
        int64_t at = (int64_t)b->queue[i].day - p->base;
        cells[i] = !p->sparse && at >= 0 && at < (int64_t)p->len ? &p->rows[at] : NULL;
        windows[i] = p->rows;
        if (cells[i])
            __builtin_prefetch(cells[i], 1);
    }
    for (size_t i = 0; i < n; i++) {
        struct build_pair *p = pairs[i];
        enum model_status st;
        if (cells[i] && p->rows == windows[i]) {
            p->adds++;
            st = row_add(cells[i], 1, b->queue[i].price);
        } else {
            st = pair_add(b, p, b->queue[i].day, 1, b->queue[i].price);
        }
        if (st != MODEL_OK)
            return st;
    }
    return MODEL_OK;
}

/* A price goes to its port pair only (one random access, not one per node pair): the
 * regions' pairs are summed from the port pairs' series by build_expand(). */
enum model_status model_build_add(struct model_build *b, uint32_t orig, uint32_t dest, int32_t day,
                                  int64_t price)
{
    size_t no, nd;
    (void)model_nodes_of(b->nodes, orig, &no);
    (void)model_nodes_of(b->nodes, dest, &nd);
    if (no == 0 || nd == 0)
        return MODEL_UNKNOWN_PORT;
    b->queue[b->queued++] =
        (struct build_queued){ .key = model_pair_key(orig, dest), .day = day, .price = price };
    return b->queued == BUILD_QUEUE ? build_flush(b) : MODEL_OK;
}

/* Adds the series of the port pair `key` to every other node pair of its two ports: a
 * window's run of days to a dense window in one pass, anything else day by day. Looks the
 * source up again after each target is made, since making one may grow the table. */
static enum model_status build_expand_one(struct model_build *b, uint64_t key)
{
    size_t no, nd;
    const uint32_t *on = model_nodes_of(b->nodes, (uint32_t)(key >> 32), &no);
    const uint32_t *dn = model_nodes_of(b->nodes, (uint32_t)key, &nd);
    for (size_t i = 0; i < no; i++)
        for (size_t j = 0; j < nd; j++) {
            if (i == 0 && j == 0)
                continue; /* the port pair itself (a port is first among its nodes) */
            struct build_pair *t = build_pair(b, model_pair_key(on[i], dn[j]));
            if (!t)
                return MODEL_NOMEM;
            const struct build_pair *s = pairs_find(b->pairs, b->npairs_slots, key);
            uint32_t lo = 0, hi = s->len; /* the source's rows with prices: [lo, hi) */
            while (!s->sparse && lo < hi && s->rows[lo].n == 0)
                lo++;
            while (!s->sparse && hi > lo && s->rows[hi - 1].n == 0)
                hi--;
            if (lo == hi)
                continue;
            enum model_status st = MODEL_OK;
            if (!s->sparse && !t->sparse) {
                /* Widen for both ends first (the source cannot move: only t's rows do). */
                t->adds += s->adds;
                int32_t first = (int32_t)((int64_t)s->base + lo);
                int32_t last = (int32_t)((int64_t)s->base + hi - 1);
                if (first < t->base || (int64_t)first >= (int64_t)t->base + t->len)
                    st = dense_widen(b, t, first);
                if (st == MODEL_OK && !t->sparse &&
                    (last < t->base || (int64_t)last >= (int64_t)t->base + t->len))
                    st = dense_widen(b, t, last);
                if (st == MODEL_OK && !t->sparse) {
                    struct model_row *dst = t->rows + ((int64_t)first - t->base);
                    for (uint32_t k = lo; k < hi && st == MODEL_OK; k++)
                        if (s->rows[k].n)
                            st = row_add(&dst[k - lo], s->rows[k].n, s->rows[k].sum);
                    if (st != MODEL_OK)
                        return st;
                    continue;
                }
                t->adds -= s->adds; /* it turned sparse: counted again day by day below */
            }
            for (uint32_t k = lo; k < hi && st == MODEL_OK; k++) {
                const struct model_row *r = &s->rows[k];
                if (r->n)
                    st = pair_add(b, t, s->sparse ? r->day : (int32_t)((int64_t)s->base + k), r->n,
                                  r->sum);
            }
            if (st != MODEL_OK)
                return st;
        }
    return MODEL_OK;
}

/* Every port pair's series into the pairs with regions (the port pairs are all the pairs
 * there are before it runs). */
static enum model_status build_expand(struct model_build *b)
{
    size_t count = b->npairs, k = 0;
    uint64_t *keys = malloc((count ? count : 1) * sizeof *keys);
    if (!keys)
        return MODEL_NOMEM;
    for (size_t i = 0; i < b->npairs_slots; i++)
        if (b->pairs[i].key != BUILD_EMPTY)
            keys[k++] = b->pairs[i].key;
    enum model_status st = MODEL_OK;
    for (size_t i = 0; i < count && st == MODEL_OK; i++)
        st = build_expand_one(b, keys[i]);
    free(keys);
    return st;
}

enum model_status model_build_finish(struct model_build *b, uint64_t version, struct model **out)
{
    *out = NULL;
    enum model_status st = build_flush(b);
    if (st == MODEL_OK)
        st = build_expand(b);
    if (st != MODEL_OK) {
        model_build_free(b);
        return st;
    }
    struct model *m = model_new(b->nodes, version);
    b->nodes = NULL; /* the model's now, even when model_new() failed */
    st = m ? MODEL_OK : MODEL_NOMEM;
    for (size_t i = 0; i < b->npairs_slots && st == MODEL_OK; i++) {
        struct build_pair *p = &b->pairs[i];
        if (p->key == BUILD_EMPTY || !p->rows)
            continue;
        uint32_t k;
        if (p->sparse) {
            st = sparse_compact(p);
            k = p->len;
        } else {
            k = dense_compact(p);
        }
        if (st != MODEL_OK)
            break;
        struct model_row *rows = p->rows;
        p->rows = NULL;
        if (k == 0) {
            free(rows);
            continue;
        }
        struct model_row *shrunk = realloc(rows, (size_t)k * sizeof *rows);
        st = model_adopt(m, (uint32_t)(p->key >> 32), (uint32_t)p->key, shrunk ? shrunk : rows, k);
    }
    model_build_free(b);
    if (st != MODEL_OK) {
        model_free(m);
        return st;
    }
    *out = m;
    return MODEL_OK;
}
