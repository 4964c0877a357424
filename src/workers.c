/* workers.c: a lane: N threads serving a bounded FIFO of jobs (see workers.h). */
#include "workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "metrics.h"

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct workers_job *head, *tail; /* jobs owned by their submitters */
    long depth, max;
    bool stopping, joined;
    int lane; /* enum metrics_lane */
    long nthreads;
    pthread_t *threads; /* owned, nthreads started */
};

static void *workers_main(void *arg)
{
    struct workers *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->ready, &w->lock);
        struct workers_job *job = w->head;
        if (!job) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        w->head = job->next;
        if (!w->head)
            w->tail = NULL;
        w->depth--;
        pthread_mutex_unlock(&w->lock);
        job->next = NULL;
        metrics_lane_dequeued(w->lane, clock_mono_ns() - job->enqueued_ns);
        metrics_lane_busy_add(w->lane, 1);
        job->run(job);
        metrics_lane_busy_add(w->lane, -1);
        job->done(job); /* may free job: not touched below */
    }
}

struct workers *workers_start(int lane, long threads, long queue_max)
{
    struct workers *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->threads = calloc((size_t)threads, sizeof *w->threads);
    if (!w->threads) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);
    w->max = queue_max;
    w->lane = lane;
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&w->threads[i], NULL, workers_main, w) != 0) {
            LOG_ERROR("cannot start worker thread %ld of lane %s", i, metrics_lane_name(lane));
            break;
        }
        w->nthreads++;
    }
    if (w->nthreads == 0) {
        workers_free(w);
        return NULL;
    }
    metrics_lane_workers_set(lane, w->nthreads);
    return w;
}

int workers_submit(struct workers *w, struct workers_job *job)
{
    pthread_mutex_lock(&w->lock);
    if (w->depth >= w->max || w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    job->next = NULL;
    job->enqueued_ns = clock_mono_ns();
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    w->depth++;
    metrics_lane_queued(w->lane);
    pthread_cond_signal(&w->ready);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void workers_stop(struct workers *w)
{
    if (!w || w->joined)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->ready);
    pthread_mutex_unlock(&w->lock);
    for (long i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    w->joined = true;
}

void workers_free(struct workers *w)
{
    if (!w)
        return;
    workers_stop(w);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->ready);
    free(w->threads);
    free(w);
}
