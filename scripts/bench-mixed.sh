#!/bin/sh
# Mixed benchmark (issue 13): README-query reads in a closed loop while 4 concurrent
# 1,000,000-row batches upload and commit; prints p50, p99 and max read latency.
# Usage: scripts/bench-mixed.sh [BIN]  (BENCH_ROWS, BENCH_BATCHES, BENCH_READERS, BENCH_ENV).
set -eu
cd "$(dirname "$0")/.."
RATES_BIN=${1:-${RATES_BIN:-build/ratesd}}
case "$RATES_BIN" in /*) ;; *) RATES_BIN="$PWD/$RATES_BIN" ;; esac
if [ -z "${RATES_DUMP:-}" ]; then
    for d in db/rates.sql ../shared/db/rates.sql; do
        if [ -f "$d" ]; then RATES_DUMP=$(cd "$(dirname "$d")" && pwd)/$(basename "$d"); break; fi
    done
fi
export RATES_BIN RATES_DUMP="${RATES_DUMP:-}"
exec /usr/bin/python3 scripts/bench_mixed.py
