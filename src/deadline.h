/* deadline.h: deadlines that libmicrohttpd does not have. Its timeout is an idle timeout that
 * every byte resets, so a client trickling a header byte now and then, or reading a response
 * a byte at a time, would hold a connection slot for ever (slowloris, slow readers). A sweeper
 * thread closes (shutdown(2) of the socket; MHD then closes the connection and its request
 * ends as usual) connections that overstay their phase:
 *   HEAD   from accept (or the end of the previous response on a keep-alive connection) to the
 *          end of the request's headers
 *   SEND   from the response being queued to its last byte sent
 *   BODY   from the end of an upload's headers to the end of its body (RATES_UPLOAD_TIMEOUT_S,
 *          plus a grace: the handler answers 408 to a late chunk, this closes a silent client)
 *   NONE   no deadline (work in a lane; the idle-upload timeout still applies). */
#ifndef RATES_DEADLINE_H
#define RATES_DEADLINE_H

#include "common.h"

#include <stdint.h>

enum deadline_phase {
    DEADLINE_NONE = 0,
    DEADLINE_HEAD,
    DEADLINE_SEND,
    DEADLINE_BODY,
    DEADLINE_PHASE_COUNT
};

struct deadlines;
struct deadline_conn;

/* Starts the sweeper (checks every 100 ms). NULL when out of memory or no thread. */
struct deadlines *deadlines_start(void);
/* Stops the sweeper and frees; every connection must have been closed (MHD stopped). */
void deadlines_free(struct deadlines *d);
/* A new connection on fd, in phase HEAD for limit_ns. NULL when out of memory (the
 * connection then has no deadline). The caller keeps it until deadline_conn_close(). */
struct deadline_conn *deadline_conn_open(struct deadlines *d, int fd, uint64_t limit_ns);
/* Enters phase (from now, for limit_ns; ignored for NONE). c may be NULL. */
void deadline_conn_set(struct deadline_conn *c, enum deadline_phase phase, uint64_t limit_ns);
/* The connection is about to close (before its fd is): never touched again. c may be NULL. */
void deadline_conn_close(struct deadline_conn *c);

#endif
