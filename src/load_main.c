/* load_main.c: rates-load, the operators' loader: streams a CSV/NDJSON/JSON file to
 * POST /batches with an Idempotency-Key, retrying what is safe to retry (see --help). The
 * options are load_options.c, the HTTP side load_transfer.c, the policy load_outcome.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "common.h"
#include "load_options.h"
#include "load_outcome.h"
#include "load_transfer.h"

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

/* Waits before retry number attempt + 1, as load_outcome_backoff_s() says. */
static void load_backoff(int attempt, double retry_after_s)
{
    unsigned char r = 0;
    int jitter = getrandom(&r, 1, 0) == 1 ? r : -1;
    double s = load_outcome_backoff_s(attempt, retry_after_s, jitter);
    fprintf(stderr, "rates-load: retrying in %.1f s (retry %d)\n", s, attempt + 1);
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The POST loop: retries what is safe with the same key. Returns the exit code. */
static int load_run(struct load_transfer *t, const struct load_options *o, const char *key)
{
    for (int attempt = 0;; attempt++) {
        struct load_transfer_result r;
        load_transfer_post(t, &r);
        const struct load_answer *a = &r.answer;
        struct load_decision d = load_outcome_decide(a, attempt, o->retries);
        switch (d.verdict) {
        case LOAD_VERDICT_READ_ERROR:
            load_err("cannot read %s: %s", o->file, strerror(r.read_errno));
            break;
        case LOAD_VERDICT_COMMITTED:
            load_transfer_report_ok(t);
            break;
        case LOAD_VERDICT_ANSWERED: {
            load_transfer_report_error(t, a->status, o->show_errors);
            const char *hint = load_outcome_hint(a->status, a->code);
            if (hint)
                load_err("%s", hint);
            break;
        }
        case LOAD_VERDICT_BROKEN:
        case LOAD_VERDICT_RETRY:
        case LOAD_VERDICT_GAVE_UP:
            if (a->curl != CURLE_OK)
                load_err("attempt %d: %s%s", attempt + 1, curl_easy_strerror(a->curl),
                         r.body_sent ? " (after the whole body was sent: outcome unknown)" : "");
            else
                load_err("attempt %d: HTTP %ld%s", attempt + 1, a->status,
                         a->status == 409 ? " (the same key is still being processed)" : "");
            if (d.verdict == LOAD_VERDICT_GAVE_UP)
                load_err("giving up after %d attempts; re-run the same command to retry safely "
                         "(key %s)",
                         attempt + 1, key);
            break;
        }
        if (d.verdict != LOAD_VERDICT_RETRY)
            return d.exit_code;
        load_backoff(attempt, r.retry_after_s);
    }
}

int main(int argc, char **argv)
{
    struct load_options o;
    char err[512], token[LOAD_OPTIONS_TOKEN_MAX], key[LOAD_OPTIONS_KEY_MAX + 1];
    switch (load_options_parse(argc, argv, &o, err, sizeof err)) {
    case LOAD_OPTIONS_RUN:
        break;
    case LOAD_OPTIONS_HELP:
        load_options_usage(stdout);
        return LOAD_EXIT_OK;
    case LOAD_OPTIONS_VERSION:
        printf("rates-load %s (%s)\n", RATES_VERSION, RATES_COMMIT);
        return LOAD_EXIT_OK;
    case LOAD_OPTIONS_BAD:
        load_err("%s", err);
        return LOAD_EXIT_USAGE;
    }
    if (load_options_token(o.token_file, getenv("RATES_INGEST_TOKEN"), token, sizeof token, err,
                           sizeof err) != 0) {
        load_err("%s", err);
        return LOAD_EXIT_LOCAL;
    }
    FILE *f = fopen(o.file, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        load_err("cannot read %s: %s", o.file, f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        explicit_bzero(token, sizeof token);
        return LOAD_EXIT_LOCAL;
    }
    int rc = LOAD_EXIT_LOCAL;
    struct load_transfer *t = NULL;
    if (o.key) {
        str_copy(key, sizeof key, o.key);
    } else if (o.new_key) {
        if (load_transfer_key_random(key) != 0) {
            load_err("cannot get random bytes for a key");
            goto done;
        }
    } else if (load_transfer_key_file(f, key) != 0) {
        load_err("cannot read %s: %s", o.file, strerror(errno));
        goto done;
    }
    fprintf(stderr, "rates-load: %s (%.1f MB, %s%s) -> %s, Idempotency-Key %s\n", o.file,
            (double)st.st_size / 1e6, o.content_type, o.gzip ? ", gzip" : "", o.url, key);
    struct load_transfer_cfg cfg = {
        .url = o.url,
        .content_type = o.content_type,
        .key = key,
        .token = token,
        .gzip = o.gzip,
        .timeout_s = o.timeout_s,
        .progress = o.progress,
        .interval_s = o.interval_s,
    };
    rc = load_transfer_open(&t, &cfg, f, (uint64_t)st.st_size, err, sizeof err);
    explicit_bzero(token, sizeof token); /* the transfer holds its own copy in a header */
    if (rc != 0) {
        load_err("%s", err);
        goto done;
    }
    rc = load_run(t, &o, key);
done:
    load_transfer_close(t);
    explicit_bzero(token, sizeof token);
    fclose(f);
    return rc;
}
