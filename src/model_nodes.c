/* model_nodes.c: names interned in one arena with an open-addressing index, and each port's
 * node list in one array (compressed rows), built once by model_nodes_finish(). */
#include "model_nodes.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct edge {
    uint32_t code, node;
};

struct model_nodes {
    /* Names: NUL-terminated strings in `arena`; name i starts at off[i] (len[i] bytes). */
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *off, *len;
    size_t count, cap;
    /* Open addressing over name ids + 1 (0 = empty); size a power of two, at most half full. */
    uint32_t *index;
    size_t index_size;
    /* Edges while adding; after finish, id i's node list is list[first[i] .. + nlist[i]]. */
    struct edge *edges;
    size_t nedges, edges_cap;
    uint32_t *first; /* count entries: where id i's list starts in `list` */
    uint32_t *nlist; /* count entries: its length, 0 for a name that is not a port */
    uint32_t *list;
    size_t list_len;
    bool finished;
};

/* FNV-1a: the names are the database's own (ports and regions), never a client's, so the
 * table cannot be aimed at by a request; lookups of unknown names stop at the first empty
 * slot of a table kept at most half full. */
static uint64_t nodes_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

struct model_nodes *model_nodes_new(void)
{
    struct model_nodes *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->index_size = 64;
    m->index = calloc(m->index_size, sizeof *m->index);
    if (!m->index) {
        free(m);
        return NULL;
    }
    return m;
}

void model_nodes_free(struct model_nodes *m)
{
    if (!m)
        return;
    free(m->arena);
    free(m->off);
    free(m->len);
    free(m->index);
    free(m->edges);
    free(m->first);
    free(m->nlist);
    free(m->list);
    free(m);
}

static bool nodes_equal(const struct model_nodes *m, uint32_t id, const char *s, size_t len)
{
    return m->len[id] == len && memcmp(m->arena + m->off[id], s, len) == 0;
}

int64_t model_nodes_find(const struct model_nodes *m, const char *s, size_t len)
{
    size_t mask = m->index_size - 1;
    for (size_t i = (size_t)nodes_hash(s, len) & mask;; i = (i + 1) & mask) {
        uint32_t slot = m->index[i];
        if (slot == 0)
            return -1;
        if (nodes_equal(m, slot - 1, s, len))
            return slot - 1;
    }
}

static int nodes_grow_index(struct model_nodes *m)
{
    size_t size = m->index_size * 2;
    uint32_t *index = calloc(size, sizeof *index);
    if (!index)
        return -1;
    for (uint32_t id = 0; id < m->count; id++) {
        size_t i = (size_t)nodes_hash(m->arena + m->off[id], m->len[id]) & (size - 1);
        while (index[i])
            i = (i + 1) & (size - 1);
        index[i] = id + 1;
    }
    free(m->index);
    m->index = index;
    m->index_size = size;
    return 0;
}

/* The id of s, added when new. Returns -1 on a bound or no memory. */
static int64_t nodes_intern(struct model_nodes *m, const char *s, size_t len)
{
    if (len == 0 || len > MODEL_NAME_MAX)
        return -1;
    int64_t id = model_nodes_find(m, s, len);
    if (id >= 0)
        return id;
    if (m->count >= MODEL_NODES_MAX)
        return -1;
    if ((m->count + 1) * 2 > m->index_size && nodes_grow_index(m) != 0)
        return -1;
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        uint32_t *off = realloc(m->off, cap * sizeof *off);
        if (!off)
            return -1;
        m->off = off;
        uint32_t *lens = realloc(m->len, cap * sizeof *lens);
        if (!lens)
            return -1;
        m->len = lens;
        m->cap = cap;
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap * 2 : 4096;
        while (cap < m->arena_len + len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return -1;
        char *arena = realloc(m->arena, cap);
        if (!arena)
            return -1;
        m->arena = arena;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, s, len);
    m->arena[m->arena_len + len] = '\0';
    m->off[m->count] = (uint32_t)m->arena_len;
    m->len[m->count] = (uint32_t)len;
    m->arena_len += len + 1;
    size_t mask = m->index_size - 1;
    size_t i = (size_t)nodes_hash(s, len) & mask;
    while (m->index[i])
        i = (i + 1) & mask;
    m->index[i] = (uint32_t)m->count + 1;
    return (int64_t)m->count++;
}

int model_nodes_add(struct model_nodes *m, const char *code, size_t code_len, const char *node,
                    size_t node_len)
{
    if (m->finished)
        return -1;
    int64_t c = nodes_intern(m, code, code_len);
    int64_t n = c < 0 ? -1 : nodes_intern(m, node, node_len);
    if (n < 0)
        return -1;
    if (m->nedges == m->edges_cap) {
        size_t cap = m->edges_cap ? m->edges_cap * 2 : 512;
        struct edge *e = realloc(m->edges, cap * sizeof *e);
        if (!e)
            return -1;
        m->edges = e;
        m->edges_cap = cap;
    }
    m->edges[m->nedges++] = (struct edge){ .code = (uint32_t)c, .node = (uint32_t)n };
    return 0;
}

/* By code, the code itself first, then by node id. */
static int edge_cmp(const void *a, const void *b)
{
    const struct edge *x = a, *y = b;
    if (x->code != y->code)
        return x->code < y->code ? -1 : 1;
    bool xs = x->node == x->code, ys = y->node == y->code;
    if (xs != ys)
        return xs ? -1 : 1;
    return (x->node > y->node) - (x->node < y->node);
}

int model_nodes_finish(struct model_nodes *m)
{
    if (m->finished)
        return 0;
    if (m->nedges)
        qsort(m->edges, m->nedges, sizeof *m->edges, edge_cmp);
    m->first = calloc(m->count ? m->count : 1, sizeof *m->first);
    m->nlist = calloc(m->count ? m->count : 1, sizeof *m->nlist);
    m->list = malloc((m->nedges ? m->nedges : 1) * sizeof *m->list);
    if (!m->first || !m->nlist || !m->list)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < m->nedges; i++) {
        const struct edge *e = &m->edges[i];
        if (i > 0 && e->code == e[-1].code && e->node == e[-1].node)
            continue; /* a duplicate row */
        if (m->nlist[e->code] == 0)
            m->first[e->code] = (uint32_t)k;
        m->list[k++] = e->node;
        m->nlist[e->code]++;
    }
    m->list_len = k;
    /* A code is a port only when it counts under itself (rates_nodes' row (code, code)); the
     * sort put that row first. Anything else (a region's edges, bad input) is not a port. */
    for (uint32_t id = 0; id < m->count; id++)
        if (m->nlist[id] && m->list[m->first[id]] != id)
            m->nlist[id] = 0;
    free(m->edges);
    m->edges = NULL;
    m->nedges = m->edges_cap = 0;
    m->finished = true;
    return 0;
}

const uint32_t *model_nodes_of(const struct model_nodes *m, uint32_t port, size_t *count)
{
    *count = 0;
    if (!m->finished || port >= m->count)
        return NULL;
    *count = m->nlist[port];
    return m->list + m->first[port];
}

size_t model_nodes_count(const struct model_nodes *m)
{
    return m->count;
}

size_t model_nodes_bytes(const struct model_nodes *m)
{
    size_t per_name = m->finished ? 2 * sizeof(uint32_t) : 0;
    return sizeof *m + m->arena_cap + m->cap * 2 * sizeof(uint32_t) +
           m->index_size * sizeof(uint32_t) + m->count * per_name + m->list_len * sizeof(uint32_t) +
           m->edges_cap * sizeof(struct edge);
}
