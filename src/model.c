/* model.c: the read model's store: node-pair series, copy-on-write apply, locked reads. */
#include "model.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PAIR_EMPTY UINT64_MAX

/* A series lives in `rows` (exactly len rows, never written after it is published). */
struct pair_slot {
    uint64_t key; /* orig << 32 | dest, or PAIR_EMPTY */
    struct model_row *rows;
    uint32_t len;
};

struct model {
    pthread_rwlock_t lock; /* readers; the publish step of an apply or a replace writes */
    pthread_mutex_t apply; /* one applier at a time */
    /* Written only under `lock` held for writing (and `apply`); read under either. */
    struct model_nodes *nodes;
    struct pair_slot *slots;
    size_t nslots; /* a power of two, at most 3/4 used */
    size_t npairs;
    size_t keys;
    uint64_t version;
};

static struct pair_slot *slots_new(size_t n)
{
    struct pair_slot *s = malloc(n * sizeof *s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = (struct pair_slot){ .key = PAIR_EMPTY };
    return s;
}

/* The slot of key in slots, or the empty slot where it would go. */
static struct pair_slot *slots_find(struct pair_slot *slots, size_t nslots, uint64_t key)
{
    size_t mask = nslots - 1;
    for (size_t i = model_pair_hash(key) & mask;; i = (i + 1) & mask)
        if (slots[i].key == key || slots[i].key == PAIR_EMPTY)
            return &slots[i];
}

struct model *model_new(struct model_nodes *nodes, uint64_t version)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        model_nodes_free(nodes);
        return NULL;
    }
    m->nslots = 1024;
    m->slots = slots_new(m->nslots);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Readers are many and short; an apply publishes in well under a millisecond. Without
     * writer preference a steady stream of readers could starve the publish. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&m->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (!m->slots || rc != 0) {
        free(m->slots);
        free(m);
        model_nodes_free(nodes);
        return NULL;
    }
    pthread_mutex_init(&m->apply, NULL);
    m->nodes = nodes;
    m->version = version;
    return m;
}

static void model_free_contents(struct model *m)
{
    for (size_t i = 0; i < m->nslots; i++)
        free(m->slots[i].rows);
    free(m->slots);
    model_nodes_free(m->nodes);
}

void model_free(struct model *m)
{
    if (!m)
        return;
    model_free_contents(m);
    pthread_rwlock_destroy(&m->lock);
    pthread_mutex_destroy(&m->apply);
    free(m);
}

/* ---- apply ---------------------------------------------------------------------------- */

/* What one apply accumulates for one node pair: the changed days, ascending, combined. */
struct pending_row {
    int32_t day;
    int64_t n, sum;
};
struct pending {
    uint64_t key;
    struct pending_row *rows;
    size_t len, cap;
    struct model_row *merged; /* the new series, built before the publish */
    uint32_t merged_len;
    long keys_delta;
};

/* Temporary table: pair key -> index into the pending list (+1; 0 = empty). */
struct pending_set {
    struct pending *list;
    size_t len, cap;
    uint32_t *index;
    size_t nindex;
};

static void pending_set_free(struct pending_set *p)
{
    for (size_t i = 0; i < p->len; i++) {
        free(p->list[i].rows);
        free(p->list[i].merged);
    }
    free(p->list);
    free(p->index);
}

static int pending_grow_index(struct pending_set *p)
{
    size_t n = p->nindex ? p->nindex * 2 : 256;
    uint32_t *index = calloc(n, sizeof *index);
    if (!index)
        return -1;
    for (size_t i = 0; i < p->len; i++) {
        size_t j = model_pair_hash(p->list[i].key) & (n - 1);
        while (index[j])
            j = (j + 1) & (n - 1);
        index[j] = (uint32_t)i + 1;
    }
    free(p->index);
    p->index = index;
    p->nindex = n;
    return 0;
}

static struct pending *pending_get(struct pending_set *p, uint64_t key)
{
    if ((p->len + 1) * 4 > p->nindex * 3 && pending_grow_index(p) != 0)
        return NULL;
    size_t mask = p->nindex - 1;
    size_t j = model_pair_hash(key) & mask;
    for (; p->index[j]; j = (j + 1) & mask)
        if (p->list[p->index[j] - 1].key == key)
            return &p->list[p->index[j] - 1];
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct pending *list = realloc(p->list, cap * sizeof *list);
        if (!list)
            return NULL;
        p->list = list;
        p->cap = cap;
    }
    p->list[p->len] = (struct pending){ .key = key };
    p->index[j] = (uint32_t)p->len + 1;
    return &p->list[p->len++];
}

/* Adds one change to a pair's pending rows. Changes arrive in nondecreasing day order (the
 * deltas are sorted by day first), so a repeat of the last day is combined in place and the
 * rows stay sorted without a sort of their own. */
