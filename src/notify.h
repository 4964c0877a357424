/* notify.h: service manager notifications (systemd's NOTIFY_SOCKET) and the self-upgrade
 * readiness pipe. */
#ifndef RATES_NOTIFY_H
#define RATES_NOTIFY_H

#include "common.h"

/* Reads (and removes) the variables below. Call at start-up, before any thread starts:
 * unsetenv races with getenv in other threads (libpq reads PG* variables). */
void notify_init(void);
/* Sends one state message ("READY=1", "STOPPING=1", "MAINPID=123\nREADY=1", ...) as a datagram
 * to $NOTIFY_SOCKET (a path or an @abstract name). Returns 1 when sent, 0 when there is no
 * service manager, -1 on error (errno set). Thread-safe; never blocks. */
int notify_send(const char *state) WUR;
/* Tells whoever waits for this process to serve that it is ready: the parent of a
 * self-upgrade (the pipe named by RATES_UPGRADE_READY_FD, closed afterwards) and the service
 * manager (READY=1, with MAINPID when this process replaces an older one). Call once, after
 * the listeners accept. */
void notify_ready(void);

#endif
