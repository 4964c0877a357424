#!/bin/sh
# rates-init: the one-shot init of the compose stack (and of a plain Docker host).
# 1. Waits for the database. 2. Loads the dump ONCE: only when the database has no
# public.prices table yet, in one transaction (a failed load leaves nothing behind).
# 3. Migrates with `ratesd migrate` (idempotent; serialized by an advisory lock), as the owner.
# 4. Sets the password of the least-privilege role rates_app (created by migration 0005) that
#    the api connects as, from RATES_APP_PASSWORD (when set).
# 5. When RATES_MONITOR_VERIFIER is set: the login role rates_monitor of the postgres exporter,
#    a member of pg_monitor and of nothing else, with that password, and pg_stat_statements in
#    the database postgres, where the exporter reads (docs/security.md, "Who connects as what").
# Env: RATES_DATABASE_URL (or _FILE; the owner, a postgresql:// URL), RATES_APP_PASSWORD (or
# _FILE), RATES_MONITOR_VERIFIER (or _FILE: rates_monitor's password as ALTER ROLE takes it;
# compose gives a SCRAM-SHA-256 verifier, so init never holds the password the exporter logs in
# with), RATES_DUMP (path inside the container; default /dump/rates.sql; absent file: the
# schema starts empty), RATES_INIT_WAIT_S (default 60).
# No secret is ever on a command line (anyone on the host sees those in ps): psql gets the
# owner's URL without its password and the password through PGPASSWORD, in its environment,
# which only this uid can read; the passwords it sets come the same way (see with_pw).
set -eu
# The *_FILE forms (compose secrets, Kubernetes Secret volumes): the value is the file's content.
if [ -z "${RATES_DATABASE_URL:-}" ] && [ -n "${RATES_DATABASE_URL_FILE:-}" ]; then
    RATES_DATABASE_URL=$(cat "$RATES_DATABASE_URL_FILE")
fi
if [ -z "${RATES_APP_PASSWORD:-}" ] && [ -n "${RATES_APP_PASSWORD_FILE:-}" ]; then
    RATES_APP_PASSWORD=$(cat "$RATES_APP_PASSWORD_FILE")
fi
if [ -z "${RATES_MONITOR_VERIFIER:-}" ] && [ -n "${RATES_MONITOR_VERIFIER_FILE:-}" ]; then
    RATES_MONITOR_VERIFIER=$(cat "$RATES_MONITOR_VERIFIER_FILE")
fi
: "${RATES_DATABASE_URL:?RATES_DATABASE_URL is required}"
# The URL's password (user:PASSWORD@, as libpq splits it: the user ends at the first ':', the
# password at the first '@') moves out of the URL; percent-decoded, since libpq decodes the URL
# but takes PGPASSWORD as it is. printf is a builtin: the URL is on no process's argv. (A
# key=value conninfo is passed as it is: give its password in PGPASSWORD or ~/.pgpass instead.)
owner_url=$(printf '%s\n' "$RATES_DATABASE_URL" |
    sed 's|^\(postgres\(ql\)\{0,1\}://[^:@/]*\):[^@/]*@|\1@|')
owner_pw=$(printf '%s\n' "$RATES_DATABASE_URL" |
    sed -n 's|^postgres\(ql\)\{0,1\}://[^:@/]*:\([^@/]*\)@.*|\2|p' |
    LC_ALL=C awk '{
        s = $0; out = ""; h = "0123456789abcdef"
        while ((i = index(s, "%")) > 0) {
            hi = index(h, tolower(substr(s, i + 1, 1))) - 1
            lo = index(h, tolower(substr(s, i + 2, 1))) - 1
            if (hi < 0 || lo < 0) { out = out substr(s, 1, i); s = substr(s, i + 1); continue }
            out = out substr(s, 1, i - 1) sprintf("%c", hi * 16 + lo)
            s = substr(s, i + 3)
        }
        printf "%s", out s
    }')
