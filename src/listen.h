/* listen.h: listening sockets: bound here, or inherited (systemd LISTEN_FDS, self-upgrade). */
#ifndef RATES_LISTEN_H
#define RATES_LISTEN_H

#include "common.h"

#include <stddef.h>

/* Binds and listens on "HOST:PORT" or "[V6]:PORT". Returns the fd or -1 with err. */
int listen_open(const char *addr, char *err, size_t errcap) WUR;
/* Inherited sockets: fills fds (up to max) from LISTEN_FDS/LISTEN_PID (fd 3 onwards) and
 * unsets those variables. Returns how many. */
int listen_inherited(int *fds, int max);
/* The port a listening socket is bound to, or -1. */
int listen_port(int fd);

#endif
