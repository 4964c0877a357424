/* pgcopy.h: reading PostgreSQL's binary COPY format (COPY ... TO STDOUT (FORMAT binary)) as
 * libpq's PQgetCopyData() hands it over. The server sends one row per message; the stream's
 * header comes before the first row (in the same message), the trailer (a field count of -1)
 * after the last. Bounds: every length is checked against the message, nothing is read past
 * it; fields point into the caller's buffer. */
#ifndef RATES_PGCOPY_H
#define RATES_PGCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pgcopy_status {
    PGCOPY_ROW, /* fields filled */
    PGCOPY_END, /* the trailer */
    PGCOPY_BAD, /* not a row of nfields fields that fills the message exactly */
};

struct pgcopy_field {
    const unsigned char *data;
    int32_t len; /* -1: NULL */
};

/* The length of the header at the start of buf (19 bytes and its extension area), or 0
 * when buf does not start with a valid one. */
size_t pgcopy_header(const unsigned char *buf, size_t len);

/* Parses buf[0..len) as one row of nfields fields, or as the trailer. */
enum pgcopy_status pgcopy_row(const unsigned char *buf, size_t len, struct pgcopy_field *fields,
                              int nfields);

/* A non-NULL 4-byte field as a signed integer (int4, date); false otherwise. */
bool pgcopy_int32(const struct pgcopy_field *f, int32_t *out);

#endif
