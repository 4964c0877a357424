/* load_options.h: rates-load's command line and environment: argv into struct load_options
 * (no output, no exit: an error comes back as a message for the caller to print), the help
 * text, and the bearer token from --token-file or $RATES_INGEST_TOKEN. */
#ifndef RATES_LOAD_OPTIONS_H
#define RATES_LOAD_OPTIONS_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define LOAD_OPTIONS_KEY_MAX 255    /* an Idempotency-Key's characters */
#define LOAD_OPTIONS_TOKEN_MAX 4096 /* a token's bytes, NUL included */

/* The strings point into argv (file, url, token_file, key) or are static (content_type):
 * valid as long as argv is. */
struct load_options {
    const char *file;
    const char *url;
    const char *content_type; /* from --format or the file's extension */
    const char *token_file;   /* NULL: $RATES_INGEST_TOKEN */
    const char *key;          /* NULL: the SHA-256 of the file, or a random one (new_key) */
    bool new_key;
    bool gzip;         /* compress the body (Content-Encoding: gzip) */
    int retries;       /* 0..100 retries after the first attempt (8) */
    long timeout_s;    /* 1..86400 s without progress end an attempt (300) */
    int show_errors;   /* 0..100 errors of a rejected batch printed (20) */
    int progress;      /* -1 auto, 0 off (--quiet), 1 on (--progress) */
    double interval_s; /* 0.1..3600 s between plain progress lines (5) */
};

enum load_options_action {
    LOAD_OPTIONS_RUN,     /* *o is complete and valid */
    LOAD_OPTIONS_HELP,    /* --help came first: print load_options_usage(stdout), exit 0 */
    LOAD_OPTIONS_VERSION, /* --version came first: print the version, exit 0 */
    LOAD_OPTIONS_BAD,     /* err holds why (one line, with a hint to --help): exit 2 */
};

/* Parses argv (getopt_long: --opt=value or --opt value; options before, between or after
 * FILE and URL) into *o, defaults first. --help and --version act where they stand, as an
 * error before them wins. Writes a one-line message into err (cap errcap, truncated) on
 * LOAD_OPTIONS_BAD. Uses getopt's globals (reset on each call: not thread-safe) and may
 * reorder argv's pointers. */
enum load_options_action load_options_parse(int argc, char **argv, struct load_options *o,
                                            char *err, size_t errcap) WUR;

/* Maps a --format name (csv, ndjson, jsonl, json; any case) or, when format is NULL, the
 * extension of file to a Content-Type (a static string); NULL when unknown. */
const char *load_options_content_type(const char *format, const char *file);

/* Whether key can be sent as a quoted Idempotency-Key: 1..255 printable ASCII characters
 * without '"' or '\'. */
bool load_options_key_valid(const char *key);

/* The help text (--help). */
void load_options_usage(FILE *out);

/* The bearer token into out (cap bytes): the first line of the file path when path is set,
 * else env (the value of $RATES_INGEST_TOKEN, or NULL: out is then ""). Returns 0, or -1 with
 * a message in err (the file is missing or empty, or env does not fit in cap). */
int load_options_token(const char *path, const char *env, char *out, size_t cap, char *err,
                       size_t errcap) WUR;

#endif
