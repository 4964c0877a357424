#!/bin/sh
# scripts/ha/lb-drill.sh: runs the lb drill (tests/support/ha/drill.py) and prints its JSON report.
# RATES_BIN picks the ratesd binary (default build/ratesd). Loopback only, bounded in time.
set -eu
cd "$(dirname "$0")/../.."
exec python3 -m tests.support.ha.drill lb "$@"
