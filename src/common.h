/* common.h: attribute macros and small helpers shared by every file. */
#ifndef RATES_COMMON_H
#define RATES_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WUR __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic and wall clocks in nanoseconds. */
uint64_t clock_mono_ns(void);
uint64_t clock_wall_ns(void);
/* The instant ms milliseconds from now on clock (for pthread_cond_timedwait). */
struct timespec clock_after_ms(clockid_t clock, long ms);

/* Copies at most cap-1 bytes of src into dst and terminates it; returns strlen(dst). */
size_t str_copy(char *dst, size_t cap, const char *src);

#endif
