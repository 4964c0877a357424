/* log.c: leveled logging to stdout, one line per event, JSON or text. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dynbuf.h"

static atomic_int log_level = LOG_LVL_INFO;
static int log_json = 1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s)
{
    for (int i = 0; i < (int)ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_format_parse(const char *s)
{
    if (strcmp(s, "auto") == 0)
        return LOG_FMT_AUTO;
    if (strcmp(s, "json") == 0)
        return LOG_FMT_JSON;
    if (strcmp(s, "text") == 0)
        return LOG_FMT_TEXT;
    return -1;
}

void log_init(int level, int format)
{
    atomic_store(&log_level, level);
    if (format == LOG_FMT_AUTO)
        log_json = !isatty(STDOUT_FILENO);
    else
        log_json = format == LOG_FMT_JSON;
}

void log_set_level(int level)
{
    atomic_store(&log_level, level);
}

static void log_timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void log_emit(struct dynbuf *b)
{
    if (dynbuf_add(b, "\n", 1) != 0)
        return;
    pthread_mutex_lock(&log_lock);
    fwrite(b->buf, 1, b->len, stdout);
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
}

static int log_head(struct dynbuf *b, int level, const char *request_id)
{
    char ts[40];
    log_timestamp(ts, sizeof ts);
    if (log_json) {
        int rc = dynbuf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
        if (rc == 0 && request_id) {
            rc = dynbuf_adds(b, ",\"request_id\":");
            if (rc == 0)
                rc = dynbuf_add_json_string(b, request_id, strlen(request_id));
        }
        return rc;
    }
    int rc = dynbuf_printf(b, "%s %-5s", ts, level_names[level]);
    if (rc == 0 && request_id)
        rc = dynbuf_printf(b, " [%s]", request_id);
    return rc;
}

void log_write(int level, const char *request_id, const char *fmt, ...)
{
    if (level > atomic_load(&log_level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct dynbuf b;
    dynbuf_init(&b, 8192);
    int rc = log_head(&b, level, request_id);
    if (rc == 0 && log_json) {
        rc = dynbuf_adds(&b, ",\"msg\":");
        if (rc == 0)
            rc = dynbuf_add_json_string(&b, msg, strlen(msg));
        if (rc == 0)
            rc = dynbuf_adds(&b, "}");
    } else if (rc == 0) {
        rc = dynbuf_printf(&b, " %s", msg);
    }
    if (rc == 0)
        log_emit(&b);
    dynbuf_free(&b);
}

void log_request(const struct log_request_line *l)
{
    int level = l->status >= 500 ? LOG_LVL_WARN : LOG_LVL_INFO;
    if (level > atomic_load(&log_level))
        return;
    struct dynbuf b;
    dynbuf_init(&b, 8192);
    int rc = log_head(&b, level, l->request_id);
    const char *path = l->path ? l->path : "";
    const char *method = l->method ? l->method : "";
    if (rc == 0 && log_json) {
        rc = dynbuf_adds(&b, ",\"msg\":\"request\",\"method\":");
        if (rc == 0)
            rc = dynbuf_add_json_string(&b, method, strlen(method));
        if (rc == 0)
            rc = dynbuf_adds(&b, ",\"path\":");
        if (rc == 0)
            rc = dynbuf_add_json_string(&b, path, strlen(path));
        if (rc == 0)
            rc = dynbuf_printf(&b, ",\"status\":%d,\"bytes\":%llu,\"duration_ms\":%.3f,\"db_ms\":%.3f",
                               l->status, (unsigned long long)l->bytes, l->duration_ms, l->db_ms);
        if (rc == 0 && l->note) {
            rc = dynbuf_adds(&b, ",\"error\":");
            if (rc == 0)
                rc = dynbuf_add_json_string(&b, l->note, strlen(l->note));
        }
        if (rc == 0)
            rc = dynbuf_adds(&b, "}");
    } else if (rc == 0) {
        rc = dynbuf_printf(&b, " %s %s %d %lluB %.3fms db=%.3fms%s%s", method, path, l->status,
                           (unsigned long long)l->bytes, l->duration_ms, l->db_ms,
                           l->note ? " error=" : "", l->note ? l->note : "");
    }
    if (rc == 0)
        log_emit(&b);
    dynbuf_free(&b);
}
