#!/bin/sh
# `make bench-cache` (issue 16 item 6): in ONE run, side by side, the README query at 64
# connections (wrk, closed loop) through ratesd with the response cache on (default) and off
# (RATES_CACHE_BYTES=0), nginx serving ratesd's identical answer bytes from a file on
# 127.0.0.1 (the HTTP limit here), and pgbench running the original service's SQL (the
# database limit; 8 clients, prepared, as scripts/bench.sh); the median req/s and p99 of
# BENCH_ROUNDS rounds of BENCH_SECONDS each, the rounds interleaved so that drift of the
# shared machine hits every target alike. Then a mixed run per ratesd: the read mix
# (scripts/bench_mix.sql) at full speed while a batch commits every second, with the hit rate
# (from /metrics: rates_cache_hits_total / rates_cache_misses_total, when the build has them)
# and p99. Usage: scripts/bench-cache.sh [BIN]  (RATES_BIN, RATES_DUMP, BENCH_SECONDS=5,
# BENCH_ROUNDS=3, BENCH_MIXED_SECONDS=10, BENCH_CONNS=64, BENCH_PATH=/rates?... to measure
# another request, e.g. a region month). Since issue 26 the cache-off instance answers from
# the read model (docs/readmodel.md) and a third, RATES_MODEL=false and no cache, from the
# database. About 3 minutes.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
sh scripts/deps.sh test
bin=${1:-${RATES_BIN:-}}
[ -n "$bin" ] || { make -s all; bin=./build/ratesd; }
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
dump=${RATES_DUMP:-db/rates.sql}
[ -f "$dump" ] || dump=../shared/db/rates.sql
[ -f "$dump" ] || { echo "bench-cache: needs the dump (RATES_DUMP)" >&2; exit 1; }
dur=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
mdur=${BENCH_MIXED_SECONDS:-10}
conns=${BENCH_CONNS:-64}
token=bench-cache-token-0123456789abcdef
readme=${BENCH_PATH:-"/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL"}

work=$(mktemp -d /tmp/rates-bench-cache-XXXXXX)
chmod 755 "$work"
pgport=$(free_port)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    pg_cluster_stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The database: the dump migrated for ratesd, and a copy with the original service's index
# for pgbench (as scripts/bench.sh).
pg_cluster_start "$work/pg" "$pgport"
base="postgresql://postgres@127.0.0.1:$pgport"
for db in rates rates_orig; do
    psql -X -q -d "$base/postgres" -c "CREATE DATABASE $db"
    psql -X -q -v ON_ERROR_STOP=1 -d "$base/$db" -f "$dump" >/dev/null
done
RATES_DATABASE_URL=$base/rates "$bin" migrate >/dev/null
psql -X -q -d "$base/rates" -c "VACUUM ANALYZE"
psql -X -q -d "$base/rates_orig" -c "CREATE INDEX ON prices (orig_code, dest_code, day) INCLUDE (price)" \
    -c "VACUUM ANALYZE"
cat >"$work/readme.sql" <<'SQL'
SELECT CASE WHEN a.count < 3 THEN null ELSE a.price END AS price, d.day, a.count
FROM (SELECT (generate_series('2021-01-01'::date, '2021-01-31'::date, '1 day'::interval))::date AS day) d
LEFT OUTER JOIN (SELECT AVG(price) AS price, day, COUNT(*) AS count FROM prices WHERE orig_code = 'CNGGZ' AND dest_code = 'EETLL' AND day >= '2021-01-01'::date AND day <= '2021-01-31'::date GROUP BY day, orig_code, dest_code) AS a ON d.day = a.day ORDER BY day DESC;
SQL
psql -X -At -F ' ' -d "$base/rates_orig" -f scripts/bench_mix.sql >"$work/mix.txt"
bench_mix_lua "$work/mix.txt" >"$work/mix.lua"

# Two instances on the same database: cache on (the build's default size) and off.
start_ratesd() { # NAME PORT [ENV=VALUE...]
    name=$1
    port=$2
    shift 2
    env RATES_DATABASE_URL="$base/rates" RATES_LISTEN="127.0.0.1:$port" RATES_LOG_LEVEL=warn \
        RATES_INGEST_TOKENS="bench:$token" "$@" "$bin" >"$work/$name.log" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench-cache: ratesd ($name) did not become ready:" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
}
on_port=$(free_port)
start_ratesd cache-on "$on_port"
off_port=$(free_port)
start_ratesd cache-off "$off_port" RATES_CACHE_BYTES=0
db_port=$(free_port)
start_ratesd database "$db_port" RATES_CACHE_BYTES=0 RATES_MODEL=false
has_cache=yes
"$bin" --help 2>&1 | grep -q RATES_CACHE_BYTES || has_cache="no (this build has no RATES_CACHE_BYTES: both rows are uncached)"

