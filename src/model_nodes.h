/* model_nodes.h: the node map of the read model (docs/readmodel.md): every port code and
 * region slug interned to a small id, and for each port the nodes it counts under (itself and
 * every region above it), as public.rates_nodes holds them in the database.
 *
 * Life cycle: model_nodes_new(), model_nodes_add() for every (code, node) row, then
 * model_nodes_finish(); after that the map is immutable and may be read by any number of
 * threads without a lock. The read model owns the map it is given (model_new()). */
#ifndef RATES_MODEL_NODES_H
#define RATES_MODEL_NODES_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Bounds: a name is a port code or a region slug (the API's limit is far below 255 bytes);
 * the map holds at most MODEL_NODES_MAX names. */
#define MODEL_NAME_MAX 255
#define MODEL_NODES_MAX (1u << 22)

struct model_nodes;

struct model_nodes *model_nodes_new(void) WUR;
void model_nodes_free(struct model_nodes *nodes);

/* Records that port `code` counts under `node` (rates_nodes' row (code, node); the row
 * (code, code) must be there too, as rates_nodes_wanted() gives it). Duplicates are ignored.
 * Returns 0, or -1 on a name over MODEL_NAME_MAX bytes, too many names, or no memory. */
int model_nodes_add(struct model_nodes *nodes, const char *code, size_t code_len, const char *node,
                    size_t node_len) WUR;

/* Freezes the map: builds each port's node list. Returns 0 or -1 (no memory). */
int model_nodes_finish(struct model_nodes *nodes) WUR;

/* The id of a name (a port or any node), or -1 when the map does not know it. */
int64_t model_nodes_find(const struct model_nodes *nodes, const char *name, size_t len);

/* The nodes port id `port` counts under (itself first); *count is 0 when `port` is not a
 * port (a region's id, or out of range). The array belongs to the map. */
const uint32_t *model_nodes_of(const struct model_nodes *nodes, uint32_t port, size_t *count);

/* Names known, and bytes held (for the model's memory figure). */
size_t model_nodes_count(const struct model_nodes *nodes);
size_t model_nodes_bytes(const struct model_nodes *nodes);

#endif
