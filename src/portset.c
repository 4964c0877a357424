/* portset.c: open-addressing hash set of port codes (FNV-1a), all strings in one arena.
 * A batch loads the codes once, in its own transaction, so that an unknown code is reported
 * with its line number while the body streams; the database re-checks set-wise at the end. */
#include "portset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct portset {
    uint32_t *slots; /* 0: empty, else 1 + index into off/len */
    size_t nslots;   /* a power of two, at least twice the codes */
    size_t *off;
    size_t *len;
    char *arena;
};

static uint64_t portset_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

struct portset *portset_from_result(const PGresult *res)
{
    int n = PQntuples(res);
    if (n < 0 || n > PORTSET_MAX_CODES)
        return NULL;
    struct portset *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)PQgetlength(res, i, 0);
    s->nslots = 16;
    while (s->nslots < (size_t)n * 2)
        s->nslots *= 2;
    s->slots = calloc(s->nslots, sizeof *s->slots);
    s->off = calloc((size_t)n + 1, sizeof *s->off);
    s->len = calloc((size_t)n + 1, sizeof *s->len);
    s->arena = malloc(total + 1);
    if (!s->slots || !s->off || !s->len || !s->arena)
        goto fail;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const char *code = PQgetvalue(res, i, 0);
        size_t len = (size_t)PQgetlength(res, i, 0);
        memcpy(s->arena + at, code, len);
        s->off[i] = at;
        s->len[i] = len;
        at += len;
        size_t mask = s->nslots - 1, k = (size_t)portset_hash(code, len) & mask;
        while (s->slots[k])
            k = (k + 1) & mask;
        s->slots[k] = (uint32_t)i + 1;
    }
    return s;
fail:
    portset_free(s);
    return NULL;
}

bool portset_has(const struct portset *s, const char *code, size_t len)
{
    size_t mask = s->nslots - 1, k = (size_t)portset_hash(code, len) & mask;
    while (s->slots[k]) {
        uint32_t i = s->slots[k] - 1;
        if (s->len[i] == len && memcmp(s->arena + s->off[i], code, len) == 0)
            return true;
        k = (k + 1) & mask;
    }
    return false;
}

void portset_free(struct portset *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->off);
    free(s->len);
    free(s->arena);
    free(s);
}
