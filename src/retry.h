/* retry.h: when a database is tried again after a dead connection or a failed connect. */
#ifndef RATES_RETRY_H
#define RATES_RETRY_H

/* Tries go at once, then 100, 200 and 400 ms apart, while the next one would begin within
 * RETRY_WINDOW_MS of the failure. Behind a balancer during a failover the first new
 * connection may still land on a node that is shutting down or restarting as a replica.
 * Reads (src/dbread.c) and the readiness monitor (src/health.c) share the schedule, so that
 * the balancer's check says "cannot read" only when a read would have failed too. */
#define RETRY_WINDOW_MS 1000

/* The pause in ms before the next try, given the tries made since the failure (0 for the
 * first) and the ms elapsed since it; -1 when that try would begin past the window.
 * Pure arithmetic: the caller sleeps (a connect that hangs takes the connect timeout, so a
 * caller is held at most the window plus one connect timeout). */
long retry_pause_ms(int tries, long elapsed_ms);

#endif
