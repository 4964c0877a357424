/* follow.h: the read model's follower (docs/readmodel.md). One thread per instance keeps its
 * own connection to the primary, LISTENs on rates_data_version (the payload is never read:
 * any role that may connect can NOTIFY), and on each notification, each kick and every
 * second reads the change log from one snapshot and applies what is new to the model, or
 * reloads the model from a snapshot when following is not enough (a new connection, which
 * covers a failover; another epoch; pruned rows; rows that do not fit).
 *
 * States (one setter, follow.c; illegal moves refused by statemove.h's policy):
 *   off        RATES_MODEL=false, or never started: every read asks the database
 *   loading    started, first load not done
 *   current    the model is at least as new as every commit this instance made or saw
 *              answered: reads are served from it
 *   stale      the connection is lost, a load failed, or a sync timed out: reads ask the
 *              database until a pass succeeds
 *   too_large  the model would exceed RATES_MODEL_MAX_BYTES: dropped, reads ask the
 *              database until the process restarts
 *
 * Thread safety: every function may be called from any thread. */
#ifndef RATES_FOLLOW_H
#define RATES_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "model.h"

enum follow_state {
    FOLLOW_OFF = 0,
    FOLLOW_LOADING,
    FOLLOW_CURRENT,
    FOLLOW_STALE,
    FOLLOW_TOO_LARGE,
    FOLLOW_STATE_COUNT
};

struct follow_settings {
    const char *url; /* the primary (copied) */
    long connect_timeout_s;
    size_t max_bytes; /* 0: no bound */
    long sync_ms;     /* longest a commit of this process may stay out of the model */
    /* Called on the follower's thread when it has opened a new connection, before the load
     * that follows (the server may be a new primary without commits this process answered
     * with: its caller forgets the versions it learnt before). NULL: nothing. */
    void (*on_connect)(void);
};

/* Starts the thread. Returns 0, or -1 when it cannot start. */
int follow_start(const struct follow_settings *s) WUR;
/* Waits at most timeout_ms for the first load to end (loaded or failed). true: loaded. */
bool follow_wait_loaded(long timeout_ms);
/* Stops and joins the thread, frees the model; the state is off afterwards. */
void follow_stop(void);

/* A write committed here (called on the worker, before the 2xx is released): hands the
 * follower a ticket and kicks a pass, without waiting. Until a pass whose snapshot began
 * after this call has succeeded, follow_behind_commit() is true, so that no read of this
 * process answers from a model without that write (read-your-writes); the writer's 2xx does
 * not wait for the model. If no such pass has succeeded sync_ms after the commit when a read
 * waits for one, the model goes stale (reads ask the database until it catches up). */
void follow_note_commit(void);
/* True while a commit of this process is newer than the last successful pass's snapshot:
 * the caller (HTTP thread) must not answer from the model without follow_wait_version().
 * The check that marks an overdue model stale (sync_ms) runs here too. */
bool follow_behind_commit(void);

/* Reads a span from the model when it is current (model_read()'s contract: *count rows,
 * oldest first); false when it is not: the caller asks the database. */
bool follow_read(const char *orig, size_t orig_len, const char *dest, size_t dest_len, int32_t from,
                 int32_t to, struct model_row *out, size_t cap, size_t *count, uint64_t *version,
                 bool *known);

/* For a read that must be as new as the primary (Rates-Consistency: primary, Rates-Min-LSN),
 * and for a large write before its 2xx (main.c): waits at most timeout_ms (on a worker) for a
 * pass whose snapshot began after the call. Concurrent callers share one pass, so a flood of
 * such reads costs the database one small snapshot per pass, not a query each. true: the
 * model is current and that new; false at once when the model is off or not current, else
 * after the wait (the model stays as it is): the caller asks the database, or notes the
 * write with follow_note_commit(). */
bool follow_fresh(long timeout_ms);

/* Waits at most timeout_ms (on a worker, never on the HTTP thread) for the model to reach
 * version (one the process learnt elsewhere, e.g. the cache's listener) and to hold every
 * commit of this process so far, kicking a pass. true: it is current and that new. */
bool follow_wait_version(int64_t version, long timeout_ms);

enum follow_state follow_state(void);
const char *follow_state_name(int state);

#endif
