/* deadline.c: the sweeper that closes connections overstaying their phase (see deadline.h). */
#include "deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define DEADLINE_TICK_NS (100ull * 1000000ull)

/* The phase and its due time in one word (due_ns << 2 | phase), so that the connection's
 * HTTP thread sets both with one store and no lock (two per request on the hot path), and
 * the sweeper never reads a new phase with an old due time. 2^62 ns is 146 years of
 * CLOCK_MONOTONIC. */
#define DEADLINE_PHASE_BITS 2u
#define DEADLINE_PHASE_MASK ((1u << DEADLINE_PHASE_BITS) - 1u)
_Static_assert(DEADLINE_PHASE_COUNT <= 1u << DEADLINE_PHASE_BITS, "phases fit the phase bits");

struct deadline_conn {
    struct deadlines *owner;
    int fd;                            /* MHD's; only shut down here, never closed */
    _Atomic uint64_t state;            /* due_ns << 2 | phase; written by the HTTP thread only */
    bool shut;                         /* already shut down; the sweeper's, under the lock */
    struct deadline_conn *prev, *next; /* under the owner's lock */
};

static uint64_t deadline_pack(enum deadline_phase phase, uint64_t due_ns)
{
    return due_ns << DEADLINE_PHASE_BITS | (uint64_t)phase;
}

struct deadlines {
    pthread_mutex_t lock; /* guards the list, and each conn's links and shut flag */
    pthread_cond_t wake;
    struct deadline_conn *head; /* owned: open connections */
    bool stopping;
    pthread_t thread;
};

/* Shuts down every late connection; the lock is held. Bounded by the open connections. */
static void deadlines_sweep(struct deadlines *d, uint64_t now)
{
    for (struct deadline_conn *c = d->head; c; c = c->next) {
        uint64_t st = atomic_load_explicit(&c->state, memory_order_relaxed);
        enum deadline_phase phase = (enum deadline_phase)(st & DEADLINE_PHASE_MASK);
        if (phase == DEADLINE_NONE || c->shut || now < st >> DEADLINE_PHASE_BITS)
            continue;
        /* The fd is still MHD's: NOTIFY_CLOSED (deadline_conn_close, same lock) runs before
         * MHD closes it, so it cannot have been reused. */
        shutdown(c->fd, SHUT_RDWR);
        c->shut = true;
        /* The metric's phases are head and send: a late body is part of the request. */
        metrics_deadline_closed(phase != DEADLINE_SEND);
        LOG_DEBUG("http: closed a connection late in its %s",
                  phase == DEADLINE_HEAD   ? "request head"
                  : phase == DEADLINE_BODY ? "request body"
                                           : "response");
    }
}

static void *deadlines_main(void *arg)
{
    struct deadlines *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + DEADLINE_TICK_NS;
        ts.tv_sec = (time_t)(t / 1000000000ull);
        ts.tv_nsec = (long)(t % 1000000000ull);
        pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        if (!d->stopping)
            deadlines_sweep(d, clock_mono_ns());
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

struct deadlines *deadlines_start(void)
{
    struct deadlines *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, deadlines_main, d) != 0) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return NULL;
    }
    return d;
}

void deadlines_free(struct deadlines *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    for (int i = 0; d->head && i < 1000000; i++) { /* none left once MHD stopped */
        struct deadline_conn *c = d->head;
        d->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}

struct deadline_conn *deadline_conn_open(struct deadlines *d, int fd, uint64_t limit_ns)
{
    struct deadline_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->owner = d;
    c->fd = fd;
    atomic_init(&c->state, deadline_pack(DEADLINE_HEAD, clock_mono_ns() + limit_ns));
    pthread_mutex_lock(&d->lock);
    c->next = d->head;
    if (d->head)
        d->head->prev = c;
    d->head = c;
    pthread_mutex_unlock(&d->lock);
    return c;
}

void deadline_conn_set(struct deadline_conn *c, enum deadline_phase phase, uint64_t limit_ns)
{
    if (!c)
        return;
    /* No lock: the sweeper reads the word atomically; a sweep that saw the old word shuts
     * down at most a connection that was late a moment ago. */
    atomic_store_explicit(&c->state, deadline_pack(phase, clock_mono_ns() + limit_ns),
                          memory_order_relaxed);
}

void deadline_conn_close(struct deadline_conn *c)
{
    if (!c)
        return;
    struct deadlines *d = c->owner;
    pthread_mutex_lock(&d->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&d->lock);
    free(c);
}
