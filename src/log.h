/* log.h: leveled logging, JSON lines when stdout is not a terminal, logfmt text (same keys) when it is. */
#ifndef RATES_LOG_H
#define RATES_LOG_H

#include "common.h"

#include <stdint.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_format { LOG_FMT_AUTO = 0, LOG_FMT_JSON, LOG_FMT_TEXT };

/* Parses "error|warn|info|debug"; returns -1 when unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);
void log_init(int level, int format);
/* Safe to call at any time from any thread (SIGHUP reload). */
void log_set_level(int level);

void log_write(int level, const char *request_id, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* One line per request. */
struct log_request_line {
    const char *request_id;
    const char *method;
    const char *path;
    int status;
    uint64_t bytes;
    double duration_ms;
    double db_ms;
    const char *note; /* why it failed, or NULL */
};
void log_request(const struct log_request_line *l);

#define LOG_ERROR(...) log_write(LOG_LVL_ERROR, NULL, __VA_ARGS__)
#define LOG_WARN(...) log_write(LOG_LVL_WARN, NULL, __VA_ARGS__)
#define LOG_INFO(...) log_write(LOG_LVL_INFO, NULL, __VA_ARGS__)
#define LOG_DEBUG(...) log_write(LOG_LVL_DEBUG, NULL, __VA_ARGS__)

#endif
