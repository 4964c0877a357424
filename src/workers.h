/* workers.h: the bounded queue and threads that run deferred (blocking) request work. */
#ifndef RATES_WORKERS_H
#define RATES_WORKERS_H

#include "common.h"

struct db_pool;
struct http_req;
struct workers;

struct workers *workers_start(long threads, long queue_max, struct db_pool *pool,
                              long pool_wait_ms);
/* Queues req (its work and work_flags are set). Returns -1 when the queue is full. */
int workers_submit(struct workers *w, struct http_req *req) WUR;
/* Runs what is queued, then joins the threads. */
void workers_stop(struct workers *w);

#endif
