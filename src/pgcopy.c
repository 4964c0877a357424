/* pgcopy.c: PostgreSQL's binary COPY format, read side (pgcopy.h). */
#include "pgcopy.h"

#include <string.h>

static const unsigned char pgcopy_signature[11] = "PGCOPY\n\377\r\n";

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t pgcopy_header(const unsigned char *buf, size_t len)
{
    if (len < 19 || memcmp(buf, pgcopy_signature, sizeof pgcopy_signature) != 0)
        return 0;
    uint32_t flags = get32(buf + 11), ext = get32(buf + 15);
    /* Bit 16 (OIDs included) changes the rows' layout; the low 16 bits are critical too. */
    if (flags & 0x0001ffffu || ext > len - 19)
        return 0;
    return 19 + (size_t)ext;
}

enum pgcopy_status pgcopy_row(const unsigned char *buf, size_t len, struct pgcopy_field *fields,
                              int nfields)
{
    if (len < 2)
        return PGCOPY_BAD;
    int16_t count = (int16_t)((uint16_t)buf[0] << 8 | buf[1]);
    if (count == -1)
        return len == 2 ? PGCOPY_END : PGCOPY_BAD;
    if (count != nfields)
        return PGCOPY_BAD;
    size_t off = 2;
    for (int i = 0; i < nfields; i++) {
        if (len - off < 4)
            return PGCOPY_BAD;
        int32_t flen = (int32_t)get32(buf + off);
        off += 4;
        if (flen < -1 || (flen > 0 && (size_t)flen > len - off))
            return PGCOPY_BAD;
        fields[i] = (struct pgcopy_field){ .data = buf + off, .len = flen };
        if (flen > 0)
            off += (size_t)flen;
    }
    return off == len ? PGCOPY_ROW : PGCOPY_BAD;
}

bool pgcopy_int32(const struct pgcopy_field *f, int32_t *out)
{
    if (f->len != 4)
        return false;
    *out = (int32_t)get32(f->data);
    return true;
}
