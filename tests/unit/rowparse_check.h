/* rowparse_check.h: shared table runner for the parser unit tests (included by each). Every
 * case is parsed whole, split in two at every byte boundary, and one byte at a time; the
 * log of rows and errors must be the same each way and match the table. */
#ifndef RATES_TEST_ROWPARSE_CHECK_H
#define RATES_TEST_ROWPARSE_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "date.h"
#include "rowparse.h"

struct rp_case {
    const char *name;
    const char *in;     /* the body */
    size_t len;         /* 0: strlen(in) (use RP_BIN for bodies with NUL bytes) */
    const char *want;   /* rows "L<line>:orig,dest,day,price;" and errors "E<line>:<field>;" */
    const char *msg;    /* a substring of the first error's message, or NULL */
    int want_fail;      /* 1: rowparse_feed/finish is expected to return -1 */
};

#define RP_BIN(s) s, sizeof(s) - 1

struct rp_log {
    char text[65536];
    size_t len;
    char first_msg[256];
    int nerrors;
};

static void rp_append(struct rp_log *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void rp_append(struct rp_log *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->text + l->len, sizeof l->text - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < sizeof l->text - l->len ? (size_t)n : sizeof l->text - l->len - 1;
}

static void rp_append_bytes(struct rp_log *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            rp_append(l, "%c", c);
        else
            rp_append(l, "\\x%02X", c);
    }
}

static int rp_on_row(void *ctx, const struct rowparse_row *r)
{
    struct rp_log *l = ctx;
    char day[11];
    date_format(r->day, day);
    rp_append(l, "L%llu:", (unsigned long long)r->line);
    rp_append_bytes(l, r->orig, r->orig_len);
    rp_append(l, ",");
    rp_append_bytes(l, r->dest, r->dest_len);
    rp_append(l, ",%s,%d;", day, (int)r->price);
    return 0;
}

static void rp_on_error(void *ctx, uint64_t line, const char *field, const char *message)
{
    struct rp_log *l = ctx;
    if (l->nerrors++ == 0)
        snprintf(l->first_msg, sizeof l->first_msg, "%s", message);
    rp_append(l, "E%llu:%s;", (unsigned long long)line, field);
}

/* Parses in pieces of the given sizes (cuts: ascending split offsets, ncut of them). */
static int rp_parse(enum rowparse_format fmt, const char *in, size_t len, const size_t *cuts,
                    size_t ncut, size_t step, struct rp_log *l)
{
    memset(l, 0, sizeof *l);
    struct rowparse *p = rowparse_new(fmt, rp_on_row, rp_on_error, l);
    assert_non_null(p);
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; i < ncut && rc == 0; i++) {
        rc = rowparse_feed(p, in + at, cuts[i] - at);
        at = cuts[i];
    }
    while (rc == 0 && step && at < len) {
        size_t n = len - at < step ? len - at : step;
        rc = rowparse_feed(p, in + at, n);
        at += n;
    }
    if (rc == 0 && at < len) {
        rc = rowparse_feed(p, in + at, len - at);
    }
    if (rc == 0)
        rc = rowparse_finish(p);
    assert_int_equal((int)rowparse_errors(p), l->nerrors);
    rowparse_free(p);
    return rc;
}

static void rp_run_cases(enum rowparse_format fmt, const struct rp_case *cases, size_t n)
{
    struct rp_log *whole = malloc(sizeof *whole), *part = malloc(sizeof *part);
    assert_non_null(whole);
    assert_non_null(part);
    for (size_t i = 0; i < n; i++) {
        const struct rp_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->in);
        int rc = rp_parse(fmt, c->in, len, NULL, 0, 0, whole);
        if (strcmp(whole->text, c->want) != 0 || (rc != 0) != (c->want_fail != 0))
            fail_msg("case '%s': got '%s' (rc %d), want '%s' (fail %d); first error: %s",
                     c->name, whole->text, rc, c->want, c->want_fail, whole->first_msg);
        if (c->msg && !strstr(whole->first_msg, c->msg))
            fail_msg("case '%s': first error '%s' lacks '%s'", c->name, whole->first_msg,
                     c->msg);
        for (size_t cut = 0; cut <= len; cut++) {
            int rc2 = rp_parse(fmt, c->in, len, &cut, 1, 0, part);
            if (strcmp(whole->text, part->text) != 0 || rc2 != rc)
                fail_msg("case '%s' split at %zu: got '%s', whole gave '%s'", c->name, cut,
                         part->text, whole->text);
        }
        int rc3 = rp_parse(fmt, c->in, len, NULL, 0, 1, part);
        if (strcmp(whole->text, part->text) != 0 || rc3 != rc)
            fail_msg("case '%s' byte by byte: got '%s', whole gave '%s'", c->name, part->text,
                     whole->text);
    }
    free(whole);
    free(part);
}

/* A body of n bytes of filler c inside a template "%s": returns a malloc'd string. */
static char *rp_fill(const char *before, size_t n, char c, const char *after)
{
    size_t a = strlen(before), b = strlen(after);
    char *s = malloc(a + n + b + 1);
    assert_non_null(s);
    memcpy(s, before, a);
    memset(s + a, c, n);
    memcpy(s + a + n, after, b + 1);
    return s;
}

#endif
