/* load_main.c: rates-load, the operators' loader: streams a CSV/NDJSON/JSON file to
 * POST /batches with an Idempotency-Key, retrying what is safe to retry (see --help);
 * with --gzip the body is compressed as it is sent (Content-Encoding: gzip, chunked). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include <zlib.h>

#include "common.h"
#include "dynbuf.h"

/* Exit codes (also in --help). */
enum {
    LOAD_OK = 0,
    LOAD_LOCAL = 1,      /* the file or the token file cannot be read */
    LOAD_USAGE = 2,      /* bad options or arguments (as ratesd and rates-gen) */
    LOAD_REJECTED = 3,   /* 422: invalid rows; nothing was inserted */
    LOAD_KEY_REUSED = 4, /* 422 idempotency_key_reused: the key names another body */
    LOAD_AUTH = 5,       /* 401 or 403 */
    LOAD_REFUSED = 6,    /* another 4xx (413 too large, 415 type, ...) */
    LOAD_GAVE_UP = 7,    /* retries exhausted (503, 409 in flight, 502/504, broken links) */
    LOAD_CONFLICT = 8,   /* a final 409: batch_retracted, port_removed: not retried */
};

#define LOAD_KEY_MAX 255
#define LOAD_TOKEN_MAX 4096
#define LOAD_REPLY_MAX (1024 * 1024)
#define LOAD_URL_MAX 2048
#define LOAD_BACKOFF_MAX_S 30.0
#define LOAD_RETRY_AFTER_MAX_S 300.0
#define LOAD_GZIP_IN (256 * 1024) /* file bytes read per refill of the compressor */

struct load_opts {
    const char *file;
    const char *url;
    const char *format; /* Content-Type to send */
    const char *token_file;
    const char *key;
    bool new_key;
    int retries;
    long timeout_s;
    int show_errors;
    int progress;      /* -1 auto, 0 off, 1 on */
    double interval_s; /* plain progress lines every interval_s */
    bool gzip;         /* compress the body (Content-Encoding: gzip) */
};

/* One upload attempt's state (the file is rewound before each). */
struct load_xfer {
    FILE *f;
    uint64_t size;
    uint64_t sent;
    uint64_t lines;       /* row marks read so far: an estimate of rows */
    char row_mark;        /* LF for CSV/NDJSON, '{' for a JSON array */
    struct dynbuf reply;  /* response body, capped at LOAD_REPLY_MAX */
    double retry_after_s; /* from Retry-After, or -1 */
    bool tty;
    int progress;
    double interval_s;
    uint64_t t0_ns;
    uint64_t sent_ns; /* when the whole body had been read, or 0 */
    uint64_t last_draw_ns;
    bool read_error;
    /* --gzip: the compressor, reset before each attempt; zin (owned) holds file bytes. */
    bool gzip, z_ready, z_eof, z_done;
    z_stream zs;
    unsigned char *zin;
};

