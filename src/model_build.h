/* model_build.h: a whole read model from raw prices in any order (model_load.c's snapshot
 * load). PostgreSQL sends the table's rows as they lie (COPY, no GROUP BY: at 10 M prices
 * the grouping took 14 s of a 22 s load, the rows alone 2.8 s). Each price is added to its
 * port pair's series; model_build_finish() then adds each port pair's series to every other
 * node pair of its two ports (model_nodes_of(): the regions above them), run by run.
 *
 * Layout while building: one entry per node pair. Dense: a window of consecutive days, one
 * struct model_row per day (the model's own rows: finishing compacts them in place). A pair
 * whose days are too far apart for its prices (the window would pass max(1024 days, 4 rows
 * per price added)) turns sparse: a day-sorted list that prices are appended to, sorted and
 * combined whenever it fills. So the builder holds at most about the model's own bytes for
 * dense data and 16 bytes per added price for sparse data; model_build_bytes() tells.
 *
 * Ownership: the builder owns the node map until model_build_finish() hands it, with every
 * series, to the new model; model_build_free() frees everything. One thread. */
#ifndef RATES_MODEL_BUILD_H
#define RATES_MODEL_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "model.h"
#include "model_nodes.h"

struct model_build;

/* A builder over nodes (finished; owned from now on, even on failure). NULL: out of memory. */
struct model_build *model_build_new(struct model_nodes *nodes) WUR;
void model_build_free(struct model_build *b);

/* The port id of a code (model_nodes_find()), or -1. */
int64_t model_build_port(const struct model_build *b, const char *code, size_t len);

/* One price of orig -> dest (port ids) on day (days since 1970-01-01). MODEL_UNKNOWN_PORT:
 * an id that is not a port (at once). Prices are queued and added a few hundred at a time,
 * so MODEL_NEGATIVE (a count or sum past its range) and MODEL_NOMEM may come from a later
 * add or from model_build_finish(). After a failure the builder can only be freed. */
enum model_status model_build_add(struct model_build *b, uint32_t orig, uint32_t dest, int32_t day,
                                  int64_t price) WUR;

/* Bytes held now (windows, lists, the pair table). */
size_t model_build_bytes(const struct model_build *b);

/* *out: the model at version (MODEL_OK), else NULL (MODEL_NOMEM, or MODEL_NEGATIVE: a
 * day's count or sum past its range). The builder is freed on every outcome. */
enum model_status model_build_finish(struct model_build *b, uint64_t version,
                                     struct model **out) WUR;

#endif
