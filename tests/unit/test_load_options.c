/* test_load_options.c: rates-load's command line (src/load_options.c): defaults, every option
 * in its short, --opt=value and --opt value forms, bounds, the format from the extension, the
 * usage errors and their messages, --help/--version, and the token's two sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "load_options.h"

#define MAX_ARGS 32

static char err[512];

/* Parses the NULL-terminated arguments after "rates-load" (copied: getopt reorders them). */
static enum load_options_action parse_v(struct load_options *o, va_list ap)
{
    static char copies[MAX_ARGS][300];
    static char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = strcpy(copies[0], "rates-load");
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(argc < MAX_ARGS && strlen(a) < sizeof copies[0]);
        argv[argc] = strcpy(copies[argc], a);
        argc++;
    }
    argv[argc] = NULL;
    memset(err, 'x', sizeof err - 1);
    err[sizeof err - 1] = '\0';
    return load_options_parse(argc, argv, o, err, sizeof err);
}

static enum load_options_action parse(struct load_options *o, ...)
{
    va_list ap;
    va_start(ap, o);
    enum load_options_action r = parse_v(o, ap);
    va_end(ap);
    return r;
}

/* Parses and expects LOAD_OPTIONS_BAD with a message that contains want. */
static void expect_bad(const char *want, ...)
{
    struct load_options o;
    va_list ap;
    va_start(ap, want);
    enum load_options_action r = parse_v(&o, ap);
    va_end(ap);
    if (r != LOAD_OPTIONS_BAD)
        fail_msg("accepted (action %d), want an error with '%s'", r, want);
    if (!strstr(err, want))
        fail_msg("message '%s' does not say '%s'", err, want);
    assert_null(strchr(err, '\n')); /* one line: main prefixes "rates-load: " */
}

static void test_defaults(void **state)
{
    (void)state;
    struct load_options o;
    assert_int_equal(parse(&o, "prices.csv", "http://h:3000", NULL), LOAD_OPTIONS_RUN);
    assert_string_equal(err, ""); /* cleared on success */
    assert_string_equal(o.file, "prices.csv");
    assert_string_equal(o.url, "http://h:3000");
    assert_string_equal(o.content_type, "text/csv");
    assert_null(o.token_file);
    assert_null(o.key);
    assert_false(o.new_key);
    assert_false(o.gzip);
    assert_int_equal(o.retries, 8);
    assert_int_equal(o.timeout_s, 300);
    assert_int_equal(o.show_errors, 20);
    assert_int_equal(o.progress, -1);
    assert_float_equal(o.interval_s, 5, 0);
}

static void check_all_set(const struct load_options *o)
{
    assert_string_equal(o->file, "in.data");
    assert_string_equal(o->url, "http://u");
    assert_string_equal(o->content_type, "application/x-ndjson");
    assert_string_equal(o->token_file, "/run/tok");
    assert_string_equal(o->key, "k-1");
    assert_true(o->gzip);
    assert_int_equal(o->retries, 3);
    assert_int_equal(o->timeout_s, 60);
    assert_int_equal(o->show_errors, 7);
    assert_int_equal(o->progress, 0);
    assert_float_equal(o->interval_s, 0.5, 0);
}

static void test_every_option_in_three_forms(void **state)
{
    (void)state;
    struct load_options o;
    assert_int_equal(parse(&o, "-f", "ndjson", "-T", "/run/tok", "-k", "k-1", "-z", "-r", "3", "-t",
                           "60", "-e", "7", "-q", "-i", "0.5", "in.data", "http://u", NULL),
                     LOAD_OPTIONS_RUN);
    check_all_set(&o);
    assert_int_equal(parse(&o, "--format=ndjson", "--token-file=/run/tok", "--key=k-1", "--gzip",
                           "--retries=3", "--timeout=60", "--errors=7", "--quiet", "--interval=0.5",
                           "in.data", "http://u", NULL),
                     LOAD_OPTIONS_RUN);
    check_all_set(&o);
    assert_int_equal(parse(&o, "--format", "ndjson", "--token-file", "/run/tok", "--key", "k-1",
                           "--gzip", "--retries", "3", "--timeout", "60", "--errors", "7",
                           "--quiet", "--interval", "0.5", "in.data", "http://u", NULL),
                     LOAD_OPTIONS_RUN);
    check_all_set(&o);
    /* Options after and between FILE and URL, short ones clustered, unique abbreviations. */
    assert_int_equal(parse(&o, "in.data", "-zqr3", "--form=ndjson", "http://u", "-T/run/tok",
                           "-kk-1", "--time", "60", "-e7", "-i0.5", NULL),
                     LOAD_OPTIONS_RUN);
    check_all_set(&o);
    /* The last of --progress and --quiet wins; --new-key alone. */
    assert_int_equal(parse(&o, "-q", "--progress", "--new-key", "a.csv", "u", NULL),
                     LOAD_OPTIONS_RUN);
    assert_int_equal(o.progress, 1);
    assert_true(o.new_key);
    assert_int_equal(parse(&o, "-p", "-q", "a.csv", "u", NULL), LOAD_OPTIONS_RUN);
    assert_int_equal(o.progress, 0);
    /* "--" ends the options: a file may start with '-'. */
    assert_int_equal(parse(&o, "--", "-odd.csv", "u", NULL), LOAD_OPTIONS_RUN);
    assert_string_equal(o.file, "-odd.csv");
}

