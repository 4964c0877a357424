#!/bin/sh
# The one command that runs everything locally (`make up`): installs missing Debian packages,
# builds, starts a PostgreSQL cluster of its own under var/pg (unless RATES_DATABASE_URL or
# PGHOST points at one), creates database "rates", loads the dump once, migrates, and serves
# in the foreground. Ctrl-C stops the service and that PostgreSQL; a second run reuses the data.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
sh scripts/deps.sh build
make -s all

dump=${RATES_DUMP:-db/rates.sql}
own_pg=""
if [ -z "${RATES_DATABASE_URL:-}" ] && [ -z "${PGHOST:-}" ] && [ -z "${RATES_DATABASE_URL_FILE:-}" ]; then
    own_pg=$PWD/var/pg
    port=${RATES_PG_PORT:-54329}
    echo "rates: starting PostgreSQL in $own_pg on 127.0.0.1:$port"
    pg_cluster_start "$own_pg" "$port"
    RATES_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/rates"
    export RATES_DATABASE_URL
    admin_url="postgresql://postgres@127.0.0.1:$port/postgres"
    if [ "$(psql -X -At -d "$admin_url" -c "SELECT 1 FROM pg_database WHERE datname = 'rates'")" != 1 ]; then
        psql -X -q -d "$admin_url" -c "CREATE DATABASE rates"
    fi
fi

stop_pg() {
    if [ -n "$own_pg" ]; then
        echo "rates: stopping PostgreSQL"
        pg_cluster_stop "$own_pg"
    fi
}
trap stop_pg EXIT

# Load the dump once: only into a database that has no prices table yet. A local database
# that an earlier run left empty (no dump then) is recreated when a dump is there now.
has_prices=$(psql -X -At -d "$RATES_DATABASE_URL" -c "SELECT to_regclass('public.prices') IS NOT NULL")
if [ "$has_prices" = t ] && [ -n "$own_pg" ] && [ -f "$dump" ] &&
    [ "$(psql -X -At -d "$RATES_DATABASE_URL" -c "SELECT (SELECT count(*) FROM (SELECT 1 FROM ports LIMIT 1) a) + (SELECT count(*) FROM (SELECT 1 FROM prices LIMIT 1) b)")" = 0 ]; then
    echo "rates: the local database is empty and a dump is now present: recreating it"
    psql -X -q -d "$admin_url" -c "DROP DATABASE rates" -c "CREATE DATABASE rates"
    has_prices=f
fi
# The synthetic sample (below) is replaced by the dump as soon as one is given.
sample_mark="rates sample: synthetic data made by rates-gen, not the dump"
is_sample() {
    [ "$(psql -X -At -d "$RATES_DATABASE_URL" -c "SELECT coalesce(obj_description(to_regclass('public.prices'), 'pg_class'), '') = '$sample_mark'")" = t ]
}
if [ "$has_prices" = t ] && [ -n "$own_pg" ] && [ -f "$dump" ] && is_sample; then
    echo "rates: replacing the synthetic sample with the dump $dump"
    psql -X -q -d "$admin_url" -c "DROP DATABASE rates" -c "CREATE DATABASE rates"
    has_prices=f
fi
if [ "$has_prices" = f ]; then
    if [ -f "$dump" ]; then
        echo "rates: loading $dump"
        psql -X -q -v ON_ERROR_STOP=1 -d "$RATES_DATABASE_URL" -f "$dump" >/dev/null
    elif [ -n "$own_pg" ]; then
        # Only make up's own cluster gets the sample, never a database given from outside.
        echo "rates: no dump at $dump (set RATES_DUMP): loading a SYNTHETIC SAMPLE (rates-gen --seed 1)"
        ./build/rates-gen --schema --seed 1 |
            psql -X -q -v ON_ERROR_STOP=1 -d "$RATES_DATABASE_URL" >/dev/null
        psql -X -q -d "$RATES_DATABASE_URL" -c "COMMENT ON TABLE public.prices IS '$sample_mark'"
    else
        echo "rates: no dump at $dump (set RATES_DUMP): starting on the empty schema"
    fi
fi
if [ -n "$own_pg" ] && is_sample; then
    echo "rates: ************************************************************************"
    echo "rates: SYNTHETIC SAMPLE DATA: no dump was loaded (/readyz says \"data\": \"sample\")."
    echo "rates: try: curl 'http://127.0.0.1:3000/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CN000&dest_code=EE003'"
    echo "rates: give the dump with RATES_DUMP=/path/to/rates.sql make up to replace it."
    echo "rates: ************************************************************************"
fi
./build/ratesd migrate
./build/ratesd aggregates check # the daily aggregate agrees with the raw prices (exit 1 if not)

# On its own cluster (trust on loopback, as initdb -A trust made it) the service connects as
# rates_app, the role of migration 0005 that owns nothing, as every deploy target does; the
# superuser above only loaded and migrated. A RATES_DATABASE_URL given by you is used as given.
if [ -n "$own_pg" ]; then
    RATES_DATABASE_URL="postgresql://rates_app@127.0.0.1:$port/rates"
    echo "rates: serving as rates_app (migrated as postgres)"
fi

# Serve in the foreground; Ctrl-C reaches ratesd, which drains and exits, then PG stops.
trap '' INT TERM
RATES_LISTEN=${RATES_LISTEN:-0.0.0.0:3000} ./build/ratesd "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
