/* upgrade.h: self-upgrade: start the binary at our own path on the same listening sockets. */
#ifndef RATES_UPGRADE_H
#define RATES_UPGRADE_H

#include "common.h"

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Remembers the executable's path and the command line (argv stays owned by main). Call at
 * start-up: a later exec takes whatever binary is then at that path. */
void upgrade_init(int argc, char **argv);

enum upgrade_result {
    UPGRADE_READY = 0,   /* the new process serves: drain and exit */
    UPGRADE_FAILED = -1, /* it could not start, exited or timed out (reaped); err says why */
    UPGRADE_ABORTED = -2 /* a stop signal came while waiting (*sig); the child was stopped */
};

/* Forks and execs the binary with pub_fd as fd 3 and admin_fd (when >= 0) as fd 4
 * (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES=public:admin), then waits up to timeout_ms for it
 * to report ready through a pipe (RATES_UPGRADE_READY_FD). While waiting it takes the signals
 * in sigs: SIGTERM/SIGINT abort, others are ignored. On success *child is the new pid. */
int upgrade_run(int pub_fd, int admin_fd, long timeout_ms, const sigset_t *sigs, pid_t *child,
                int *sig, char *err, size_t errcap) WUR;

#endif