# db ARGS...: psql as the owner. An empty PGPASSWORD (a URL without a password) lets libpq fall
# back to ~/.pgpass or another authentication, as the URL alone would.
db() {
    PGPASSWORD=$owner_pw psql -X -d "$owner_url" "$@"
}
# with_pw VALUE ARGS... <SQL: db with VALUE in psql's environment as RATES_INIT_PW. The SQL's
# first line sets the psql variable pw from it with backquotes running printf, which the shell
# psql starts for them has as a builtin: the value is on no command line. Quoted with :'pw' or
# format(%L) in the SQL.
with_pw() {
    _pw=$1
    shift
    RATES_INIT_PW=$_pw PGPASSWORD=$owner_pw psql -X -d "$owner_url" "$@"
}
dump=${RATES_DUMP:-/dump/rates.sql}
wait_s=${RATES_INIT_WAIT_S:-60}
i=0
until db -q -At -c 'SELECT 1' >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge "$wait_s" ]; then
        echo "rates-init: database not reachable after ${wait_s}s" >&2
        exit 1
    fi
    sleep 1
done
has_prices=$(db -At -c "SELECT to_regclass('public.prices') IS NOT NULL")
if [ "$has_prices" = f ]; then
    if [ -f "$dump" ]; then
        echo "rates-init: loading $dump into an empty database"
        db -q -v ON_ERROR_STOP=1 --single-transaction -f "$dump" >/dev/null
        echo "rates-init: dump loaded"
    else
        echo "rates-init: no dump at $dump: starting on the empty schema"
    fi
else
    echo "rates-init: database already has data: dump not loaded again"
fi
/usr/local/bin/ratesd migrate
if [ -n "${RATES_APP_PASSWORD:-}" ]; then
    with_pw "$RATES_APP_PASSWORD" -q -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
\set pw `printf '%s' "$RATES_INIT_PW"`
SELECT pg_catalog.format('ALTER ROLE rates_app PASSWORD %L', :'pw') \gexec
EOF
    echo "rates-init: password of rates_app set; the api connects as rates_app"
fi
if [ -n "${RATES_MONITOR_VERIFIER:-}" ]; then
    # pg_monitor reads every statistics view, pg_stat_statements included (pg_read_all_stats),
    # and nothing else: no table, no CONNECT on this database (0018 gives that to the service's
    # roles only: a login role inside it could squat the migration lock), so the exporter reads
    # from the database postgres. INHERIT: pg_monitor's rights apply without SET ROLE. CONNECTION
    # LIMIT: the exporter holds two sessions; its password cannot use up max_connections. Run on
    # every init: memberships and database rights granted by hand since are taken back.
    with_pw "$RATES_MONITOR_VERIFIER" -q -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
\set pw `printf '%s' "$RATES_INIT_PW"`
SET client_min_messages = warning;
SELECT 'CREATE ROLE rates_monitor IN ROLE pg_monitor'
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rates_monitor') \gexec
SELECT pg_catalog.format('ALTER ROLE rates_monitor LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE'
    ' NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD %L', :'pw') \gexec
GRANT pg_monitor TO rates_monitor;
SELECT pg_catalog.format('REVOKE %I FROM rates_monitor', g.rolname)
  FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
 WHERE m.member = 'rates_monitor'::regrole AND g.rolname <> 'pg_monitor' \gexec
SELECT pg_catalog.format('REVOKE ALL ON DATABASE %I FROM rates_monitor', pg_catalog.current_database()) \gexec
EOF
    echo "rates-init: rates_monitor (pg_monitor) set for the postgres exporter"
    # The database postgres, which rates_monitor may connect to: PostgreSQL 13 lets PUBLIC create
    # in its schema public, so the revoke of 0007 (docs/security.md) is made there too; then the
    # view the exporter's stat_statements collector reads (it shows every database's statements).
    # Needs a superuser (the compose owner is one) and the preloaded library; without them the
    # exporter only lacks that collector, so a failure warns and init goes on.
    if ! db -q -v ON_ERROR_STOP=1 >/dev/null <<'EOF'; then
\connect postgres
SET client_min_messages = warning;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EOF
        echo "rates-init: WARNING: no pg_stat_statements in the database postgres: the exporter's" \
            "stat_statements collector will fail" >&2
    fi
fi