static int pending_add(struct pending *pe, int32_t day, int64_t n, int64_t sum)
{
    if (pe->len && pe->rows[pe->len - 1].day == day) {
        pe->rows[pe->len - 1].n += n;
        pe->rows[pe->len - 1].sum += sum;
        return 0;
    }
    if (pe->len == pe->cap) {
        size_t cap = pe->cap ? pe->cap * 2 : 8;
        struct pending_row *rows = realloc(pe->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        pe->rows = rows;
        pe->cap = cap;
    }
    pe->rows[pe->len++] = (struct pending_row){ .day = day, .n = n, .sum = sum };
    return 0;
}

static int delta_cmp(const void *a, const void *b)
{
    const struct model_delta *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    if (x->orig != y->orig)
        return x->orig < y->orig ? -1 : 1;
    return (x->dest > y->dest) - (x->dest < y->dest);
}

/* Merges a pair's published series with its pending changes into pe->merged. Keys whose
 * count falls to 0 go; a count below 0 or past UINT32_MAX, or a sum that overflows, means
 * the changes do not belong to this model. */
static enum model_status pending_merge(struct pending *pe, const struct model_row *old,
                                       uint32_t old_len)
{
    size_t cap = (size_t)old_len + pe->len;
    if (cap > UINT32_MAX)
        return MODEL_NOMEM;
    struct model_row *out = malloc((cap ? cap : 1) * sizeof *out);
    if (!out)
        return MODEL_NOMEM;
    size_t i = 0, j = 0, k = 0;
    long keys = 0;
    while (i < old_len || j < pe->len) {
        if (j == pe->len || (i < old_len && old[i].day < pe->rows[j].day)) {
            out[k++] = old[i++];
            continue;
        }
        const struct pending_row *c = &pe->rows[j++];
        int64_t n = c->n, sum = c->sum;
        bool had = i < old_len && old[i].day == c->day;
        if (had) {
            n += old[i].n;
            if (__builtin_add_overflow(sum, old[i].sum, &sum)) {
                free(out);
                return MODEL_NEGATIVE;
            }
            i++;
        }
        if (n < 0 || n > (int64_t)UINT32_MAX || (n == 0 && sum != 0)) {
            free(out);
            return MODEL_NEGATIVE;
        }
        if (n == 0) {
            keys -= had;
            continue;
        }
        keys += !had;
        out[k++] = (struct model_row){ .day = c->day, .n = (uint32_t)n, .sum = sum };
    }
    if (k == 0) {
        free(out);
        out = NULL;
    } else if (k < cap) {
        struct model_row *shrunk = realloc(out, k * sizeof *out);
        if (shrunk)
            out = shrunk;
    }
    pe->merged = out;
    pe->merged_len = (uint32_t)k;
    pe->keys_delta = keys;
    return MODEL_OK;
}

/* Publishes every pending pair's new series (under the write lock): pointer stores only, and
 * a rehash when the pair table must grow. The old series are returned in pe->merged for the
 * caller to free after the lock is released. */
static enum model_status model_publish(struct model *m, struct pending_set *ps, uint64_t version)
{
    size_t need = m->npairs + ps->len; /* at most one new pair each */
    size_t nslots = m->nslots;
    while (need * 4 > nslots * 3)
        nslots *= 2;
    struct pair_slot *grown = NULL;
    if (nslots != m->nslots && !(grown = slots_new(nslots)))
        return MODEL_NOMEM;

    pthread_rwlock_wrlock(&m->lock);
    if (grown) {
        for (size_t i = 0; i < m->nslots; i++)
            if (m->slots[i].key != PAIR_EMPTY)
                *slots_find(grown, nslots, m->slots[i].key) = m->slots[i];
        free(m->slots);
        m->slots = grown;
        m->nslots = nslots;
    }
    for (size_t i = 0; i < ps->len; i++) {
        struct pending *pe = &ps->list[i];
        struct pair_slot *s = slots_find(m->slots, m->nslots, pe->key);
        if (s->key == PAIR_EMPTY) {
            s->key = pe->key;
            s->rows = NULL;
            s->len = 0;
            m->npairs++;
        }
        struct model_row *old = s->rows;
        s->rows = pe->merged;
        s->len = pe->merged_len;
        pe->merged = old; /* freed by the caller, outside the lock */
        m->keys = (size_t)((long)m->keys + pe->keys_delta);
    }
    m->version = version;
    pthread_rwlock_unlock(&m->lock);
    return MODEL_OK;
}

enum model_status model_apply(struct model *m, struct model_delta *d, size_t count,
                              uint64_t version)
{
    pthread_mutex_lock(&m->apply);
    enum model_status st = MODEL_OK;
    struct pending_set ps = { 0 };
    if (count > 1)
        qsort(d, count, sizeof *d, delta_cmp);
    /* Expand: every delta counts for every (orig node, dest node) pair of its ports. */
    for (size_t i = 0; i < count && st == MODEL_OK; i++) {
        size_t no, nd;
        const uint32_t *on = model_nodes_of(m->nodes, d[i].orig, &no);
        const uint32_t *dn = model_nodes_of(m->nodes, d[i].dest, &nd);
        if (no == 0 || nd == 0) {
            st = MODEL_UNKNOWN_PORT;
            break;
        }
        for (size_t a = 0; a < no && st == MODEL_OK; a++)
            for (size_t b = 0; b < nd; b++) {
                struct pending *pe = pending_get(&ps, model_pair_key(on[a], dn[b]));
                if (!pe || pending_add(pe, d[i].day, d[i].n, d[i].sum) != 0) {
                    st = MODEL_NOMEM;
                    break;
                }
            }
    }
    /* Build every new series with no lock held: readers go on reading the published ones,
     * which only this thread replaces. */
    for (size_t i = 0; i < ps.len && st == MODEL_OK; i++) {
        struct pending *pe = &ps.list[i];
        struct pair_slot *s = slots_find(m->slots, m->nslots, pe->key);
        st = s->key == PAIR_EMPTY ? pending_merge(pe, NULL, 0) : pending_merge(pe, s->rows, s->len);
    }
    if (st == MODEL_OK)
        st = model_publish(m, &ps, version);
    pthread_mutex_unlock(&m->apply);
    pending_set_free(&ps); /* after a publish: the replaced series */
    return st;
}

enum model_status model_adopt(struct model *m, uint32_t orig, uint32_t dest, struct model_row *rows,
                              uint32_t len)
{
    if ((m->npairs + 1) * 4 > m->nslots * 3) {
        size_t nslots = m->nslots * 2;
        struct pair_slot *grown = slots_new(nslots);
        if (!grown) {
            free(rows);
            return MODEL_NOMEM;
        }
        for (size_t i = 0; i < m->nslots; i++)
            if (m->slots[i].key != PAIR_EMPTY)
                *slots_find(grown, nslots, m->slots[i].key) = m->slots[i];
        free(m->slots);
        m->slots = grown;
        m->nslots = nslots;
    }
    struct pair_slot *s = slots_find(m->slots, m->nslots, model_pair_key(orig, dest));
    *s = (struct pair_slot){ .key = model_pair_key(orig, dest), .rows = rows, .len = len };
    m->npairs++;
    m->keys += len;
    return MODEL_OK;
}

void model_replace(struct model *into, struct model *from)
{
    pthread_mutex_lock(&into->apply);
    pthread_rwlock_wrlock(&into->lock);
    struct model old = { .slots = into->slots, .nslots = into->nslots, .nodes = into->nodes };
    into->slots = from->slots;
    into->nslots = from->nslots;
    into->npairs = from->npairs;
    into->keys = from->keys;
    into->nodes = from->nodes;
    into->version = from->version;
    pthread_rwlock_unlock(&into->lock);
    pthread_mutex_unlock(&into->apply);
    model_free_contents(&old);
    pthread_rwlock_destroy(&from->lock);
    pthread_mutex_destroy(&from->apply);
    free(from);
}

/* ---- read ----------------------------------------------------------------------------- */

size_t model_read(struct model *m, const char *orig, size_t orig_len, const char *dest,
                  size_t dest_len, int32_t from, int32_t to, struct model_row *out, size_t cap,
                  uint64_t *version, bool *known)
{
    size_t k = 0;
    pthread_rwlock_rdlock(&m->lock);
    *version = m->version;
    int64_t o = model_nodes_find(m->nodes, orig, orig_len);
    int64_t t = o < 0 ? -1 : model_nodes_find(m->nodes, dest, dest_len);
    *known = o >= 0 && t >= 0;
    if (*known) {
        const struct pair_slot *s =
            slots_find(m->slots, m->nslots, model_pair_key((uint32_t)o, (uint32_t)t));
        if (s->key != PAIR_EMPTY) {
            /* First row with day >= from. */
            size_t lo = 0, hi = s->len;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->rows[mid].day < from)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t i = lo; i < s->len && s->rows[i].day <= to && k < cap; i++)
                out[k++] = s->rows[i];
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return k;
}

int64_t model_port_id(const struct model *m, const char *code, size_t len)
{
    return model_nodes_find(m->nodes, code, len);
}

uint64_t model_version(struct model *m)
{
    pthread_rwlock_rdlock(&m->lock);
    uint64_t v = m->version;
    pthread_rwlock_unlock(&m->lock);
    return v;
}

void model_stats(struct model *m, struct model_stats *out)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t bytes = sizeof *m + m->nslots * sizeof *m->slots + model_nodes_bytes(m->nodes);
    for (size_t i = 0; i < m->nslots; i++)
        bytes += (size_t)m->slots[i].len * sizeof(struct model_row);
    *out = (struct model_stats){
        .version = m->version, .keys = m->keys, .pairs = m->npairs, .bytes = bytes
    };
    pthread_rwlock_unlock(&m->lock);
}
