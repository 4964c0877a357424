/* reqid.h: request ids (X-Request-Id) without a system call per request. */
#ifndef RATES_REQID_H
#define RATES_REQID_H

#include <stddef.h>

#define REQID_LEN 32 /* hex digits; out needs REQID_LEN + 1 bytes */

/* Writes 32 lowercase hex digits and a NUL into out (cap >= REQID_LEN + 1, else nothing).
 * Unique within the process (a per-thread 64-bit random prefix, from getrandom(2) once per
 * thread, and a bijective mix of the thread's counter), unpredictable enough for tracing,
 * not a secret: never use one as a token. Thread-safe: all state is per thread. */
void reqid_make(char *out, size_t cap);

#endif
