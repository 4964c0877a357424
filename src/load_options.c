/* load_options.c: rates-load's command line, help text and token (see load_options.h). */
#include "load_options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct option load_longs[] = {
    { "format", required_argument, NULL, 'f' },     /* csv, ndjson, json */
    { "token-file", required_argument, NULL, 'T' }, /* else $RATES_INGEST_TOKEN */
    { "key", required_argument, NULL, 'k' },        /* else the file's SHA-256 */
    { "new-key", no_argument, NULL, 'n' },          /* a random key */
    { "gzip", no_argument, NULL, 'z' },             /* Content-Encoding: gzip */
    { "retries", required_argument, NULL, 'r' },    /* 0..100, 8 */
    { "timeout", required_argument, NULL, 't' },    /* 1..86400 s, 300 */
    { "errors", required_argument, NULL, 'e' },     /* 0..100, 20 */
    { "progress", no_argument, NULL, 'p' },         /* even off a terminal */
    { "quiet", no_argument, NULL, 'q' },            /* no progress */
    { "interval", required_argument, NULL, 'i' },   /* 0.1..3600 s, 5 */
    { "help", no_argument, NULL, 'h' },             /* acts where it stands */
    { "version", no_argument, NULL, 'V' },          /* acts where it stands */
    { NULL, 0, NULL, 0 },
};
/* The leading ':' makes a missing value ':' rather than '?'; opterr = 0 keeps getopt quiet. */
static const char load_shorts[] = ":f:T:k:nzr:t:e:pqi:hV";

static void load_options_say(char *err, size_t cap, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void load_options_say(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap > 0)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* The long name of short option c, or "?" (the table has one for each). */
static const char *load_options_long_name(int c)
{
    for (const struct option *l = load_longs; l->name; l++)
        if (l->val == c)
            return l->name;
    return "?";
}

/* An integer option's value in lo..hi: all of s is digits (a sign allowed), nothing empty. */
static bool load_options_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Why getopt_long refused argv[optind - 1] (or the short option optopt), as one line. */
static void load_options_refusal(int ch, int argc, char **argv, char *err, size_t cap)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    if (ch == ':')
        load_options_say(err, cap, "option -%c (--%s) requires a value (try --help)", optopt,
                         load_options_long_name(optopt));
    else if (optopt != 0 && strchr(load_shorts + 1, optopt) && optopt != ':')
        load_options_say(err, cap, "option --%s takes no value (try --help)",
                         load_options_long_name(optopt));
    else if (optopt != 0)
        load_options_say(err, cap, "unknown option -%c (try --help)", optopt);
    else
        load_options_say(err, cap, "unknown or ambiguous option %s (try --help)", arg);
}

const char *load_options_content_type(const char *format, const char *file)
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

bool load_options_key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > LOAD_OPTIONS_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x20 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\')
            return false;
    return true;
}

enum load_options_action load_options_parse(int argc, char **argv, struct load_options *o,
                                            char *err, size_t errcap)
{
    *o = (struct load_options){
        .retries = 8, .timeout_s = 300, .show_errors = 20, .progress = -1, .interval_s = 5
    };
    if (errcap > 0)
        err[0] = '\0';
    const char *format = NULL;
    int ch;
    long v;
    char *end;
    optind = 0; /* glibc: start afresh, as on the first call */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, load_shorts, load_longs, NULL)) != -1) {
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
            if (!load_options_long(optarg, 0, 100, &v))
                goto bad;
            o->retries = (int)v;
            break;
        case 't':
            if (!load_options_long(optarg, 1, 86400, &v))
                goto bad;
            o->timeout_s = v;
            break;
        case 'e':
            if (!load_options_long(optarg, 0, 100, &v))
                goto bad;
            o->show_errors = (int)v;
            break;
        case 'p':
            o->progress = 1;
            break;
        case 'q':
            o->progress = 0;
            break;
        case 'i':
            o->interval_s = strtod(optarg, &end);
            if (end == optarg || *end || !(o->interval_s >= 0.1 && o->interval_s <= 3600))
                goto bad;
            break;
        case 'h':
            return LOAD_OPTIONS_HELP;
        case 'V':
            return LOAD_OPTIONS_VERSION;
        default:
            load_options_refusal(ch, argc, argv, err, errcap);
            return LOAD_OPTIONS_BAD;
        }
    }
    if (argc - optind != 2) {
        load_options_say(err, errcap, "expected FILE and URL (try --help)");
        return LOAD_OPTIONS_BAD;
    }
    o->file = argv[optind];
    o->url = argv[optind + 1];
    o->content_type = load_options_content_type(format, o->file);
    if (!o->content_type) {
        if (format)
            load_options_say(err, errcap, "unknown format %s (csv, ndjson or json)", format);
        else
            load_options_say(err, errcap,
                             "cannot tell the format of %s from its extension: use --format",
                             o->file);
        return LOAD_OPTIONS_BAD;
    }
    if (o->key && o->new_key) {
        load_options_say(err, errcap, "--key and --new-key exclude each other");
        return LOAD_OPTIONS_BAD;
    }
    if (o->key && !load_options_key_valid(o->key)) {
        load_options_say(err, errcap,
                         "--key must be 1..%d printable ASCII characters without '\"' or '\\'",
                         LOAD_OPTIONS_KEY_MAX);
        return LOAD_OPTIONS_BAD;
    }
    return LOAD_OPTIONS_RUN;
bad:
    load_options_say(err, errcap, "bad value for -%c (--%s): '%s'", ch, load_options_long_name(ch),
                     optarg);
    return LOAD_OPTIONS_BAD;
}

int load_options_token(const char *path, const char *env, char *out, size_t cap, char *err,
                       size_t errcap)
{
    out[0] = '\0';
    if (!path) {
        if (env && strlen(env) >= cap) {
            load_options_say(err, errcap, "RATES_INGEST_TOKEN is longer than %zu bytes", cap - 1);
            return -1;
        }
        if (env)
            str_copy(out, cap, env);
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        load_options_say(err, errcap, "cannot read token file %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = fgets(out, (int)cap, f) ? 0 : -1;
    fclose(f);
    if (rc != 0) {
        out[0] = '\0';
        load_options_say(err, errcap, "token file %s is empty", path);
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

void load_options_usage(FILE *out)
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
