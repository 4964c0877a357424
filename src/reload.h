/* reload.h: SIGHUP, driven by the option table: reloadable options applied, others reported. */
#ifndef RATES_RELOAD_H
#define RATES_RELOAD_H

#include "config.h"

/* Re-reads every layer (defaults, file, environment, the start's flags). When that succeeds,
 * applies every option flagged OPT_RELOAD (each through its applier below) and logs each
 * other option whose value changed as needing a restart. The running configuration is kept
 * as it is (the process keeps what it started with); on a bad layer nothing is applied.
 * Returns the number of options that need a restart, or -1 when the layers were refused. */
int reload_run(const struct config *running, int argc, char **argv, config_getenv_fn env);

#endif
