/* model_load.h: the read model from PostgreSQL (docs/readmodel.md): the mark that says
 * whether a model can follow, a whole model from one snapshot, and one step of following.
 *
 * Every call runs inside a REPEATABLE READ transaction the caller opened on pg, so the
 * mark, the snapshot and the changes it reads belong to one snapshot. They read as the
 * service role: rates_nodes, prices, rates_changes, rates_changes_folded, rates_model_state
 * and rates_data_version (SELECT only). Errors come back in err (one line). */
#ifndef RATES_MODEL_LOAD_H
#define RATES_MODEL_LOAD_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "model.h"

/* What the database says about following (db/migrations/0017). */
struct model_mark {
    int64_t version; /* rates_data_version: the newest committed change */
    int64_t epoch;   /* a model of another epoch must reload */
    int64_t pruned;  /* a model older than this must reload */
    int64_t folded;  /* rates_fold_state: change rows up to here may have moved to
                      * rates_changes_folded; a model at least as new reads only the log */
};

enum model_load_status {
    MODEL_LOAD_OK = 0,
    MODEL_LOAD_DB,        /* a statement failed (err says which; the connection may be gone) */
    MODEL_LOAD_MISMATCH,  /* the rows do not fit the model (model_apply's status): reload */
    MODEL_LOAD_NOMEM,     /* an allocation failed */
    MODEL_LOAD_TOO_LARGE, /* the model would hold more than max_bytes */
};

enum model_load_status model_load_mark(PGconn *pg, struct model_mark *out, char *err,
                                       size_t cap) WUR;

/* Builds a new model at mark->version from the snapshot: the node map of rates_nodes and the
 * prices grouped by route and day (read through a cursor, applied in chunks, so that the
 * client never holds more than one chunk of rows). *out: the model (caller frees), NULL
 * unless MODEL_LOAD_OK. max_bytes 0: no bound. */
enum model_load_status model_load_snapshot(PGconn *pg, const struct model_mark *mark,
                                           size_t max_bytes, struct model **out, char *err,
                                           size_t cap) WUR;

/* Applies every change row with a version after the model's (rates_changes and
 * rates_changes_folded) and moves the model to mark->version, atomically for readers. On
 * MODEL_LOAD_TOO_LARGE the changes are in (the caller drops the model); on any other status
 * but MODEL_LOAD_OK the model is unchanged. */
enum model_load_status model_load_follow(PGconn *pg, struct model *m, const struct model_mark *mark,
                                         size_t max_bytes, char *err, size_t cap) WUR;

#endif
