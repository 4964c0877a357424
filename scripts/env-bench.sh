#!/bin/sh
# scripts/env-bench.sh: `make bench-scale`: /rates (and batch ingestion) at the dump's size and
# at 10,000,000 synthetic prices, side by side, on one throwaway PostgreSQL cluster with the
# default settings of `make up` (shared_buffers 128MB). Loads the dump and
# `rates-gen --schema --prices N` into two databases (timed), migrates both, runs wrk against
# a ratesd on each (same mix of 4 routes x 31 days, 16 connections), runs
# EXPLAIN (ANALYZE, BUFFERS) of the /rates query, times a 50,000-row CSV batch, and writes the
# results between the bench-scale markers of docs/environments.md.
# Knobs: RATES_BENCH_PRICES (10000000), RATES_BENCH_DURATION (10s), RATES_BENCH_CONNS (16),
# RATES_BENCH_ROUNDS (2, alternating), RATES_BENCH_KEEP=1 keeps the cluster's folder.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

TOP=$PWD
ROOT=$(realpath -m "${RATES_ENV_ROOT:-$TOP/var/envs}")
BIN=${RATES_BIN:-$TOP/build/ratesd}
GEN=${RATES_GEN:-$(dirname "$BIN")/rates-gen}
DUMP=${RATES_DUMP:-db/rates.sql}
case $DUMP in /*) ;; *) DUMP=$TOP/$DUMP ;; esac
PRICES=${RATES_BENCH_PRICES:-10000000}
DUR=${RATES_BENCH_DURATION:-10s}
CONNS=${RATES_BENCH_CONNS:-16}
ROUNDS=${RATES_BENCH_ROUNDS:-2}
B=$ROOT/_bench
DOC=docs/environments.md
OUT=$B/report.md

say() { echo "rates-bench: $*"; }
die() {
    echo "rates-bench: $*" >&2
    exit 1
}
ms_now() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

command -v wrk >/dev/null || die "wrk is not installed (sh scripts/deps.sh test)"
{ [ -x "$BIN" ] && [ -x "$GEN" ]; } || die "build first (make)"
[ -e "$B/data" ] && die "$B exists: another bench-scale runs, or remove it (make env-purge)"
mkdir -p "$ROOT"
chmod 755 "$ROOT"
pgport=$(free_port)
srv_pid=""
cleanup() {
    [ -n "$srv_pid" ] && kill -TERM "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    pg_cluster_stop "$B"
    [ "${RATES_BENCH_KEEP:-0}" = 1 ] || rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "PostgreSQL in $B on 127.0.0.1:$pgport"
PG_EXTRA_CONF="fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
maintenance_work_mem = 512MB" pg_cluster_start "$B" "$pgport"
url() { echo "postgresql://postgres@127.0.0.1:$pgport/$1"; }
q() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 -d "$(url "${2:-postgres}")" -c "$1"; }
migrate() { RATES_DATABASE_URL=$(url "$1") RATES_LOG_FORMAT=text "$BIN" migrate >>"$B/migrate.log" 2>&1 || die "migrate $1 failed: $(tail -3 "$B/migrate.log")"; }

: >"$OUT"
# load DB: creates it, loads, migrates and analyzes it; prints the timings line.
load() {
    db=$1
    q "CREATE DATABASE $db"
    t0=$(ms_now)
    if [ "$db" = rates_dump ]; then
        psql -X -q -v ON_ERROR_STOP=1 -d "$(url "$db")" -f "$DUMP" >/dev/null
    else
        "$GEN" --schema --prices "$PRICES" --seed 1 | psql -X -q -v ON_ERROR_STOP=1 -d "$(url "$db")" >/dev/null
    fi
    t1=$(ms_now)
    migrate "$db"
    t2=$(ms_now)
    q "VACUUM ANALYZE" "$db"
    t3=$(ms_now)
    rows=$(q "SELECT count(*) FROM public.prices" "$db")
    size=$(q "SELECT pg_size_pretty(pg_database_size(current_database()))" "$db")
    echo "| $db | $rows | $(secs $((t1 - t0))) | $(secs $((t2 - t1))) | $(secs $((t3 - t2))) | $size |"
}

if [ -f "$DUMP" ]; then
    dumpdb=rates_dump
else
    say "no dump at $DUMP: the small side is a synthetic database of 56,689 prices"
    dumpdb=rates_small
fi
say "loading $dumpdb and rates_$PRICES (this takes a few minutes at 10M)"
{
    echo "Load (seconds): COPY of the SQL text (the dump, or \`rates-gen --schema\`: tables, COPY, keys), then \`ratesd migrate\` (route index, ledger, triggers), then VACUUM ANALYZE."
    echo
    echo "| database | prices | load s | migrate s | vacuum analyze s | size |"
    echo "|---|---:|---:|---:|---:|---:|"
} >>"$OUT"
if [ "$dumpdb" = rates_dump ]; then
    load rates_dump >>"$OUT"
else
    q "CREATE DATABASE rates_small"
    t0=$(ms_now)
    "$GEN" --schema | psql -X -q -v ON_ERROR_STOP=1 -d "$(url rates_small)" >/dev/null
    migrate rates_small
    q "VACUUM ANALYZE" rates_small
    echo "| rates_small | 56689 | $(secs $(($(ms_now) - t0))) | | | |" >>"$OUT"
fi
big=rates_$PRICES
load "$big" >>"$OUT"

# Four routes with prices in January 2021 in each database.
routes_of() {
    if [ "$1" = rates_dump ]; then
        printf 'CNGGZ EETLL\nCNGGZ SEGOT\nCNCWN BEANR\nCNCWN BEZEE\n'
    elif [ "$1" = rates_small ]; then
        "$GEN" --routes 4 | awk '{ print $1, $2 }'
    else
        "$GEN" --prices "$PRICES" --routes 4 | awk '{ print $1, $2 }'
    fi
}
lua_for() {
    {
        echo "local paths = {"
        routes_of "$1" | while read -r o d; do
            echo "  \"/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=$o&dest_code=$d\","
        done
        echo "}"
        echo "local i = 0"
        echo "request = function() i = i % #paths + 1; return wrk.format(\"GET\", paths[i]) end"
    } >"$B/$1.lua"
}

start_srv() {
    port=$(free_port)
    RATES_DATABASE_URL=$(url "$1") RATES_LISTEN=127.0.0.1:$port RATES_LOG_LEVEL=warn \
        RATES_INGEST_OPEN=true RATES_LOG_FORMAT=json "$BIN" >>"$B/ratesd-$1.log" 2>&1 &
    srv_pid=$!
    i=0
    while [ $i -lt 100 ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = 200 ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    die "ratesd on $1 did not become ready: $(tail -3 "$B/ratesd-$1.log")"
}
stop_srv() {
    kill -TERM "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=""
}

# A 50,000-row CSV batch on 50 routes between existing ports, from YEAR-01-01 (new days).
batch_csv() { # DB YEAR
    q "COPY (SELECT o.code AS orig_code, d.code AS dest_code, date '$2-01-01' + (g % 1000) AS day,
                    500 + (g * 7919) % 3000 AS price
             FROM generate_series(0, 49999) g
             JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS i FROM (SELECT code FROM public.ports ORDER BY code LIMIT 10) x) o ON o.i = (g / 1000) % 10
             JOIN (SELECT code, row_number() OVER (ORDER BY code DESC) - 1 AS i FROM (SELECT code FROM public.ports ORDER BY code DESC LIMIT 5) y) d ON d.i = (g / 10000) % 5)
           TO STDOUT WITH (FORMAT csv, HEADER)" "$1" >"$B/batch-$1.csv"
}

explain_sql() {
    # shellcheck disable=SC2046 # two words: orig and dest
    set -- $(routes_of "$1" | head -1)
    echo "EXPLAIN (ANALYZE, BUFFERS) SELECT (day - '2021-01-01'::date) AS off, count(*) AS n, avg(price)::float8 AS avg FROM public.prices WHERE orig_code = '$1' AND dest_code = '$2' AND day >= '2021-01-01'::date AND day <= '2021-01-31'::date GROUP BY day ORDER BY day DESC"
}

{
    echo
    echo "\`/rates\`: wrk -t2 -c$CONNS -d$DUR --latency, 4 routes x 31 days in rotation, one ratesd with the default pool (8) and workers (8) on each database in turn after 2 s of warm-up, $ROUNDS rounds alternating (wrk, ratesd and PostgreSQL share the machine; load average before: $(cut -d' ' -f1-3 /proc/loadavg))."
    echo
    echo "| round | database | prices | req/s | p50 ms | p99 ms |"
    echo "|---:|---|---:|---:|---:|---:|"
} >>"$OUT"
to_ms='function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }'
batches=""
r=1
while [ $r -le "$ROUNDS" ]; do
    for db in $dumpdb $big; do
        lua_for "$db"
        start_srv "$db"
        say "wrk on $db (round $r)"
        # 2 s of warm-up (connections, prepared statements, caches), not counted.
        wrk -t1 -c4 -d2s -s "$B/$db.lua" "http://127.0.0.1:$port" >/dev/null 2>&1 || true
        wrk -t2 -c"$CONNS" -d"$DUR" --latency -s "$B/$db.lua" "http://127.0.0.1:$port" >"$B/wrk-$db.txt" 2>&1
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$B/wrk-$db.txt")
        p50=$(awk "$to_ms"' $1 == "50%" { printf "%.2f", ms($2) }' "$B/wrk-$db.txt")
        p99=$(awk "$to_ms"' $1 == "99%" { printf "%.2f", ms($2) }' "$B/wrk-$db.txt")
        non2xx=$(awk '/Non-2xx/ { print $NF }' "$B/wrk-$db.txt")
        [ -n "$non2xx" ] && say "warning: $non2xx non-2xx answers on $db"
        echo "| $r | $db | $(q "SELECT count(*) FROM public.prices WHERE batch_id IS NULL" "$db") | $rps | $p50 | $p99 |" >>"$OUT"
        if [ $r = 1 ]; then # two 50,000-row batches per database, one after the other
            batch=""
            for year in 2031 2035; do
                batch_csv "$db" "$year"
                t0=$(ms_now)
                code=$(curl -s -o "$B/batch-$db.json" -w '%{http_code}' -X POST -H 'Content-Type: text/csv' \
                    --data-binary @"$B/batch-$db.csv" "http://127.0.0.1:$port/batches" || true)
                bms=$(($(ms_now) - t0))
                if [ "$code" = 201 ] || [ "$code" = 200 ]; then
                    batch="$batch | $(secs $bms) s, $(awk -v ms="$bms" 'BEGIN { printf "%.0f", 50000000 / ms }') rows/s"
                else
                    batch="$batch | HTTP $code: $(head -c 120 "$B/batch-$db.json")"
                fi
            done
            batches="$batches
| $db$batch |"
        fi
        stop_srv
    done
    r=$((r + 1))
done
{
    echo
    echo "Two 50,000-row CSV batches (\`POST /batches\`, 50 routes between existing ports, new days), one after the other on each database after round 1 (request to answer, HTTP 201):"
    echo
    echo "| database | first batch | second batch |"
    echo "|---|---|---|$batches"
} >>"$OUT"

# Region to region (db/migrations/0006): the statement rates_by_day() runs for two slugs.
regions_of() {
    if [ "$1" = rates_dump ]; then echo "china_main north_europe_main"; else echo "synth_east_0 synth_west_0"; fi
}
explain_region_sql() {
    # shellcheck disable=SC2046 # two words: orig and dest regions
    set -- $(regions_of "$1")
    echo "EXPLAIN (ANALYZE, BUFFERS) SELECT pr.day - '2021-01-01'::date, count(*), avg(pr.price)::float8 FROM public.prices pr WHERE pr.orig_code = ANY (ARRAY['$1'] || ARRAY(SELECT public.region_ports('$1'))) AND pr.dest_code = ANY (ARRAY['$2'] || ARRAY(SELECT public.region_ports('$2'))) AND pr.day >= '2021-01-01'::date AND pr.day <= '2021-01-31'::date GROUP BY pr.day ORDER BY pr.day DESC"
}
for db in $dumpdb $big; do
    q "$(explain_sql "$db")" "$db" >/dev/null # warm, as under wrk
    {
        echo
        echo "EXPLAIN (ANALYZE, BUFFERS) of the /rates query between two ports on $db (route $(routes_of "$db" | head -1), January 2021, warm; the statement rates_by_day() runs for two ports):"
        echo
        echo '```'
        q "$(explain_sql "$db")" "$db"
        echo '```'
    } >>"$OUT"
done
if [ "$(q "SELECT to_regproc('public.region_ports') IS NOT NULL" "$big")" = t ]; then
    for db in $dumpdb $big; do
        q "$(explain_region_sql "$db")" "$db" >/dev/null
        {
            echo
            echo "Between two regions on $db ($(regions_of "$db"), January 2021, warm):"
            echo
            echo '```'
            q "$(explain_region_sql "$db")" "$db"
            echo '```'
        } >>"$OUT"
    done
fi

cat "$OUT"
# Replace the section between the markers in the docs.
if grep -q '<!-- bench-scale:begin -->' "$DOC" 2>/dev/null; then
    {
        sed '/<!-- bench-scale:begin -->/q' "$DOC"
        echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, PostgreSQL $(q 'SHOW server_version' | cut -d' ' -f1), \`make bench-scale\`:"
        echo
        cat "$OUT"
        sed -n '/<!-- bench-scale:end -->/,$p' "$DOC"
    } >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
    say "results written to $DOC"
fi
