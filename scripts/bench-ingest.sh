#!/bin/sh
# Batch ingestion benchmark (issue 3): POST /batches vs psql \copy with the dump's foreign keys
# vs \copy into a bare table, on a cluster with fsync on. Usage: scripts/bench-ingest.sh [BIN]
# (BENCH_SIZES=50000,1000000 and BENCH_ROUNDS=3 by default).
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
exec /usr/bin/python3 scripts/bench_ingest.py
