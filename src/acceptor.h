/* acceptor.h: our own accept(2) loop in front of a libmicrohttpd daemon.
 *
 * Why not MHD's own: in 0.9.75, MHD_quiesce_daemon() removes the listener from each pool
 * worker's epoll set while that worker may be removing it too (it checks `was_quiesced` on
 * every turn of its loop); the loser gets ENOENT, which the quiesce path does not tolerate,
 * and the whole process aborts ("Failed to remove listen FD from epoll set", daemon.c:5531,
 * seen once in ~1,600 shutdowns in CI). With MHD_USE_NO_LISTEN_SOCKET, MHD never sees the
 * listener: one thread here accepts and hands each connection over with MHD_add_connection()
 * (which keeps MHD's connection limit, per-address limit and accept policy), and to stop
 * accepting is to join that thread. That abort was seen while the daemon threads used epoll;
 * they use poll now (src/http.c says why). The acceptor stays: a stop that is a join, with
 * no quiesce at all, holds whatever MHD's loop does.
 *
 * Ownership: the acceptor never closes the listening socket (its owner does, after
 * acceptor_stop). Accepted sockets belong to MHD once handed over (it closes them on
 * refusal too). */
#ifndef RATES_ACCEPTOR_H
#define RATES_ACCEPTOR_H

#include <stddef.h>

struct MHD_Daemon;
struct acceptor;

/* Starts a thread accepting on listen_fd (made non-blocking here) into d. NULL with a
 * message in err when no thread or eventfd could be had. */
struct acceptor *acceptor_start(int listen_fd, struct MHD_Daemon *d, char *err, size_t errcap);
/* Stops accepting: when this returns, no accept(2) on the listener runs or will run.
 * Frees a. a may be NULL. */
void acceptor_stop(struct acceptor *a);

#endif
