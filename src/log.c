/* log.c: leveled logging to stdout, one line per event, JSON or logfmt text (the same keys). */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* One key with a string value: ,"key":"..." in JSON; key=value in logfmt, quoted (with \" \\ \n
 * \r \t escapes) when empty or when it holds a space, '=', '"', a control byte or a backslash. */
static int log_field_str(struct dynbuf *b, const char *key, const char *v)
{
    size_t n = strlen(v);
    if (log_json) {
        int rc = dynbuf_printf(b, ",\"%s\":", key);
        return rc ? rc : dynbuf_add_json_string(b, v, n);
    }
    bool quote = n == 0;
    for (size_t i = 0; !quote && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        quote = c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f;
    }
    int rc = dynbuf_printf(b, "%s%s=", b->len ? " " : "", key);
    if (rc || !quote)
        return rc ? rc : dynbuf_add(b, v, n);
    rc = dynbuf_adds(b, "\"");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\')
            rc = dynbuf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = dynbuf_adds(b, "\\n");
        else if (c == '\r')
            rc = dynbuf_adds(b, "\\r");
        else if (c == '\t')
            rc = dynbuf_adds(b, "\\t");
        else if (c < ' ' || c == 0x7f)
            rc = dynbuf_printf(b, "\\u%04x", c);
        else
            rc = dynbuf_add(b, &v[i], 1);
    }
    return rc ? rc : dynbuf_adds(b, "\"");
}

/* One key with a number already formatted (never quoted). */
static int log_field_num(struct dynbuf *b, const char *key, const char *num)
{
    if (log_json)
        return dynbuf_printf(b, ",\"%s\":%s", key, num);
    return dynbuf_printf(b, "%s%s=%s", b->len ? " " : "", key, num);
}

/* ts, level and request_id: the same keys, in the same order, in both formats. */
static int log_head(struct dynbuf *b, int level, const char *request_id)
{
    char ts[40];
    log_timestamp(ts, sizeof ts);
    int rc = log_json ? dynbuf_adds(b, "{\"ts\":\"") : dynbuf_adds(b, "ts=");
    rc |= dynbuf_adds(b, ts);
    rc |= log_json ? dynbuf_adds(b, "\"") : 0;
    rc |= log_field_str(b, "level", level_names[level]);
    if (request_id)
        rc |= log_field_str(b, "request_id", request_id);
    return rc;
}

static int log_tail(struct dynbuf *b)
{
    return log_json ? dynbuf_adds(b, "}") : 0;
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
    rc |= log_field_str(&b, "msg", msg);
    rc |= log_tail(&b);
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
    char num[4][32];
    snprintf(num[0], sizeof num[0], "%d", l->status);
    snprintf(num[1], sizeof num[1], "%llu", (unsigned long long)l->bytes);
    snprintf(num[2], sizeof num[2], "%.3f", l->duration_ms);
    snprintf(num[3], sizeof num[3], "%.3f", l->db_ms);
    int rc = log_head(&b, level, l->request_id);
    rc |= log_field_str(&b, "msg", "request");
    rc |= log_field_str(&b, "method", l->method ? l->method : "");
    rc |= log_field_str(&b, "path", l->path ? l->path : "");
    rc |= log_field_num(&b, "status", num[0]);
    rc |= log_field_num(&b, "bytes", num[1]);
    rc |= log_field_num(&b, "duration_ms", num[2]);
    rc |= log_field_num(&b, "db_ms", num[3]);
    if (l->note)
        rc |= log_field_str(&b, "error", l->note);
    rc |= log_tail(&b);
    if (rc == 0)
        log_emit(&b);
    dynbuf_free(&b);
}
