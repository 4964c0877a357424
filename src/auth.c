/* auth.c: the ingest token set (names and SHA-256 digests of tokens) and Bearer checks.
 * Only digests are kept, and a check hashes the presented token and compares it with every
 * configured digest without early exit (CRYPTO_memcmp), so timing reveals neither which
 * token nor how much of one matched; hashing first also hides the token's length. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_MAX_TOKENS 256
#define AUTH_NAME_MAX 64
#define AUTH_TOKEN_MAX 1024
#define AUTH_DIGEST 32

#define AUTH_ADMIN_PREFIX "admin+" /* NAME side of an entry: "admin+ops:TOKEN" */

struct auth_token {
    char name[AUTH_NAME_MAX + 1]; /* without the scope prefix: what the ledger records */
    unsigned scopes;              /* AUTH_SCOPE_* */
    unsigned char digest[AUTH_DIGEST];
};

struct auth_set {
    struct auth_token tokens[AUTH_MAX_TOKENS];
    int count;
    bool open_when_empty;
};

static pthread_rwlock_t auth_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct auth_set *auth_current; /* owned; replaced whole under the write lock */

static int auth_digest(const char *s, size_t len, unsigned char out[AUTH_DIGEST])
{
    unsigned int n = 0;
    return EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) == 1 && n == AUTH_DIGEST ? 0 : -1;
}

static bool auth_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static void auth_trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t' || **s == '\r')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
        (*len)--;
}

/* One "NAME:TOKEN" entry (trimmed); entry number n for messages. */
static int auth_add_entry(struct auth_set *set, const char *e, size_t len, int n, char *err,
                          size_t errcap)
{
    auth_trim(&e, &len);
    if (len == 0 || e[0] == '#')
        return 0;
    const char *colon = memchr(e, ':', len);
    if (!colon) {
        snprintf(err, errcap, "ingest token entry %d: expected NAME:TOKEN", n);
        return -1;
    }
    const char *name = e, *tok = colon + 1;
    size_t nlen = (size_t)(colon - e), tlen = len - nlen - 1;
    auth_trim(&name, &nlen);
    auth_trim(&tok, &tlen);
    /* A scope prefix on the name side (the token is everything after the first colon, so the
     * flag cannot go there); '+' is not a name character, so no plain name reads as one. */
    unsigned scopes = 0;
    size_t plen = strlen(AUTH_ADMIN_PREFIX);
    if (nlen > plen && memcmp(name, AUTH_ADMIN_PREFIX, plen) == 0) {
        scopes |= AUTH_SCOPE_ADMIN;
        name += plen;
        nlen -= plen;
    }
    if (!auth_name_ok(name, nlen)) {
        snprintf(err, errcap, "ingest token entry %d: the name must be 1-%d of [A-Za-z0-9_.-]", n,
                 AUTH_NAME_MAX);
        return -1;
    }
    if (tlen == 0 || tlen > AUTH_TOKEN_MAX) {
        snprintf(err, errcap, "ingest token entry %d (%.*s): the token must be 1-%d bytes", n,
                 (int)nlen, name, AUTH_TOKEN_MAX);
        return -1;
    }
    for (int i = 0; i < set->count; i++) {
        if (strlen(set->tokens[i].name) == nlen && memcmp(set->tokens[i].name, name, nlen) == 0) {
            snprintf(err, errcap, "ingest token name '%.*s' appears twice", (int)nlen, name);
            return -1;
        }
    }
    if (set->count >= AUTH_MAX_TOKENS) {
        snprintf(err, errcap, "more than %d ingest tokens", AUTH_MAX_TOKENS);
        return -1;
    }
    struct auth_token *t = &set->tokens[set->count];
    memcpy(t->name, name, nlen);
    t->name[nlen] = '\0';
    t->scopes = scopes;
    if (auth_digest(tok, tlen, t->digest) != 0) {
        snprintf(err, errcap, "cannot hash ingest token entry %d", n);
        return -1;
    }
    set->count++;
    return 0;
}

int auth_set_tokens(const char *spec, bool open_when_empty, char *err, size_t errcap)
{
    struct auth_set *set = calloc(1, sizeof *set);
    if (!set) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    set->open_when_empty = open_when_empty;
    const char *p = spec ? spec : "";
    int n = 0;
    while (*p) {
        size_t len = strcspn(p, ",\n");
        n++;
        if (auth_add_entry(set, p, len, n, err, errcap) != 0) {
            OPENSSL_cleanse(set, sizeof *set);
            free(set);
            return -1;
        }
        p += len;
        if (*p)
            p++;
    }
    pthread_rwlock_wrlock(&auth_lock);
    struct auth_set *old = auth_current;
    auth_current = set;
    pthread_rwlock_unlock(&auth_lock);
    if (old) {
        OPENSSL_cleanse(old, sizeof *old);
        free(old);
    }
    return 0;
}

int auth_check(const char *authorization, char *name, size_t namecap, unsigned *scopes)
{
    if (namecap)
        name[0] = '\0';
    if (scopes)
        *scopes = 0;
    pthread_rwlock_rdlock(&auth_lock);
    const struct auth_set *set = auth_current;
    int result;
    if (!set || set->count == 0) {
        result = set && set->open_when_empty ? AUTH_OK : AUTH_DISABLED;
        if (result == AUTH_OK)
            str_copy(name, namecap, "anonymous");
        goto done;
    }
    /* RFC 6750: "Bearer" is case-insensitive, one or more spaces, then the token. */
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        result = AUTH_MISSING;
        goto done;
    }
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    size_t tlen = strlen(tok);
    while (tlen > 0 && tok[tlen - 1] == ' ')
        tlen--;
    unsigned char digest[AUTH_DIGEST];
    if (tlen == 0 || tlen > AUTH_TOKEN_MAX || auth_digest(tok, tlen, digest) != 0) {
        result = AUTH_INVALID;
        goto done;
    }
    int match = -1;
    for (int i = 0; i < set->count; i++) {
        /* No early exit: every digest is compared. */
        int differs = CRYPTO_memcmp(digest, set->tokens[i].digest, AUTH_DIGEST);
        if (!differs && match < 0)
            match = i;
    }
    if (match >= 0) {
        str_copy(name, namecap, set->tokens[match].name);
        if (scopes)
            *scopes = set->tokens[match].scopes;
        result = AUTH_OK;
    } else {
        result = AUTH_INVALID;
    }
done:
    pthread_rwlock_unlock(&auth_lock);
    return result;
}
