#!/bin/sh
# alert_drill.sh DIR API_PORT ENV_FILE: the monitoring drill of the container run. Runs the
# Debian packages' Prometheus, Alertmanager and postgres exporter on loopback with the
# project's deploy/monitoring config (targets rewritten to 127.0.0.1 ports), a webhook
# receiver on loopback, then stops the db container and waits for RatesDatabaseDown to reach
# the webhook. Starts the db again at the end. Every wait is bounded; every process is ours.
set -u
dir=$1
api_port=$2
envf=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$dir/prom" "$dir/am"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh" # free_port
prom_port=$(free_port)
am_port=$(free_port)
hook_port=$(free_port)
exp_port=$(free_port)
db_port=$(sed -n 's/^CI_DB_PORT=//p' "$envf")
# The exporter's own login (rates_monitor, a member of pg_monitor only, on the database
# postgres, as compose runs it): its password file among the compose stack's secrets.
pwfile=$(sed -n 's/^RATES_SECRETS_DIR=//p' "$envf" | tail -1)/rates_monitor_password
pids=""
stop_all() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
}
trap stop_all EXIT

sed -e "s|api:3000|127.0.0.1:$api_port|" -e "s|postgres-exporter:9187|127.0.0.1:$exp_port|" \
    -e "s|alertmanager:9093|127.0.0.1:$am_port|" -e "s|localhost:9090|127.0.0.1:$prom_port|" \
    -e "s|scrape_interval: 15s|scrape_interval: 2s|" -e "s|evaluation_interval: 15s|evaluation_interval: 2s|" \
    "$root/deploy/monitoring/prometheus.yml" >"$dir/prometheus.yml"
cp "$root/deploy/monitoring/alerts.yml" "$dir/alerts.yml"
sed -e "s|http://alert-webhook:5001/alerts|http://127.0.0.1:$hook_port/alerts|" \
    -e "s|group_wait: 10s|group_wait: 2s|" -e "s|group_wait: 5s|group_wait: 1s|" \
    "$root/deploy/monitoring/alertmanager.yml" >"$dir/alertmanager.yml"
promtool check config "$dir/prometheus.yml" || exit 1

/usr/bin/python3 "$root/deploy/ci/webhook.py" "$hook_port" "$dir/webhook.jsonl" &
pids="$pids $!"
DATA_SOURCE_URI="127.0.0.1:$db_port/postgres?sslmode=disable" DATA_SOURCE_USER=rates_monitor DATA_SOURCE_PASS_FILE="$pwfile" \
    prometheus-postgres-exporter --web.listen-address="127.0.0.1:$exp_port" >"$dir/exporter.log" 2>&1 &
pids="$pids $!"
prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/am" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$dir/alertmanager.log" 2>&1 &
pids="$pids $!"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prom" \
    --web.listen-address="127.0.0.1:$prom_port" >"$dir/prometheus.log" 2>&1 &
pids="$pids $!"

query() { curl -s "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1"; }
i=0
until query 'pg_up == 1' | grep -q '"value"' && query 'up{job="rates"} == 1' | grep -q '"value"'; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then
        echo "Prometheus never saw pg_up == 1 and the rates target up"
        tail -5 "$dir/prometheus.log" "$dir/exporter.log"
        exit 1
    fi
    sleep 1
done
echo "Prometheus scrapes ratesd and the exporter (pg_up 1) after ${i}s; stopping the db container"
/usr/bin/docker stop -t 30 rdci_db_1 >/dev/null
t0=$(date +%s)
i=0
until grep -q '"alertname":"RatesDatabaseDown"' "$dir/webhook.jsonl" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge 180 ]; then
        echo "RatesDatabaseDown did not reach the webhook within 180s"
        query 'ALERTS' | head -c 2000
        /usr/bin/docker start rdci_db_1 >/dev/null
        exit 1
    fi
    sleep 1
done
echo "RatesDatabaseDown reached the loopback webhook $(($(date +%s) - t0))s after the db stopped:"
grep -o '"status":"firing".\{0,200\}' "$dir/webhook.jsonl" | head -2
/usr/bin/docker start rdci_db_1 >/dev/null
/usr/bin/python3 "$root/deploy/ci/wait_healthy.py" /usr/bin/docker rdci_db_1 60
