/* dynbuf.h: growable byte buffer with a hard maximum (curl's DYNBUF idea). */
#ifndef RATES_DYNBUF_H
#define RATES_DYNBUF_H

#include "common.h"

#include <stdarg.h>
#include <stddef.h>

/* The buffer owns buf; dynbuf_take() passes ownership to the caller.
 * Every append fails (returns -1, buffer unchanged) once len would pass max. */
struct dynbuf {
    char *buf;
    size_t len;
    size_t cap;
    size_t max;
};

void dynbuf_init(struct dynbuf *b, size_t max);
void dynbuf_free(struct dynbuf *b);
void dynbuf_reset(struct dynbuf *b);
int dynbuf_add(struct dynbuf *b, const void *data, size_t len) WUR;
int dynbuf_adds(struct dynbuf *b, const char *s) WUR;
int dynbuf_printf(struct dynbuf *b, const char *fmt, ...) WUR PRINTF_LIKE(2, 3);
/* Appends s as a JSON string literal, quotes included; invalid UTF-8 bytes become U+FFFD. */
int dynbuf_add_json_string(struct dynbuf *b, const char *s, size_t len) WUR;
/* Returns the NUL-terminated contents and leaves the buffer empty; caller frees. */
char *dynbuf_take(struct dynbuf *b, size_t *len);
/* The end of a document built with rc accumulating the appends' results: when rc is 0,
 * appends tail and takes the buffer (as dynbuf_take); otherwise, or when that append fails,
 * frees it and returns NULL. */
char *dynbuf_finish(struct dynbuf *b, int rc, const char *tail, size_t *len);

#endif
