#!/bin/sh
# scripts/ha/alerts-drill.sh: Prometheus + Alertmanager on loopback with deploy/monitoring's
# rules; shows RatesReplicationLag and RatesDatabaseDown firing (tests/support/ha/alerts.py).
set -eu
cd "$(dirname "$0")/../.."
exec python3 -m tests.support.ha.alerts "$@"
