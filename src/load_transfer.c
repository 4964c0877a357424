/* load_transfer.c: rates-load's HTTP side: POST /batches with libcurl, the body read or
 * gzip-compressed as it is sent, progress, the reply and its reports (see load_transfer.h). */
#include "load_transfer.h"

#include "dynbuf.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include <zlib.h>

#define LOAD_HEADER_MAX (4096 + 64)
#define LOAD_GZIP_IN (256 * 1024) /* file bytes read per refill of the compressor */

/* One upload; the per-attempt part is reset before each attempt. */
struct load_transfer {
    CURL *curl;
    struct curl_slist *headers;
    char url[LOAD_TRANSFER_URL_MAX];
    long timeout_s;
    FILE *f; /* borrowed */
    uint64_t size;
    uint64_t sent;
    uint64_t lines;       /* row marks read so far: an estimate of rows */
    char row_mark;        /* LF for CSV/NDJSON, '{' for a JSON array */
    struct dynbuf reply;  /* response body, capped at LOAD_TRANSFER_REPLY_MAX */
    yajl_val json;        /* the reply parsed (owned), or NULL when it is not JSON */
    double retry_after_s; /* from Retry-After, or -1 */
    bool tty;
    int progress;
    double interval_s;
    uint64_t t0_ns;
    uint64_t sent_ns; /* when the whole body had been read, or 0 */
    uint64_t last_draw_ns;
    bool read_error;
    int read_errno;
    /* --gzip: the compressor, reset before each attempt; zin (owned) holds file bytes. */
    bool gzip, z_ready, z_eof, z_done;
    z_stream zs;
    unsigned char *zin;
};

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
static void load_draw(struct load_transfer *x, bool final)
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
static void load_count(struct load_transfer *x, const char *buf, size_t n)
{
    for (const char *p = buf, *end = buf + n; (p = memchr(p, x->row_mark, (size_t)(end - p))); p++)
        x->lines++;
    x->sent += n;
}