static void test_content_type(void **state)
{
    (void)state;
    static const struct {
        const char *format, *file, *want;
    } cases[] = {
        { NULL, "a.csv", "text/csv" },
        { NULL, "dir/A.CSV", "text/csv" },
        { NULL, "a.ndjson", "application/x-ndjson" },
        { NULL, "a.jsonl", "application/x-ndjson" },
        { NULL, "a.json", "application/json" },
        { NULL, "a.tar.json", "application/json" },
        { NULL, "a.txt", NULL },
        { NULL, "a", NULL },
        { NULL, "a.", NULL },
        { NULL, "d.csv/prices", NULL }, /* the dot is the directory's */
        { NULL, ".csv", "text/csv" },
        { "csv", "a.json", "text/csv" }, /* --format wins over the extension */
        { "JSON", "a", "application/json" },
        { "jsonl", "a", "application/x-ndjson" },
        { "xml", "a.csv", NULL },
        { "", "a.csv", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = load_options_content_type(cases[i].format, cases[i].file);
        if ((got == NULL) != (cases[i].want == NULL) || (got && strcmp(got, cases[i].want) != 0))
            fail_msg("format %s file %s: %s, want %s", cases[i].format ? cases[i].format : "-",
                     cases[i].file, got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
    }
}

static void test_format_errors(void **state)
{
    (void)state;
    expect_bad("unknown format xml (csv, ndjson or json)", "--format=xml", "a.csv", "u", NULL);
    expect_bad("unknown format xml", "-f", "xml", "a.csv", "u", NULL);
    expect_bad("cannot tell the format of a.txt from its extension: use --format", "a.txt", "u",
               NULL);
    expect_bad("use --format", "d.csv/prices", "u", NULL);
}

static void test_value_bounds(void **state)
{
    (void)state;
    struct load_options o;
    assert_int_equal(parse(&o, "-r", "0", "-e", "0", "-t", "1", "-i", "0.1", "a.csv", "u", NULL),
                     LOAD_OPTIONS_RUN);
    assert_int_equal(o.retries, 0);
    assert_int_equal(o.show_errors, 0);
    assert_int_equal(o.timeout_s, 1);
    assert_float_equal(o.interval_s, 0.1, 0);
    assert_int_equal(
        parse(&o, "-r", "100", "-e", "100", "-t", "86400", "-i", "3600", "a.csv", "u", NULL),
        LOAD_OPTIONS_RUN);
    assert_int_equal(o.retries, 100);
    assert_int_equal(o.show_errors, 100);
    assert_int_equal(o.timeout_s, 86400);
    assert_float_equal(o.interval_s, 3600, 0);

    expect_bad("bad value for -r (--retries): '-1'", "-r", "-1", "a.csv", "u", NULL);
    expect_bad("bad value for -r (--retries): '101'", "--retries=101", "a.csv", "u", NULL);
    expect_bad("bad value for -r (--retries): 'x'", "--retries", "x", "a.csv", "u", NULL);
    expect_bad("bad value for -r (--retries): '5x'", "-r5x", "a.csv", "u", NULL);
    expect_bad("bad value for -r (--retries): ''", "--retries=", "a.csv", "u", NULL);
    /* Not wrapped into range through a cast. */
    expect_bad("bad value for -r (--retries): '4294967301'", "-r", "4294967301", "a.csv", "u",
               NULL);
    expect_bad("bad value for -r", "-r", "99999999999999999999999", "a.csv", "u", NULL);
    expect_bad("bad value for -t (--timeout): '0'", "-t", "0", "a.csv", "u", NULL);
    expect_bad("bad value for -t (--timeout): '86401'", "--timeout=86401", "a.csv", "u", NULL);
    expect_bad("bad value for -t (--timeout): '1.5'", "-t", "1.5", "a.csv", "u", NULL);
    expect_bad("bad value for -e (--errors): '101'", "-e", "101", "a.csv", "u", NULL);
    expect_bad("bad value for -e (--errors): '-1'", "--errors=-1", "a.csv", "u", NULL);
    expect_bad("bad value for -i (--interval): '0.09'", "-i", "0.09", "a.csv", "u", NULL);
    expect_bad("bad value for -i (--interval): '3601'", "--interval=3601", "a.csv", "u", NULL);
    expect_bad("bad value for -i (--interval): 'nan'", "-i", "nan", "a.csv", "u", NULL);
    expect_bad("bad value for -i (--interval): ''", "--interval=", "a.csv", "u", NULL);
    expect_bad("bad value for -i (--interval): '1s'", "-i", "1s", "a.csv", "u", NULL);
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_bad("expected FILE and URL (try --help)", NULL);
    expect_bad("expected FILE and URL", "only-one.csv", NULL);
    expect_bad("expected FILE and URL", "a.csv", "u", "extra", NULL);
    expect_bad("expected FILE and URL", "-q", "a.csv", NULL);
    expect_bad("unknown or ambiguous option --no-such-option (try --help)", "--no-such-option",
               "a.csv", "u", NULL);
    expect_bad("unknown or ambiguous option --t", "--t", "1", "a.csv", "u", NULL); /* timeout? */
    expect_bad("unknown option -x (try --help)", "-x", "a.csv", "u", NULL);
    expect_bad("unknown option -x", "-qxz", "a.csv", "u", NULL); /* inside a cluster */
    expect_bad("option -r (--retries) requires a value (try --help)", "a.csv", "u", "-r", NULL);
    expect_bad("option -f (--format) requires a value", "a.csv", "u", "--format", NULL);
    expect_bad("option --gzip takes no value (try --help)", "--gzip=1", "a.csv", "u", NULL);
    expect_bad("option --new-key takes no value", "--new-key=yes", "a.csv", "u", NULL);
    /* The first error stops the parse: later options are not looked at. */
    expect_bad("unknown option -x", "-x", "-r", "bad", "a.csv", "u", NULL);
}

static void test_keys(void **state)
{
    (void)state;
    struct load_options o;
    char k[LOAD_OPTIONS_KEY_MAX + 2];
    memset(k, 'a', sizeof k);
    k[LOAD_OPTIONS_KEY_MAX] = '\0';
    assert_int_equal(parse(&o, "-k", k, "a.csv", "u", NULL), LOAD_OPTIONS_RUN);
    assert_string_equal(o.key, k);
    assert_int_equal(parse(&o, "--key= !#~ key with spaces", "a.csv", "u", NULL), LOAD_OPTIONS_RUN);
    k[LOAD_OPTIONS_KEY_MAX] = 'a';
    k[LOAD_OPTIONS_KEY_MAX + 1] = '\0';
    expect_bad("--key must be 1..255 printable ASCII characters", "-k", k, "a.csv", "u", NULL);
    expect_bad("--key must be 1..255", "--key=", "a.csv", "u", NULL);
    expect_bad("--key must be 1..255", "--key=a\"b", "a.csv", "u", NULL);
    expect_bad("--key must be 1..255", "--key=a\\b", "a.csv", "u", NULL);
    expect_bad("--key must be 1..255", "--key=a\tb", "a.csv", "u", NULL);
    expect_bad("--key must be 1..255", "--key=a\x7f", "a.csv", "u", NULL);
    expect_bad("--key must be 1..255", "--key=caf\xc3\xa9", "a.csv", "u", NULL);
    expect_bad("--key and --new-key exclude each other", "-k", "a", "-n", "a.csv", "u", NULL);
    expect_bad("--key and --new-key exclude each other", "--new-key", "--key=a", "a.csv", "u",
               NULL);

    assert_true(load_options_key_valid("x"));
    assert_true(load_options_key_valid("~ !"));
    assert_false(load_options_key_valid(""));
    assert_false(load_options_key_valid("\x1f"));
}

static void test_help_and_version(void **state)
{
    (void)state;
    struct load_options o;
    assert_int_equal(parse(&o, "--help", NULL), LOAD_OPTIONS_HELP);
    assert_int_equal(parse(&o, "-h", "a.csv", "u", NULL), LOAD_OPTIONS_HELP);
    assert_int_equal(parse(&o, "--version", NULL), LOAD_OPTIONS_VERSION);
    assert_int_equal(parse(&o, "-V", "too", "many", "args", NULL), LOAD_OPTIONS_VERSION);
    /* Each acts where it stands: a bad value before it is the answer, one after is not read. */
    assert_int_equal(parse(&o, "--help", "--no-such-option", NULL), LOAD_OPTIONS_HELP);
    assert_int_equal(parse(&o, "-V", "-h", NULL), LOAD_OPTIONS_VERSION);
    expect_bad("unknown or ambiguous option --no-such-option", "--no-such-option", "--help", NULL);
    expect_bad("bad value for -r", "-r", "x", "--version", NULL);
}

static void test_message_is_bounded(void **state)
{
    (void)state;
    struct load_options o;
    char argv0[] = "rates-load", a1[] = "--format=a-very-long-format-name", a2[] = "a.csv",
         a3[] = "u";
    char *argv[] = { argv0, a1, a2, a3, NULL };
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(load_options_parse(4, argv, &o, small, sizeof small), LOAD_OPTIONS_BAD);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, "unknown", 7);
    char none = 'x';
    assert_int_equal(load_options_parse(4, argv, &o, &none, 0), LOAD_OPTIONS_BAD);
    assert_int_equal(none, 'x'); /* a zero capacity is not written */
}

static void test_usage_text(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    load_options_usage(f);
    fclose(f);
    assert_non_null(strstr(text, "usage: rates-load [options] FILE URL"));
    static const char *const names[] = {
        "--format",   "--token-file", "--key",     "--new-key",          "--gzip",
        "--retries",  "--timeout",    "--errors",  "--progress",         "--quiet",
        "--interval", "--help",       "--version", "RATES_INGEST_TOKEN", "docs/exit-codes.md"
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr(text, names[i]))
            fail_msg("--help does not mention %s", names[i]);
    /* Every exit code is explained. */
    static const char *const codes[] = { "0 committed", "1 cannot read", "2 usage",
                                         "3 rejected",  "4 the key",     "5 authentication",
                                         "6 refused",   "7 gave up",     "8 conflict" };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (!strstr(text, codes[i]))
            fail_msg("--help does not explain exit '%s'", codes[i]);
    free(text);
}

static char *write_tmp(const char *content)
{
    static char path[64];
    strcpy(path, "/tmp/rates-load-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void test_token(void **state)
{
    (void)state;
    char tok[16], e[128];
    assert_int_equal(load_options_token(NULL, NULL, tok, sizeof tok, e, sizeof e), 0);
    assert_string_equal(tok, "");
    assert_int_equal(load_options_token(NULL, "s3cret", tok, sizeof tok, e, sizeof e), 0);
    assert_string_equal(tok, "s3cret");
    assert_int_equal(load_options_token(NULL, "0123456789abcde", tok, sizeof tok, e, sizeof e),
                     0); /* 15 bytes fit in 16 */
    assert_int_equal(load_options_token(NULL, "0123456789abcdef", tok, sizeof tok, e, sizeof e),
                     -1);
    assert_non_null(strstr(e, "RATES_INGEST_TOKEN is longer than 15 bytes"));

    /* The file wins over the environment; its first line, without the line end. */
    char *p = write_tmp("from-file\r\nsecond line\n");
    assert_int_equal(load_options_token(p, "from-env", tok, sizeof tok, e, sizeof e), 0);
    assert_string_equal(tok, "from-file");
    unlink(p);
    p = write_tmp("no-newline");
    assert_int_equal(load_options_token(p, NULL, tok, sizeof tok, e, sizeof e), 0);
    assert_string_equal(tok, "no-newline");
    unlink(p);
    p = write_tmp("");
    assert_int_equal(load_options_token(p, "from-env", tok, sizeof tok, e, sizeof e), -1);
    assert_non_null(strstr(e, "is empty"));
    assert_string_equal(tok, "");
    unlink(p);
    assert_int_equal(
        load_options_token("/nonexistent/rates-token", "from-env", tok, sizeof tok, e, sizeof e),
        -1);
    assert_non_null(strstr(e, "cannot read token file /nonexistent/rates-token: No such file"));
    assert_string_equal(tok, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_option_in_three_forms),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_format_errors),
        cmocka_unit_test(test_value_bounds),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_message_is_bounded),
        cmocka_unit_test(test_usage_text),
        cmocka_unit_test(test_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
