/* workers.h: a lane, a bounded FIFO of jobs served by its own threads. It knows nothing of
 * HTTP or the database: a job runs on a lane thread, then its completion is called there.
 *
 * Lanes keep kinds of work apart (docs/operations.md, "Lanes"): reads never queue behind batch
 * chunks, and batch commits run one at a time in a lane of their own. */
#ifndef RATES_WORKERS_H
#define RATES_WORKERS_H

#include "common.h"

#include <stdint.h>

struct workers;

struct workers_job {
    void (*run)(struct workers_job *job);  /* on a lane thread */
    void (*done)(struct workers_job *job); /* right after run, on the same thread; after it
                                            * the lane never touches the job again */
    uint64_t enqueued_ns;                  /* set by workers_submit */
    struct workers_job *next;              /* the lane's, while queued */
};

/* Starts threads serving a queue of at most queue_max jobs; lane is an enum metrics_lane
 * (per-lane queue depth, wait and busy workers). NULL when no thread could start. */
struct workers *workers_start(int lane, long threads, long queue_max);
/* Queues job (run and done set; the caller keeps it alive until done). Returns -1 when the
 * queue is full or the lane has stopped. */
int workers_submit(struct workers *w, struct workers_job *job) WUR;
/* Refuses new jobs, runs what is queued, joins the threads. The lane stays allocated (a late
 * submit is refused, not a use-after-free) until workers_free(). */
void workers_stop(struct workers *w);
/* Frees a stopped lane (stops it first if needed). */
void workers_free(struct workers *w);

#endif