static void load_err(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void load_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rates-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void load_usage(FILE *out)
{
    fputs("usage: rates-load [options] FILE URL\n"
          "Streams FILE (CSV, NDJSON or a JSON array of {orig_code,dest_code,day,price}) to\n"
          "URL/batches as one atomic batch, and prints the batch id, or the first errors.\n"
          "\n"
          "  -f, --format FMT      csv, ndjson or json (default: from the extension .csv,\n"
          "                        .ndjson/.jsonl, .json)\n"
          "  -T, --token-file PATH read the bearer token from PATH (first line); otherwise\n"
          "                        from $RATES_INGEST_TOKEN (never a flag: it would show in ps)\n"
          "  -k, --key KEY         Idempotency-Key to send (default: hex SHA-256 of FILE, so\n"
          "                        re-running the same command never loads the file twice)\n"
          "  -n, --new-key         send a fresh random key (load the same file again)\n"
          "  -z, --gzip            compress the upload as it is sent (Content-Encoding: gzip;\n"
          "                        the key and the server's limits are of the uncompressed file)\n"
          "  -r, --retries N       retries of 503/502/504/409 in flight/broken links (default 8),\n"
          "                        exponential backoff from 0.5 s to 30 s, Retry-After honoured\n"
          "  -t, --timeout SEC     give up an attempt after SEC seconds without progress (300)\n"
          "  -e, --errors N        print at most N of the errors of a rejected batch (20)\n"
          "  -p, --progress        progress bar even when stdout is not a terminal\n"
          "  -q, --quiet           no progress output\n"
          "  -i, --interval SEC    seconds between plain progress lines off a terminal (5)\n"
          "  -h, --help            this help\n"
          "  -V, --version         version and commit\n"
          "Options take their value as --opt=value or --opt value.\n"
          "\n"
          "Every retry sends the same key: a batch whose commit outcome is unknown (the\n"
          "connection broke after the body was sent) is then answered as a replay, so it\n"
          "lands exactly once. Re-run the same command after exit 7 for the same reason.\n"
          "\n"
          "Exit codes (docs/exit-codes.md): 0 committed (or already committed: replayed),\n"
          "1 cannot read FILE or the token file, 2 usage, 3 rejected: invalid rows (nothing "
          "inserted), 4 the key was\n"
          "used for a different body, 5 authentication (401/403), 6 refused (413, 415, other\n"
          "4xx), 7 gave up after the retries (service unavailable or connection problems),\n"
          "8 conflict (409: the key's batch was retracted, a port was removed meanwhile).\n",
          out);
}

/* Maps --format or the file's extension to a Content-Type; NULL when unknown. */
static const char *load_content_type(const char *format, const char *file)
{
    static const struct {
        const char *name;
        const char *type;
    } types[] = { { "csv", "text/csv" },
                  { "ndjson", "application/x-ndjson" },
                  { "jsonl", "application/x-ndjson" },
                  { "json", "application/json" } };
    const char *name = format;
    if (!name) {
        const char *dot = strrchr(file, '.');
        const char *slash = strrchr(file, '/');
        if (!dot || (slash && dot < slash))
            return NULL;
        name = dot + 1;
    }
    for (size_t i = 0; i < ARRAY_LEN(types); i++)
        if (strcasecmp(name, types[i].name) == 0)
            return types[i].type;
    return NULL;
}

/* Reads the token (first line of path, or $RATES_INGEST_TOKEN) into out; "" when none. */
static int load_token(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    if (!path) {
        const char *env = getenv("RATES_INGEST_TOKEN");
        if (env && strlen(env) >= cap)
            return -1;
        if (env)
            str_copy(out, cap, env);
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        load_err("cannot read token file %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = fgets(out, (int)cap, f) ? 0 : -1;
    fclose(f);
    if (rc != 0) {
        load_err("token file %s is empty", path);
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static void load_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The hex SHA-256 of the file's contents into out (65 bytes). */
static int load_file_sha256(FILE *f, char *out)
{
    int rc = -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *buf = malloc(1 << 20);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto fail;
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        if (EVP_DigestUpdate(ctx, buf, n) != 1)
            goto fail;
    if (ferror(f) || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
        goto fail;
    load_hex(md, 32, out);
    rc = 0;
fail:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static int load_random_key(char *out)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return -1;
    load_hex(r, sizeof r, out);
    return 0;
}

static int load_key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > LOAD_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x20 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\')
            return 0;
    return 1;
}

static void load_fmt_duration(double s, char *out, size_t cap)
{
    if (s < 0 || s > 359999)
        snprintf(out, cap, "--:--");
    else if (s >= 3600)
        snprintf(out, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(out, cap, "%02d:%02d", (int)s / 60, (int)s % 60);
}

/* Draws the progress: a bar redrawn in place on a terminal, else one plain line. */
static void load_draw(struct load_xfer *x, bool final)
{
    uint64_t now = clock_mono_ns();
    uint64_t every = x->tty ? 100000000u : (uint64_t)(x->interval_s * 1e9);
    if (!x->progress || (!final && now - x->last_draw_ns < every))
        return;
    x->last_draw_ns = now;
    if (x->sent == x->size && !x->sent_ns)
        x->sent_ns = now;
    double el = (double)(now - x->t0_ns) / 1e9;
    double up = (double)((x->sent_ns ? x->sent_ns : now) - x->t0_ns) / 1e9;
    double mbs = up > 0 ? (double)x->sent / 1e6 / up : 0;
    double frac = x->size ? (double)x->sent / (double)x->size : 1.0;
    double eta = mbs > 0 ? (double)(x->size - x->sent) / 1e6 / mbs : -1;
    char etas[16], els[16], wait[48] = "";
    load_fmt_duration(eta, etas, sizeof etas);
    load_fmt_duration(el, els, sizeof els);
    if (x->sent_ns && !final)
        snprintf(wait, sizeof wait, ", waiting for the commit %.0f s",
                 (double)(now - x->sent_ns) / 1e9);
    if (x->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        printf("\r[%s] %3d%%  %llu rows  %.1f/%.1f MB  %.1f MB/s  ETA %s%s\033[K", bar,
               (int)(frac * 100), (unsigned long long)x->lines, (double)x->sent / 1e6,
               (double)x->size / 1e6, mbs, etas, wait);
        if (final)
            putchar('\n');
    } else {
        printf("progress: %3d%% %llu rows %.1f/%.1f MB %.1f MB/s elapsed %s ETA %s%s\n",
               (int)(frac * 100), (unsigned long long)x->lines, (double)x->sent / 1e6,
               (double)x->size / 1e6, mbs, els, etas, wait);
    }
    fflush(stdout);
}

/* Counts the rows (row marks) and bytes of the file read so far, for the progress. */
static void load_count(struct load_xfer *x, const char *buf, size_t n)
{
    for (const char *p = buf, *end = buf + n; (p = memchr(p, x->row_mark, (size_t)(end - p))); p++)
        x->lines++;
    x->sent += n;
}

static size_t load_on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct load_xfer *x = ud;
    size_t n = fread(buf, 1, size * nitems, x->f);
    if (n == 0 && ferror(x->f)) {
        x->read_error = true;
        return CURL_READFUNC_ABORT;
    }
    load_count(x, buf, n);
    load_draw(x, false);
    return n;
}

/* --gzip: fills curl's buffer with compressed bytes, reading the file as the compressor
 * needs it. Returns 0 (the body's end) only once the gzip trailer has been written. */
static size_t load_on_read_gzip(char *buf, size_t size, size_t nitems, void *ud)
{
    struct load_xfer *x = ud;
    size_t cap = size * nitems;
    x->zs.next_out = (Bytef *)buf;
    x->zs.avail_out = (uInt)(cap > (1u << 30) ? (1u << 30) : cap);
    size_t room = x->zs.avail_out;
    while (x->zs.avail_out > 0 && !x->z_done) {
        if (x->zs.avail_in == 0 && !x->z_eof) {
            size_t n = fread(x->zin, 1, LOAD_GZIP_IN, x->f);
            if (n == 0 && ferror(x->f)) {
                x->read_error = true;
                return CURL_READFUNC_ABORT;
            }
            x->z_eof = n == 0;
            load_count(x, (const char *)x->zin, n);
            x->zs.next_in = x->zin;
            x->zs.avail_in = (uInt)n;
        }
        int zrc = deflate(&x->zs, x->z_eof ? Z_FINISH : Z_NO_FLUSH);
        if (zrc == Z_STREAM_END)
            x->z_done = true;
        else if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return CURL_READFUNC_ABORT; /* cannot happen with a valid stream */
    }
    load_draw(x, false);
    return room - x->zs.avail_out;
}

static int load_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow)
{
    load_draw(ud, false);
    return 0;
}

static size_t load_on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct load_xfer *x = ud;
    size_t n = size * nmemb;
    if (dynbuf_add(&x->reply, data, n) != 0)
        return 0; /* a reply larger than LOAD_REPLY_MAX: abort the transfer */
    return n;
}

static size_t load_on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct load_xfer *x = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char v[32];
        size_t vl = n - (sizeof name - 1);
        if (vl >= sizeof v)
            vl = sizeof v - 1;
        memcpy(v, data + sizeof name - 1, vl);
        v[vl] = '\0';
        char *end;
        double s = strtod(v, &end); /* seconds; an HTTP date is treated as absent */
        if (end != v && s >= 0 && isfinite(s))
            x->retry_after_s = s < LOAD_RETRY_AFTER_MAX_S ? s : LOAD_RETRY_AFTER_MAX_S;
    }
    return n;
}

/* The reply as a yajl tree (caller frees with yajl_tree_free), or NULL when it is not JSON. */
static yajl_val load_json_parse(const struct dynbuf *reply)
{
    char *text = strndup(reply->buf ? reply->buf : "", reply->len); /* yajl wants a NUL */
    yajl_val v = text ? yajl_tree_parse(text, NULL, 0) : NULL;
    free(text);
    return v;
}

/* obj[key] when it has type t, else NULL. */
static yajl_val load_json_get(yajl_val obj, const char *key, yajl_type t)
{
    const char *path[] = { key, NULL };
    return YAJL_IS_OBJECT(obj) ? yajl_tree_get(obj, path, t) : NULL;
}

static long long load_json_int(yajl_val obj, const char *key)
{
    yajl_val v = load_json_get(obj, key, yajl_t_number);
    return YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;
}

static const char *load_json_str(yajl_val obj, const char *key)
{
    return YAJL_GET_STRING(load_json_get(obj, key, yajl_t_string));
}

/* Prints a 201's summary; returns LOAD_OK. */
static int load_report_ok(const struct dynbuf *reply)
{
    yajl_val j = load_json_parse(reply);
    yajl_val id = load_json_get(j, "batch_id", yajl_t_number);
    if (!YAJL_IS_INTEGER(id)) {
        printf("committed (unreadable reply: %.200s)\n", reply->buf ? reply->buf : "");
        yajl_tree_free(j);
        return LOAD_OK;
    }
    yajl_val ms = load_json_get(j, "duration_ms", yajl_t_number);
    printf("batch %lld: %lld rows, %lld bytes, %.0f ms%s\n", YAJL_GET_INTEGER(id),
           load_json_int(j, "rows"), load_json_int(j, "bytes"),
           YAJL_IS_DOUBLE(ms) ? YAJL_GET_DOUBLE(ms) : 0.0,
           load_json_get(j, "replayed", yajl_t_true) ? " (replayed: committed earlier)" : "");
    yajl_tree_free(j);
    return LOAD_OK;
}

/* Prints a refusal (message, code, first errors); returns the exit code for it. */
static int load_report_error(long status, const struct dynbuf *reply, int show)
{
    yajl_val j = load_json_parse(reply);
    const char *msg = load_json_str(j, "error");
    const char *code = load_json_str(j, "code");
    yajl_val errors = load_json_get(j, "errors", yajl_t_array);
    yajl_val count = load_json_get(j, "error_count", yajl_t_number);
    fprintf(stderr, "rates-load: HTTP %ld: %s%s%s%s\n", status,
            msg ? msg : (reply->buf && reply->len ? reply->buf : "(no message)"), code ? " [" : "",
            code ? code : "", code ? "]" : "");
    if (YAJL_IS_INTEGER(count))
        fprintf(stderr, "rates-load: %lld invalid rows or fields; nothing was inserted\n",
                YAJL_GET_INTEGER(count));
    size_t nerr = errors ? errors->u.array.len : 0;
    for (size_t i = 0; i < nerr; i++) {
        if ((int)i >= show) {
            fprintf(stderr, "  ... (%zu more listed by the server)\n", nerr - i);
            break;
        }
        yajl_val e = errors->u.array.values[i];
        const char *field = load_json_str(e, "field");
        const char *message = load_json_str(e, "message");
        fprintf(stderr, "  line %lld: %s: %s\n", load_json_int(e, "line"), field ? field : "?",
                message ? message : "?");
    }
    int rc = LOAD_REFUSED;
    if (status == 401 || status == 403)
        rc = LOAD_AUTH;
    else if (status == 422 && code && strcmp(code, "idempotency_key_reused") == 0)
        rc = LOAD_KEY_REUSED;
    else if (status == 422)
        rc = LOAD_REJECTED;
    else if (status == 409) {
        rc = LOAD_CONFLICT;
        if (code && strcmp(code, "batch_retracted") == 0)
            fprintf(stderr, "rates-load: the batch this key loaded was retracted: its rows are "
                            "gone; use --new-key to load the file again\n");
    }
    yajl_tree_free(j); /* code pointed into it */
    return rc;
}

/* Only what is transient is retried: 503 (overloaded, the database away or read-only), the
 * gateways' 502/504 (outcome unknown, the same key makes a retry safe) and the one 409 that
 * passes: the same key still in flight (typically our own earlier attempt). Any other 409
 * (batch_retracted, port_removed) and 500 would answer the same again. */
static bool load_retryable_status(long status, const struct dynbuf *reply)
{
    if (status == 409)
        return reply->buf && reply->len &&
               memmem(reply->buf, reply->len, "\"idempotency_key_in_progress\"",
                      strlen("\"idempotency_key_in_progress\"")) != NULL;
    return status == 502 || status == 503 || status == 504;
}

static bool load_retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_PEER_FAILED_VERIFICATION:
        return false;
    default:
        return true;
    }
}

