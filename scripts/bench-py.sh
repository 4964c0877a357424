#!/bin/sh
# Runs one Python benchmark (scripts/bench_NAME.py) as a module from the repository root, with
# RATES_BIN and the dump found. Usage: scripts/bench-py.sh NAME [BIN]
#   ingest  (make bench-ingest, issue 3): POST /batches vs psql \copy with the dump's foreign
#           keys vs \copy into a bare table, on a cluster with fsync on (BENCH_SIZES=50000,1000000
#           and BENCH_ROUNDS=3 by default).
#   mixed   (make bench-mixed, issue 13): README-query reads in a closed loop while 4 concurrent
#           1,000,000-row batches upload and commit; prints p50, p99 and max read latency
#           (BENCH_ROWS, BENCH_BATCHES, BENCH_READERS, BENCH_ENV).
#   model_load (make bench-model-load, issue 26): the read model loaded from PostgreSQL at
#           10,000,000 prices and a SIGUSR2 upgrade's peak memory (BENCH_MODEL_LOAD_PRICES).
#   staleness (make bench-staleness, issue 26): a second instance's staleness after each of
#           BENCH_ROUNDS (20) batches of BENCH_STALENESS_ROWS (50,000) rows: median, p99, max.
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
    ingest | mixed | model_load | staleness) name=$1 ;;
    *) echo "usage: scripts/bench-py.sh ingest|mixed|model_load|staleness [BIN]" >&2; exit 2 ;;
esac
RATES_BIN=${2:-${RATES_BIN:-build/ratesd}}
case "$RATES_BIN" in /*) ;; *) RATES_BIN="$PWD/$RATES_BIN" ;; esac
if [ -z "${RATES_DUMP:-}" ]; then
    for d in db/rates.sql ../shared/db/rates.sql; do
        if [ -f "$d" ]; then RATES_DUMP=$(cd "$(dirname "$d")" && pwd)/$(basename "$d"); break; fi
    done
fi
export RATES_BIN RATES_DUMP="${RATES_DUMP:-}"
exec /usr/bin/python3 -m "scripts.bench_$name"
