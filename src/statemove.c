/* statemove.c: see statemove.h. */
#include "statemove.h"

#include <stdlib.h>

#include "log.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STATEMOVE_ABORT 1
#else
#define STATEMOVE_ABORT 0
#endif

void statemove_refuse(int machine, const char *from, const char *to, const char *id)
{
    LOG_ERROR("%s: illegal state move %s -> %s refused (%s)", metrics_machine_name(machine), from,
              to, id && *id ? id : "-");
    metrics_illegal_state_move(machine);
    if (STATEMOVE_ABORT)
        abort();
}