static void load_sleep(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits before retry number attempt (0-based): Retry-After when given, else exponential
 * backoff with jitter, 0.5 s doubling up to LOAD_BACKOFF_MAX_S. */
static void load_backoff(int attempt, double retry_after_s)
{
    double s = retry_after_s;
    if (s < 0) {
        s = 0.5 * pow(2.0, attempt);
        if (s > LOAD_BACKOFF_MAX_S)
            s = LOAD_BACKOFF_MAX_S;
        unsigned char r = 0;
        if (getrandom(&r, 1, 0) == 1)
            s *= 0.75 + 0.5 * r / 255.0;
    }
    fprintf(stderr, "rates-load: retrying in %.1f s (retry %d)\n", s, attempt + 1);
    load_sleep(s);
}

/* One POST of the whole file. Returns the curl result; *status is the HTTP status or 0. */
static CURLcode load_attempt(CURL *c, const char *url, struct curl_slist *headers,
                             struct load_xfer *x, const struct load_opts *o, long *status)
{
    *status = 0;
    rewind(x->f);
    x->sent = 0;
    x->lines = 0;
    x->read_error = false;
    x->retry_after_s = -1;
    x->t0_ns = clock_mono_ns();
    x->sent_ns = 0;
    x->last_draw_ns = x->t0_ns;
    x->z_eof = x->z_done = false;
    if (x->gzip) {
        x->zs.next_in = NULL;
        x->zs.avail_in = 0;
        if (deflateReset(&x->zs) != Z_OK)
            return CURLE_OUT_OF_MEMORY;
    }
    dynbuf_reset(&x->reply);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, x->gzip ? load_on_read_gzip : load_on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, x);
    /* The compressed size is not known in advance: a gzip body goes out chunked. */
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     x->gzip ? (curl_off_t)-1 : (curl_off_t)x->size);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, load_on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, load_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, load_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "rates-load/" RATES_VERSION);
    CURLcode rc = curl_easy_perform(c);
    load_draw(x, true);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* The POST loop: retries what is safe with the same key. Returns an exit code. */
