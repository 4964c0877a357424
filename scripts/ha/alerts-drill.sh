#!/bin/sh
# scripts/ha/alerts-drill.sh: Prometheus + Alertmanager on loopback with deploy/monitoring's
# rules; shows RatesReplicationLag and RatesDatabaseDown firing (scripts/ha/alerts_drill.py).
set -eu
cd "$(dirname "$0")/../.."
exec python3 scripts/ha/alerts_drill.py "$@"