static size_t load_on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct load_transfer *x = ud;
    size_t n = fread(buf, 1, size * nitems, x->f);
    if (n == 0 && ferror(x->f)) {
        x->read_error = true;
        x->read_errno = errno;
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
    struct load_transfer *x = ud;
    size_t cap = size * nitems;
    x->zs.next_out = (Bytef *)buf;
    x->zs.avail_out = (uInt)(cap > (1u << 30) ? (1u << 30) : cap);
    size_t room = x->zs.avail_out;
    while (x->zs.avail_out > 0 && !x->z_done) {
        if (x->zs.avail_in == 0 && !x->z_eof) {
            size_t n = fread(x->zin, 1, LOAD_GZIP_IN, x->f);
            if (n == 0 && ferror(x->f)) {
                x->read_error = true;
                x->read_errno = errno;
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
    struct load_transfer *x = ud;
    size_t n = size * nmemb;
    if (dynbuf_add(&x->reply, data, n) != 0)
        return 0; /* a reply larger than LOAD_TRANSFER_REPLY_MAX: abort the transfer */
    return n;
}

static size_t load_on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct load_transfer *x = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        double s = load_outcome_retry_after(data + sizeof name - 1, n - (sizeof name - 1));
        if (s >= 0)
            x->retry_after_s = s;
    }
    return n;
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

/* The reply as a yajl tree (the caller frees it with yajl_tree_free), or NULL when it is not
 * JSON. */
static yajl_val load_json_parse(const struct dynbuf *reply)
{
    char *text = strndup(reply->buf ? reply->buf : "", reply->len); /* yajl wants a NUL */
    yajl_val v = text ? yajl_tree_parse(text, NULL, 0) : NULL;
    free(text);
    return v;
}

void load_transfer_report_ok(const struct load_transfer *t)
{
    yajl_val j = t->json;
    yajl_val id = load_json_get(j, "batch_id", yajl_t_number);
    if (!YAJL_IS_INTEGER(id)) {
        printf("committed (unreadable reply: %.200s)\n", t->reply.buf ? t->reply.buf : "");
        return;
    }
    yajl_val ms = load_json_get(j, "duration_ms", yajl_t_number);
    printf("batch %lld: %lld rows, %lld bytes, %.0f ms%s\n", YAJL_GET_INTEGER(id),
           load_json_int(j, "rows"), load_json_int(j, "bytes"),
           YAJL_IS_DOUBLE(ms) ? YAJL_GET_DOUBLE(ms) : 0.0,
           load_json_get(j, "replayed", yajl_t_true) ? " (replayed: committed earlier)" : "");
}

void load_transfer_report_error(const struct load_transfer *t, long status, int show)
{
    yajl_val j = t->json;
    const char *msg = load_json_str(j, "error");
    const char *code = load_json_str(j, "code");
    yajl_val errors = load_json_get(j, "errors", yajl_t_array);
    yajl_val count = load_json_get(j, "error_count", yajl_t_number);
    fprintf(stderr, "rates-load: HTTP %ld: %s%s%s%s\n", status,
            msg ? msg : (t->reply.buf && t->reply.len ? t->reply.buf : "(no message)"),
            code ? " [" : "", code ? code : "", code ? "]" : "");
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
}

void load_transfer_post(struct load_transfer *x, struct load_transfer_result *r)
{
    CURL *c = x->curl;
    long status = 0;
    rewind(x->f);
    x->sent = 0;
    x->lines = 0;
    x->read_error = false;
    x->read_errno = 0;
    x->retry_after_s = -1;
    x->t0_ns = clock_mono_ns();
    x->sent_ns = 0;
    x->last_draw_ns = x->t0_ns;
    x->z_eof = x->z_done = false;
    yajl_tree_free(x->json);
    x->json = NULL;
    dynbuf_reset(&x->reply);
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (x->gzip) {
        x->zs.next_in = NULL;
        x->zs.avail_in = 0;
        if (deflateReset(&x->zs) != Z_OK)
            goto done;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
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
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, x->timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "rates-load/" RATES_VERSION);
    rc = curl_easy_perform(c);
    load_draw(x, true);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        x->json = load_json_parse(&x->reply);
    }
done:
    *r = (struct load_transfer_result){
        .answer = { .read_error = x->read_error,
                    .curl = rc,
                    .status = status,
                    .reply = x->reply.buf,
                    .reply_len = x->reply.len,
                    .code = load_json_str(x->json, "code") },
        .read_errno = x->read_errno,
        .body_sent = x->sent == x->size,
        .retry_after_s = x->retry_after_s,
    };
}

/* Appends one header line (copied by curl) to t's list. */
static int load_add_header(struct load_transfer *t, const char *line)
{
    struct curl_slist *l = curl_slist_append(t->headers, line);
    if (!l)
        return -1;
    t->headers = l;
    return 0;
}

int load_transfer_open(struct load_transfer **out, const struct load_transfer_cfg *cfg, FILE *f,
                       uint64_t size, char *err, size_t errcap)
{
    *out = NULL;
    char url[LOAD_TRANSFER_URL_MAX], hdr[LOAD_HEADER_MAX];
    size_t ul = strlen(cfg->url);
    while (ul > 0 && cfg->url[ul - 1] == '/')
        ul--;
    const char *suffix =
        ul >= 8 && strncmp(cfg->url + ul - 8, "/batches", 8) == 0 ? "" : "/batches";
    if ((size_t)snprintf(url, sizeof url, "%.*s%s", (int)ul, cfg->url, suffix) >= sizeof url) {
        snprintf(err, errcap, "URL too long");
        return LOAD_EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errcap, "cannot initialise libcurl");
        return LOAD_EXIT_LOCAL;
    }
    struct load_transfer *x = calloc(1, sizeof *x);
    if (!x) {
        curl_global_cleanup();
        goto oom;
    }
    memcpy(x->url, url, sizeof url);
    x->timeout_s = cfg->timeout_s;
    x->f = f;
    x->size = size;
    x->progress = cfg->progress < 0 ? 1 : cfg->progress;
    x->interval_s = cfg->interval_s;
    x->tty = isatty(STDOUT_FILENO) == 1;
    x->row_mark = strcmp(cfg->content_type, "application/json") == 0 ? '{' : '\n';
    dynbuf_init(&x->reply, LOAD_TRANSFER_REPLY_MAX);
    if (!(x->curl = curl_easy_init()))
        goto fail;
    if (cfg->gzip) {
        /* Level 6 (gzip's default), a 32 KiB window, gzip wrapper (15 + 16), 8: zlib's default
         * memory level. The header carries no name and no time: the same file gives the same
         * bytes on every attempt. */
        x->gzip = true;
        x->zin = malloc(LOAD_GZIP_IN);
        if (!x->zin || deflateInit2(&x->zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            goto fail;
        x->z_ready = true;
        if (load_add_header(x, "Content-Encoding: gzip") != 0)
            goto fail;
    }
    snprintf(hdr, sizeof hdr, "Content-Type: %s", cfg->content_type);
    if (load_add_header(x, hdr) != 0)
        goto fail;
    snprintf(hdr, sizeof hdr, "Idempotency-Key: \"%s\"", cfg->key);
    if (load_add_header(x, hdr) != 0)
        goto fail;
    if (cfg->token[0]) {
        int n = snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", cfg->token);
        int rc = n >= 0 && (size_t)n < sizeof hdr ? load_add_header(x, hdr) : -1;
        explicit_bzero(hdr, sizeof hdr);
        if (rc != 0)
            goto fail;
    }
    *out = x;
    return 0;
fail:
    load_transfer_close(x);
oom:
    snprintf(err, errcap, "out of memory");
    return LOAD_EXIT_LOCAL;
}

void load_transfer_close(struct load_transfer *t)
{
    if (!t)
        return;
    curl_slist_free_all(t->headers);
    if (t->curl)
        curl_easy_cleanup(t->curl);
    if (t->z_ready)
        deflateEnd(&t->zs);
    free(t->zin);
    yajl_tree_free(t->json);
    dynbuf_free(&t->reply);
    free(t);
    curl_global_cleanup();
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

int load_transfer_key_file(FILE *f, char *out)
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

int load_transfer_key_random(char *out)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return -1;
    load_hex(r, sizeof r, out);
    return 0;
}