static int load_run(const struct load_opts *o, FILE *f, uint64_t size, const char *key,
                    const char *token)
{
    int rc = -1; /* -1 until decided: out of memory */
    char url[LOAD_URL_MAX], hdr[LOAD_TOKEN_MAX + 64];
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/')
        ul--;
    const char *suffix = ul >= 8 && strncmp(o->url + ul - 8, "/batches", 8) == 0 ? "" : "/batches";
    if ((size_t)snprintf(url, sizeof url, "%.*s%s", (int)ul, o->url, suffix) >= sizeof url) {
        load_err("URL too long");
        return LOAD_USAGE;
    }
    struct load_xfer x = {
        .f = f, .size = size, .progress = o->progress, .interval_s = o->interval_s
    };
    x.tty = isatty(STDOUT_FILENO) == 1;
    x.row_mark = strcmp(o->format, "application/json") == 0 ? '{' : '\n';
    if (x.progress < 0)
        x.progress = 1;
    dynbuf_init(&x.reply, LOAD_REPLY_MAX);
    struct curl_slist *h = NULL, *t;
    CURL *c = curl_easy_init();
    if (!c)
        goto fail;
    if (o->gzip) {
        /* Level 6 (gzip's default), a 32 KiB window, gzip wrapper (15 + 16), 8: zlib's default
         * memory level. The header carries no name and no time: the same file gives the same
         * bytes on every attempt. */
        x.gzip = true;
        x.zin = malloc(LOAD_GZIP_IN);
        if (!x.zin || deflateInit2(&x.zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            goto fail;
        x.z_ready = true;
        if (!(t = curl_slist_append(h, "Content-Encoding: gzip")))
            goto fail;
        h = t;
    }
    snprintf(hdr, sizeof hdr, "Content-Type: %s", o->format);
    if (!(t = curl_slist_append(h, hdr)))
        goto fail;
    h = t;
    snprintf(hdr, sizeof hdr, "Idempotency-Key: \"%s\"", key);
    if (!(t = curl_slist_append(h, hdr)))
        goto fail;
    h = t;
    if (token[0]) {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", token);
        t = curl_slist_append(h, hdr);
        explicit_bzero(hdr, sizeof hdr);
        if (!t)
            goto fail;
        h = t;
    }
    for (int attempt = 0;; attempt++) {
        long status = 0;
        CURLcode cc = load_attempt(c, url, h, &x, o, &status);
        if (x.read_error) {
            load_err("cannot read %s: %s", o->file, strerror(errno));
            rc = LOAD_LOCAL;
            break;
        }
        if (cc == CURLE_OK && (status == 200 || status == 201)) {
            rc = load_report_ok(&x.reply);
            break;
        }
        if (cc == CURLE_OK && !load_retryable_status(status, &x.reply)) {
            rc = load_report_error(status, &x.reply, o->show_errors);
            break;
        }
        if (cc != CURLE_OK) {
            load_err("attempt %d: %s%s", attempt + 1, curl_easy_strerror(cc),
                     x.sent == x.size ? " (after the whole body was sent: outcome unknown)" : "");
            if (!load_retryable_curl(cc)) {
                rc = LOAD_REFUSED;
                break;
            }
        } else {
            load_err("attempt %d: HTTP %ld%s", attempt + 1, status,
                     status == 409 ? " (the same key is still being processed)" : "");
        }
        if (attempt >= o->retries) {
            load_err("giving up after %d attempts; re-run the same command to retry safely "
                     "(key %s)",
                     attempt + 1, key);
            rc = LOAD_GAVE_UP;
            break;
        }
        load_backoff(attempt, x.retry_after_s);
    }
fail:
    if (rc < 0) {
        load_err("out of memory");
        rc = LOAD_LOCAL;
    }
    curl_slist_free_all(h);
    if (c)
        curl_easy_cleanup(c);
    if (x.z_ready)
        deflateEnd(&x.zs);
    free(x.zin);
    dynbuf_free(&x.reply);
    return rc;
}

static int load_parse_opts(int argc, char **argv, struct load_opts *o)
{
    static const struct option longs[] = {
        { "format", required_argument, NULL, 'f' },
        { "token-file", required_argument, NULL, 'T' },
        { "key", required_argument, NULL, 'k' },
        { "new-key", no_argument, NULL, 'n' },
        { "gzip", no_argument, NULL, 'z' },
        { "retries", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "errors", required_argument, NULL, 'e' },
        { "progress", no_argument, NULL, 'p' },
        { "quiet", no_argument, NULL, 'q' },
        { "interval", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    *o = (struct load_opts){
        .retries = 8, .timeout_s = 300, .show_errors = 20, .progress = -1, .interval_s = 5
    };
    const char *format = NULL;
    int ch;
    char *end;
    while ((ch = getopt_long(argc, argv, "f:T:k:nzr:t:e:pqi:hV", longs, NULL)) != -1) {
        switch (ch) {
        case 'f':
            format = optarg;
            break;
        case 'T':
            o->token_file = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'n':
            o->new_key = true;
            break;
        case 'z':
            o->gzip = true;
            break;
        case 'r':
            o->retries = (int)strtol(optarg, &end, 10);
            if (*end || o->retries < 0 || o->retries > 100)
                goto bad;
            break;
        case 't':
            o->timeout_s = strtol(optarg, &end, 10);
            if (*end || o->timeout_s < 1 || o->timeout_s > 86400)
                goto bad;
            break;
        case 'e':
            o->show_errors = (int)strtol(optarg, &end, 10);
            if (*end || o->show_errors < 0 || o->show_errors > 100)
                goto bad;
            break;
        case 'p':
            o->progress = 1;
            break;
        case 'q':
            o->progress = 0;
            break;
        case 'i':
            o->interval_s = strtod(optarg, &end);
            if (*end || !(o->interval_s >= 0.1 && o->interval_s <= 3600))
                goto bad;
            break;
        case 'h':
            load_usage(stdout);
            exit(LOAD_OK);
        case 'V':
            printf("rates-load %s (%s)\n", RATES_VERSION, RATES_COMMIT);
            exit(LOAD_OK);
        default: /* getopt_long has said why */
            fputs("Try 'rates-load --help'.\n", stderr);
            return -1;
        }
    }
    if (argc - optind != 2) {
        load_err("expected FILE and URL (try --help)");
        return -1;
    }
    o->file = argv[optind];
    o->url = argv[optind + 1];
    o->format = load_content_type(format, o->file);
    if (!o->format) {
        load_err(format ? "unknown format %s (csv, ndjson or json)"
                        : "cannot tell the format of %s from its extension: use --format",
                 format ? format : o->file);
        return -1;
    }
    if (o->key && o->new_key) {
        load_err("--key and --new-key exclude each other");
        return -1;
    }
    if (o->key && !load_key_valid(o->key)) {
        load_err("--key must be 1..%d printable ASCII characters without '\"' or '\\'",
                 LOAD_KEY_MAX);
        return -1;
    }
    return 0;
bad:
    load_err("bad value for -%c: %s", ch, optarg);
    return -1;
}

int main(int argc, char **argv)
{
    struct load_opts o;
    char token[LOAD_TOKEN_MAX], key[LOAD_KEY_MAX + 1];
    if (load_parse_opts(argc, argv, &o) != 0)
        return LOAD_USAGE;
    if (load_token(o.token_file, token, sizeof token) != 0)
        return LOAD_LOCAL;
    FILE *f = fopen(o.file, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        load_err("cannot read %s: %s", o.file, f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return LOAD_LOCAL;
    }
    int rc = LOAD_LOCAL;
    if (o.key) {
        str_copy(key, sizeof key, o.key);
    } else if (o.new_key) {
        if (load_random_key(key) != 0) {
            load_err("cannot get random bytes for a key");
            goto done;
        }
    } else if (load_file_sha256(f, key) != 0) {
        load_err("cannot read %s: %s", o.file, strerror(errno));
        goto done;
    }
    fprintf(stderr, "rates-load: %s (%.1f MB, %s%s) -> %s, Idempotency-Key %s\n", o.file,
            (double)st.st_size / 1e6, o.format, o.gzip ? ", gzip" : "", o.url, key);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        load_err("cannot initialise libcurl");
        goto done;
    }
    rc = load_run(&o, f, (uint64_t)st.st_size, key, token);
    curl_global_cleanup();
done:
    explicit_bzero(token, sizeof token);
    fclose(f);
    return rc;
}
