/* statemove.h: the one policy for an illegal move of any state machine (the HTTP request life
 * cycle, the ingest phases): the move is refused (the state stays), logged with both state
 * names and counted in rates_illegal_state_moves_total{machine}; the ASan and TSan builds
 * abort, so that a test that reaches one fails. */
#ifndef RATES_STATEMOVE_H
#define RATES_STATEMOVE_H

#include "metrics.h"

/* Call instead of making the move. machine: enum metrics_machine; id names the request or
 * batch (may be ""). */
void statemove_refuse(int machine, const char *from, const char *to, const char *id);

#endif
