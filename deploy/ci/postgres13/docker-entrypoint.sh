#!/bin/sh
# The official postgres image's entrypoint contract, in POSIX sh, for the CI stand-in.
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
# Like the official image: `postgres --version` / `--help` run without an init.
case " $* " in *" --version "* | *" -V "* | *" --help "* | *" -? "* | *" --describe-config "*) exec "$@" ;; esac
# The official image's *_FILE forms (compose/Kubernetes secrets): the value is the file's
# content. Read before the switch to postgres, like the official image (as root: a 0600 secret
# owned by another uid is readable), then the _FILE variable is dropped.
for v in POSTGRES_PASSWORD POSTGRES_USER POSTGRES_DB; do
    eval "f=\${${v}_FILE:-}"
    if [ -n "$f" ]; then
        eval "[ -z \"\${$v:-}\" ]" || { echo "both $v and ${v}_FILE are set" >&2; exit 1; }
        val=$(cat "$f") || exit 1
        export "$v=$val"
        unset "${v}_FILE"
    fi
done
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (the official image refuses to start without it)}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
    initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf 'host all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-md5}" >>"$PGDATA/pg_hba.conf"
    # Temporary server on the Unix socket only, like the official image.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
        *.sh)
            echo "entrypoint: running $f"
            # shellcheck disable=SC1090 # user-supplied init scripts
            . "$f"
            ;;
        *.sql) echo "entrypoint: running $f"; psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" -f "$f" ;;
        *.sql.gz) echo "entrypoint: running $f"; gunzip -c "$f" | psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" ;;
        *) echo "entrypoint: ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "entrypoint: PostgreSQL init process complete; ready for start up."
fi
if [ "$1" = postgres ]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
