/* model.h: the read model (docs/readmodel.md): for every pair of nodes (ports and regions)
 * and every day, the count and the integer sum of the prices on routes between them, in
 * memory, so /rates reads it without a database round trip.
 *
 * Layout: one series per node pair, a day-sorted array of struct model_row (16 bytes a
 * key), found through an open-addressing table of pairs. A read is one table probe and one
 * binary search, then the span's rows in order.
 *
 * Writers and readers: model_apply() is copy-on-write: it builds the new series of every pair
 * a change touches with no lock held, then publishes them all, with the version, under the
 * write lock in one pass of pointer stores. A reader (model_read(), any number of threads)
 * holds the read lock only while it copies one span, so it sees a change whole or not at
 * all: all of a batch, or none of it. Appliers are serialized by the model itself.
 *
 * Ownership: the model owns its node map (given to model_new()) and every series; readers
 * get copies. */
#ifndef RATES_MODEL_H
#define RATES_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "model_nodes.h"

/* One day of one node pair. n > 0 in the model (a key whose count falls to 0 is removed). */
struct model_row {
    int32_t day; /* days since 1970-01-01 (date.h) */
    uint32_t n;
    int64_t sum;
};

/* A node pair's key (orig << 32 | dest) and its hash (splitmix64's finalizer: the keys are
 * node ids of the database's own map, never a client's), for the pair tables of model.c and
 * model_build.c. */
static inline uint64_t model_pair_key(uint32_t orig, uint32_t dest)
{
    return (uint64_t)orig << 32 | dest;
}

static inline size_t model_pair_hash(uint64_t k)
{
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    k ^= k >> 31;
    return (size_t)k;
}

/* A change of the prices of one route and day, between two ports (ids of the node map):
 * n prices added (negative: removed) whose prices add up to sum. */
struct model_delta {
    uint32_t orig, dest;
    int32_t day;
    int64_t n, sum;
};

enum model_status {
    MODEL_OK = 0,
    MODEL_NOMEM,        /* an allocation failed: the model is unchanged */
    MODEL_UNKNOWN_PORT, /* a delta names an id that is not a port: the node map is stale */
    MODEL_NEGATIVE,     /* a count or sum would leave its range: the changes do not fit the
                         * model (a change applied twice, or one missed): reload */
};

struct model;

/* A model over `nodes` (finished; owned by the model from now on, even on failure), with no
 * rows, at version `version`. NULL when out of memory. */
struct model *model_new(struct model_nodes *nodes, uint64_t version) WUR;
void model_free(struct model *m);

/* Applies count deltas (any order, any repetition) and sets the version, atomically for
 * readers. On any status but MODEL_OK nothing changed. The deltas array is reordered. */
enum model_status model_apply(struct model *m, struct model_delta *deltas, size_t count,
                              uint64_t version) WUR;

/* For a model that no reader or applier has yet (model_build.c): gives the node pair
 * orig -> dest, which has no series yet, the series rows: len > 0 rows in ascending day
 * order, each with n > 0, owned by the model from now on (freed here when the pair table
 * cannot grow: MODEL_NOMEM). */
enum model_status model_adopt(struct model *m, uint32_t orig, uint32_t dest, struct model_row *rows,
                              uint32_t len) WUR;

/* Moves everything of `from` (a model loaded aside: rows, node map, version) into `into`,
 * atomically for readers of `into`, and frees `from`. */
void model_replace(struct model *into, struct model *from);

/* Copies the rows of orig -> dest (names: port codes or region slugs) with day in
 * [from, to], in ascending day order, into out (at most cap rows; the caller sizes it to the
 * span, so nothing is cut). Returns the number of rows; *version is the version those rows
 * are at, *known whether both names are known to the node map. */
size_t model_read(struct model *m, const char *orig, size_t orig_len, const char *dest,
                  size_t dest_len, int32_t from, int32_t to, struct model_row *out, size_t cap,
                  uint64_t *version, bool *known);

/* The node map's id of a name, for loaders that turn codes into deltas (-1: unknown). Only
 * the applier may call it (the map changes only in model_replace(), which it also calls). */
int64_t model_port_id(const struct model *m, const char *code, size_t len);

/* The version the model is at (O(1); model_stats() walks the pair table for its bytes). */
uint64_t model_version(struct model *m);

struct model_stats {
    uint64_t version;
    size_t keys;  /* node-pair-day rows */
    size_t pairs; /* node pairs with at least one row */
    size_t bytes; /* series, pair table and node map, as allocated */
};
void model_stats(struct model *m, struct model_stats *out);

#endif
