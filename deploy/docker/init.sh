#!/bin/sh
# rates-init: the one-shot init of the compose stack (and of a plain Docker host).
# 1. Waits for the database. 2. Loads the dump ONCE: only when the database has no
# public.prices table yet, in one transaction (a failed load leaves nothing behind).
# 3. Migrates with `ratesd migrate` (idempotent; serialized by an advisory lock), as the owner.
# 4. Sets the password of the least-privilege role rates_app (created by migration 0005) that
#    the api connects as, from RATES_APP_PASSWORD (when set).
# Env: RATES_DATABASE_URL (or _FILE; the owner), RATES_APP_PASSWORD (or _FILE), RATES_DUMP (path inside the container; default
# /dump/rates.sql; absent file: the schema starts empty), RATES_INIT_WAIT_S (default 60).
set -eu
# The *_FILE forms (compose secrets, Kubernetes Secret volumes): the value is the file's content.
if [ -z "${RATES_DATABASE_URL:-}" ] && [ -n "${RATES_DATABASE_URL_FILE:-}" ]; then
    RATES_DATABASE_URL=$(cat "$RATES_DATABASE_URL_FILE")
fi
if [ -z "${RATES_APP_PASSWORD:-}" ] && [ -n "${RATES_APP_PASSWORD_FILE:-}" ]; then
    RATES_APP_PASSWORD=$(cat "$RATES_APP_PASSWORD_FILE")
fi
: "${RATES_DATABASE_URL:?RATES_DATABASE_URL is required}"
dump=${RATES_DUMP:-/dump/rates.sql}
wait_s=${RATES_INIT_WAIT_S:-60}
i=0
until psql -X -q -At -d "$RATES_DATABASE_URL" -c 'SELECT 1' >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge "$wait_s" ]; then
        echo "rates-init: database not reachable after ${wait_s}s" >&2
        exit 1
    fi
    sleep 1
done
has_prices=$(psql -X -At -d "$RATES_DATABASE_URL" -c "SELECT to_regclass('public.prices') IS NOT NULL")
if [ "$has_prices" = f ]; then
    if [ -f "$dump" ]; then
        echo "rates-init: loading $dump into an empty database"
        psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$RATES_DATABASE_URL" -f "$dump" >/dev/null
        echo "rates-init: dump loaded"
    else
        echo "rates-init: no dump at $dump: starting on the empty schema"
    fi
else
    echo "rates-init: database already has data: dump not loaded again"
fi
/usr/local/bin/ratesd migrate
if [ -n "${RATES_APP_PASSWORD:-}" ]; then
    printf '%s\n' "SELECT format('ALTER ROLE rates_app PASSWORD %L', :'pw') \\gexec" |
        psql -X -q -v ON_ERROR_STOP=1 -v pw="$RATES_APP_PASSWORD" -d "$RATES_DATABASE_URL" >/dev/null
    echo "rates-init: password of rates_app set; the api connects as rates_app"
fi