# nginx serves the very bytes ratesd answers (same Content-Type) from a file.
mkdir -p "$work/www" "$work/nginx"
curl -fsS -o "$work/www/answer.json" "http://127.0.0.1:$off_port$readme"
ngx_port=$(free_port)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
user root;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ngx_port;
        location = /rates {
            default_type application/json;
            alias $work/www/answer.json;
        }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' 2>"$work/nginx/stderr" &
pids="$pids $!"
for _ in $(seq 1 50); do
    curl -fs -o "$work/www/nginx.json" "http://127.0.0.1:$ngx_port$readme" 2>/dev/null && break
    sleep 0.1
done
cmp -s "$work/www/answer.json" "$work/www/nginx.json" ||
    { echo "bench-cache: nginx does not serve the answer bytes" >&2; cat "$work/nginx/stderr" >&2; exit 1; }

to_ms() { # wrk's latency (850.00us, 1.20ms, 1.01s) in ms
    echo "$1" | awk '/us$/ {sub("us", ""); print $1 / 1000; next} /ms$/ {sub("ms", ""); print $1; next}
                     /s$/ {sub("s", ""); print $1 * 1000; next} {print "nan"}'
}

# run_wrk OUT SECONDS URL [SCRIPT]: one wrk run; appends "rps p99_ms errors" to OUT.
run_wrk() {
    scr=""
    [ $# -gt 3 ] && scr="-s $4"
    # shellcheck disable=SC2086
    wrk -t2 -c"$conns" -d"$2s" --latency $scr "$3" >"$work/wrk.txt" 2>&1 || true
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")")
    errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {n += 1} END {print n + 0}' "$work/wrk.txt")
    echo "${rps:-0} ${p99:-nan} $errs" >>"$1"
}

# run_pgbench OUT: pgbench of the README query's original SQL; the p99 from its
# per-transaction log (third field: latency in microseconds).
run_pgbench() {
    rm -f "$work"/pgb.log*
    pgbench -n -M prepared -c 8 -j 2 -T "$dur" -f "$work/readme.sql" -l --log-prefix="$work/pgb.log" \
        "$base/rates_orig" >"$work/pgbench.txt" 2>&1 || true
    tps=$(awk '/^tps = / {print $3; exit}' "$work/pgbench.txt")
    p99=$(cat "$work"/pgb.log* | awk '{print $3}' | sort -n |
        awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; print (NR ? v[i] / 1000 : "nan")}')
    echo "${tps:-0} $p99 0" >>"$1"
}

# Warm-up: pools opened, statements prepared, the cache filled, nginx's file in page cache.
for p in "$on_port" "$off_port" "$db_port" "$ngx_port"; do
    wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$p$readme" >/dev/null 2>&1 || true
done

echo "== bench-cache: ratesd $("$bin" --version | cut -d' ' -f2-), README query, $conns connections," \
    "$rounds rounds x ${dur}s interleaved; cache in this build: $has_cache"
echo "   answer $(wc -c <"$work/www/answer.json") bytes; 2 cores shared by servers, PostgreSQL and wrk"
for r in $(seq 1 "$rounds"); do
    run_wrk "$work/r.on" "$dur" "http://127.0.0.1:$on_port$readme"
    run_wrk "$work/r.off" "$dur" "http://127.0.0.1:$off_port$readme"
    run_wrk "$work/r.db" "$dur" "http://127.0.0.1:$db_port$readme"
    run_wrk "$work/r.nginx" "$dur" "http://127.0.0.1:$ngx_port$readme"
    run_pgbench "$work/r.pgbench"
    echo "   round $r done"
done

