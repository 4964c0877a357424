/* retry.c: the schedule of tries after a dead database connection (src/retry.h). */
#include "retry.h"

long retry_pause_ms(int tries, long elapsed_ms)
{
    if (tries < 0 || elapsed_ms < 0)
        return -1;
    if (tries == 0)
        return elapsed_ms <= RETRY_WINDOW_MS ? 0 : -1;
    if (tries > 8) /* far past any window: no shift overflows */
        return -1;
    long pause = 100L << (tries - 1);
    return elapsed_ms + pause <= RETRY_WINDOW_MS ? pause : -1;
}
