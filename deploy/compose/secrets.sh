#!/bin/sh
# deploy/compose/secrets.sh [DIR]: the compose stack's secret files (compose `secrets:`, read by
# the containers through their *_FILE variables). DIR: $RATES_SECRETS_DIR or ./.secrets (git-ignored).
# The directory is 0700 and every file 0600. A password file that exists is kept (the database
# volume already holds it); the URL files are rewritten from the passwords each run, with the
# POSTGRES_USER / POSTGRES_DB of $RATES_ENV_FILE (default ./.env, when present).
# Run as root (sudo make compose-secrets) to give each file to the uid its container reads it as
# (compose bind-mounts file secrets with the host's owner and mode): api and init 10001,
# the exporter 65534 (nobody), Grafana 472; db and the ha profile's Patroni nodes read as root. As another user the files keep
# that user's uid, and only containers running as root (db) can read them.
# Initial values may come from the environment (CI): POSTGRES_PASSWORD, RATES_APP_PASSWORD,
# RATES_INGEST_TOKENS, GRAFANA_ADMIN_PASSWORD; otherwise random hex (URL-safe).
set -eu
dir=${1:-${RATES_SECRETS_DIR:-./.secrets}}
envf=${RATES_ENV_FILE:-./.env}
user=rates
db=rates
if [ -f "$envf" ]; then
    user=$(sed -n 's/^POSTGRES_USER=//p' "$envf" | tail -1)
    db=$(sed -n 's/^POSTGRES_DB=//p' "$envf" | tail -1)
fi
user=${user:-rates}
db=${db:-rates}
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
rand() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
# keep NAME VALUE: writes the file only when it does not exist yet.
keep() {
    [ -s "$dir/$1" ] || printf '%s\n' "$2" >"$dir/$1"
}
# put NAME VALUE: (re)writes the file.
put() {
    printf '%s\n' "$2" >"$dir/$1.tmp"
    mv "$dir/$1.tmp" "$dir/$1"
}
keep postgres_password "${POSTGRES_PASSWORD:-$(rand)}"
keep rates_app_password "${RATES_APP_PASSWORD:-$(rand)}"
keep ingest_tokens "${RATES_INGEST_TOKENS:-ops:$(rand)}"
keep grafana_admin_password "${GRAFANA_ADMIN_PASSWORD:-$(rand)}"
# Profile ha (deploy/compose/ha): Patroni's superuser, replication and REST passwords.
keep ha_superuser_password "$(rand)"
keep ha_replication_password "$(rand)"
keep ha_rest_password "$(rand)"
pw=$(cat "$dir/postgres_password")
app=$(cat "$dir/rates_app_password")
# The owner (init migrates as it) and rates_app (the api's least-privilege role, migration 0005).
put owner_database_url "postgresql://$user:$pw@db:5432/$db"
put api_database_url "postgresql://rates_app:$app@db:5432/$db"
# Profile ha: the same roles through HAProxy (5000 writes to the leader, 5001 reads replicas).
put ha_owner_database_url "postgresql://$user:$pw@ha-haproxy:5000/$db"
put ha_api_database_url "postgresql://rates_app:$app@ha-haproxy:5000/$db"
put ha_api_read_database_url "postgresql://rates_app:$app@ha-haproxy:5001/$db"
chmod 0600 "$dir"/*
if [ "$(id -u)" = 0 ]; then
    chown 65534:65534 "$dir/postgres_password"
    chown 10001:10001 "$dir/rates_app_password" "$dir/owner_database_url" "$dir/api_database_url" "$dir/ingest_tokens" \
        "$dir/ha_owner_database_url" "$dir/ha_api_database_url" "$dir/ha_api_read_database_url"
    chown 472:0 "$dir/grafana_admin_password"
else
    echo "secrets.sh: not root: the files keep uid $(id -u); the api, init, exporter and Grafana" \
        "containers cannot read them (run: sudo make compose-secrets)" >&2
fi
echo "secrets.sh: $dir: postgres_password rates_app_password ingest_tokens grafana_admin_password owner_database_url api_database_url, ha_* (0600)"