median() { # FILE COLUMN
    awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
errsum() { awk '{n += $3} END {print n + 0}' "$1"; }
printf '\n%-34s %12s %10s %8s   %s\n' "target" "req/s (med)" "p99 ms" "errors" "rounds (req/s)"
for t in on off db nginx pgbench; do
    case $t in
    on) label="ratesd, cache on" ;;
    off) label="ratesd, cache off: read model" ;;
    db) label="ratesd, no cache, no model: db" ;;
    nginx) label="nginx, the same bytes from a file" ;;
    pgbench) label="pgbench 8 cl., original SQL" ;;
    esac
    printf '%-34s %12.0f %10.2f %8s   %s\n' "$label" "$(median "$work/r.$t" 1)" "$(median "$work/r.$t" 2)" \
        "$(errsum "$work/r.$t")" "$(awk '{printf "%.0f ", $1}' "$work/r.$t")"
done
on=$(median "$work/r.on" 1)
off=$(median "$work/r.off" 1)
ngx=$(median "$work/r.nginx" 1)
pgb=$(median "$work/r.pgbench" 1)
db=$(median "$work/r.db" 1)
on99=$(median "$work/r.on" 2)
awk -v on="$on" -v off="$off" -v db="$db" -v ngx="$ngx" -v pgb="$pgb" -v p="$on99" 'BEGIN {
    printf "ratios: cache on / nginx %.2f, model (cache off) / nginx %.2f, model / db %.2f, db / pgbench %.2f\n",
        on / ngx, off / ngx, off / db, db / pgb
    printf "goal cache on >= 0.5x nginx and p99 <= 5 ms at 64 connections: %s\n",
        (on >= 0.5 * ngx && p <= 5) ? "met" : "NOT met"
}'

# Mixed: the read mix at full speed while a batch of 31 rows (the README route, every day of
# January 2021, so that the README answer changes) commits every second.
metric() { # PORT NAME: the sum of a counter's samples, or "" when /metrics lacks it
    curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $NF; f = 1} END {if (f) printf "%.0f\n", s}'
}
writer() { # PORT SECONDS: one POST /batches a second (backgrounded, so the period stays 1 s)
    i=0
    while [ "$i" -lt "$2" ]; do
        i=$((i + 1))
        awk -v i="$i" 'BEGIN {print "orig_code,dest_code,day,price"
            for (d = 1; d <= 31; d++) printf "CNGGZ,EETLL,2021-01-%02d,%d\n", d, 1000 + i * 7 + d}' >"$work/batch.csv"
        cp "$work/batch.csv" "$work/batch$i.csv"
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST -H "Authorization: Bearer $token" \
            -H 'Content-Type: text/csv' --data-binary "@$work/batch$i.csv" \
            "http://127.0.0.1:$1/batches" >>"$work/writes.txt" &
        sleep 1
    done
    wait
}
printf '\nmixed: the %s-request read mix, %s connections, %ss, one 31-row batch committed a second\n' \
    "$(wc -l <"$work/mix.txt")" "$conns" "$mdur"
printf '%-34s %12s %10s %10s %14s\n' "target" "req/s" "p99 ms" "hit rate" "batches 201"
for t in on off db; do
    port=$on_port
    label="ratesd, cache on"
    if [ $t = off ]; then port=$off_port; label="ratesd, cache off: model"; fi
    if [ $t = db ]; then port=$db_port; label="ratesd, no cache, no model"; fi
    h0=$(metric "$port" rates_cache_hits_total)
    m0=$(metric "$port" rates_cache_misses_total)
    : >"$work/writes.txt"
    writer "$port" "$mdur" &
    wpid=$!
    rm -f "$work/m.$t"
    run_wrk "$work/m.$t" "$mdur" "http://127.0.0.1:$port" "$work/mix.lua"
    wait "$wpid" || true
    h1=$(metric "$port" rates_cache_hits_total)
    m1=$(metric "$port" rates_cache_misses_total)
    hit="n/a"
    if [ -n "$h0" ] && [ -n "$h1" ] && [ -n "$m0" ] && [ -n "$m1" ]; then
        hit=$(awk -v a="$((h1 - h0))" -v b="$((m1 - m0))" 'BEGIN {printf (a + b ? "%.1f%%" : "n/a"), 100 * a / (a + b)}')
    fi
    ok=$(awk '$1 == 201' "$work/writes.txt" | wc -l)
    all=$(wc -l <"$work/writes.txt")
    printf '%-34s %12.0f %10.2f %10s %14s\n' "$label" "$(awk '{print $1}' "$work/m.$t")" \
        "$(awk '{print $2}' "$work/m.$t")" "$hit" "$ok/$all"
done
[ "$has_cache" = yes ] || echo "(hit rate n/a: no rates_cache_* metrics in this build)"
