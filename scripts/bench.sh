#!/bin/sh
# `make bench`: on one freshly started stack (its own PostgreSQL cluster, the dump, ratesd),
# runs wrk at 16 and 64 connections over a fixed mix of 60 /rates requests, and pgbench
# (prepared, 8 clients) running the ORIGINAL service's SQL over the same mix as the
# database's own limit; prints req/s, p50, p99 and the ratio. wrk is closed-loop: each
# connection sends its next request when the previous answer arrives, so these are
# throughput-at-saturation figures, not open-loop latencies under a fixed arrival rate.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
sh scripts/deps.sh test
# RATES_BIN: a binary built elsewhere (e.g. build-x/ratesd); otherwise build/ratesd is built.
bin=${RATES_BIN:-}
[ -n "$bin" ] || { make -s all; bin=./build/ratesd; }
dump=${RATES_DUMP:-db/rates.sql}
[ -f "$dump" ] || dump=../shared/db/rates.sql
[ -f "$dump" ] || { echo "bench: needs the dump (RATES_DUMP)" >&2; exit 1; }
dur=${BENCH_SECONDS:-10}
work=$(mktemp -d /tmp/rates-bench-XXXXXX)
chmod 755 "$work"
port=$(free_port)
api=$(free_port)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    pg_cluster_stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
pg_cluster_start "$work/pg" "$port"
url="postgresql://postgres@127.0.0.1:$port/rates"
psql -X -q -d "postgresql://postgres@127.0.0.1:$port/postgres" -c "CREATE DATABASE rates"
psql -X -q -v ON_ERROR_STOP=1 -d "$url" -f "$dump" >/dev/null
RATES_DATABASE_URL=$url "$bin" migrate >/dev/null
psql -X -q -d "$url" -c "VACUUM ANALYZE"
# The original service's SQL runs on its own copy of the dump with the route index it was
# measured with (migration 0002): /rates no longer needs that index (docs/aggregates.md).
orig="postgresql://postgres@127.0.0.1:$port/rates_orig"
psql -X -q -d "postgresql://postgres@127.0.0.1:$port/postgres" -c "CREATE DATABASE rates_orig"
psql -X -q -v ON_ERROR_STOP=1 -d "$orig" -f "$dump" >/dev/null
psql -X -q -d "$orig" -c "CREATE INDEX ON prices (orig_code, dest_code, day) INCLUDE (price)" \
    -c "VACUUM ANALYZE"

# The mix (scripts/bench_mix.sql, shared with bench-cache.sh): 20 busy routes, 20 sparse
# ones, 19 without prices, and the README request; ranges of 1 to 31 days, all deterministic.
psql -X -At -F ' ' -d "$orig" -f scripts/bench_mix.sql >"$work/mix.txt"
n=$(wc -l <"$work/mix.txt")
bench_mix_lua "$work/mix.txt" >"$work/mix.lua"
i=0
while read -r o d f t; do
    i=$((i + 1))
    cat >"$work/q$i.sql" <<SQL
SELECT CASE WHEN a.count < 3 THEN null ELSE a.price END AS price, d.day, a.count
FROM (SELECT (generate_series('$f'::date, '$t'::date, '1 day'::interval))::date AS day) d
LEFT OUTER JOIN (SELECT AVG(price) AS price, day, COUNT(*) AS count FROM prices WHERE orig_code = '$o' AND dest_code = '$d' AND day >= '$f'::date AND day <= '$t'::date GROUP BY day, orig_code, dest_code) AS a ON d.day = a.day ORDER BY day DESC;
SQL
done <"$work/mix.txt"

# The response cache is off here (RATES_CACHE_BYTES=0 unless given): these runs measure the
# database path; `make bench-cache` measures the cache beside nginx (docs/cache.md).
cache=${RATES_CACHE_BYTES:-0}
RATES_CACHE_BYTES=$cache RATES_DATABASE_URL=$url RATES_LISTEN=127.0.0.1:$api RATES_LOG_LEVEL=warn "$bin" >"$work/ratesd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$api/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$api/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL" >/dev/null

# Warm up: every pooled connection opened and its statements prepared, caches hot.
wrk -t2 -c64 -d2s -s "$work/mix.lua" "http://127.0.0.1:$api" >/dev/null 2>&1

run_wrk() { # CONNS [LABEL PATH]: the mix, or one request path printed under its label
    target="-s $work/mix.lua http://127.0.0.1:$api"
    [ $# -gt 1 ] && target="http://127.0.0.1:$api$3"
    # shellcheck disable=SC2086
    wrk -t2 -c"$1" -d"${dur}s" --latency $target >"$work/wrk$1.txt" 2>&1
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk$1.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$work/wrk$1.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk$1.txt")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' "$work/wrk$1.txt" | tr '\n' ' ')
    printf 'wrk  %3s conns  %10s req/s  p50 %-8s  p99 %-8s %s%s\n' "$1" "$rps" "$p50" "$p99" "$errs" "${2:-}"
}
echo "== ratesd $("$bin" --version | cut -d' ' -f2-), mix of $n requests, ${dur}s per run, response cache bytes $cache, 2 cores shared by server, PostgreSQL and load generator"
run_wrk 16
wrk16=$rps
run_wrk 64
wrk64=$rps
files=""
for f in "$work"/q*.sql; do files="$files -f $f"; done
# shellcheck disable=SC2086
pgbench -n -M prepared -c 8 -j 2 -T "$dur" $files "$orig" >"$work/pgbench.txt" 2>&1
tps=$(awk '/^tps = / {print $3; exit}' "$work/pgbench.txt")
lat=$(awk '/^latency average/ {print $4 " " $5}' "$work/pgbench.txt")
printf 'pgbench 8 clients, original SQL, prepared: %s tps (latency avg %s)\n' "$tps" "$lat"
awk -v a="$wrk64" -v b="$tps" -v c="$wrk16" 'BEGIN { printf "ratio wrk/pgbench: %.2f at 64 connections (goal >= 0.6), %.2f at 16\n", a / b, c / b }'
# Regions (docs/regions.md): a region pair over a month beside a port pair over the same month.
month="date_from=2021-01-01&date_to=2021-01-31"
run_wrk 16 "port pair CNGGZ -> EETLL, a month" "/rates?$month&orig_code=CNGGZ&dest_code=EETLL"
run_wrk 16 "regions china_main -> northern_europe, a month" \
    "/rates?$month&orig_code=china_main&dest_code=northern_europe"
# Issue 15's goal for the region month (the daily aggregate, docs/aggregates.md).
p99=$(echo "$p99" | awk '/us$/ {sub("us", ""); print $1 / 1000; next} /ms$/ {sub("ms", ""); print $1; next} {sub("s", ""); print $1 * 1000}')
awk -v r="$rps" -v p="$p99" 'BEGIN { printf "goal region month >= 2000 req/s and p99 <= 10 ms at 16 connections: %s (%.0f req/s, p99 %.2f ms)\n", (r >= 2000 && p <= 10) ? "met" : "NOT met", r, p }'
