/* auth.h: bearer tokens for writes (POST/DELETE /batches), compared in constant time. */
#ifndef RATES_AUTH_H
#define RATES_AUTH_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>

/* Replaces the token set atomically (start-up and SIGHUP). spec is "NAME:TOKEN[,NAME:TOKEN]"
 * or one NAME:TOKEN per line; a NAME written "admin+NAME" gives that token the admin scope
 * (docs/ingest.md), the name itself stays NAME. open_when_empty: development mode, writes allowed without a
 * token when none is configured. Returns 0, or -1 with err (never quoting a token). */
int auth_set_tokens(const char *spec, bool open_when_empty, char *err, size_t errcap) WUR;

enum auth_result { AUTH_OK = 0, AUTH_MISSING, AUTH_INVALID, AUTH_DISABLED };

/* Scopes of a token beyond its own batches. */
enum { AUTH_SCOPE_ADMIN = 1u }; /* may read and retract any token's batches */

/* Checks an Authorization header value. On AUTH_OK, name receives the token's name
 * ("anonymous" in open development mode) and *scopes (when not NULL) its AUTH_SCOPE_* bits;
 * otherwise both are cleared. */
int auth_check(const char *authorization, char *name, size_t namecap, unsigned *scopes);

#endif
