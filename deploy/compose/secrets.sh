#!/bin/sh
# deploy/compose/secrets.sh [DIR]: the compose stack's secret files (compose `secrets:`, read by
# the containers through their *_FILE variables). DIR: $RATES_SECRETS_DIR or ./.secrets (git-ignored).
# The directory is 0700 and every file 0600. A password file that exists is kept (the database
# volume already holds it); the URL files are rewritten from the passwords each run, with the
# POSTGRES_USER / POSTGRES_DB of $RATES_ENV_FILE (default ./.env, when present).
# Run as root (sudo make compose-secrets) to give each file to the uid its container reads it as
# (compose bind-mounts file secrets with the host's owner and mode): api and init 10001,
# the exporter 65534 (nobody), Grafana 472; db and the ha profile's Patroni nodes read as root
# (the owner's password is root's: no other container can read it). As another user the files
# keep that user's uid, and only containers running as root (db) can read them.
# Initial values may come from the environment (CI): POSTGRES_PASSWORD, RATES_APP_PASSWORD,
# RATES_INGEST_TOKENS, GRAFANA_ADMIN_PASSWORD; otherwise random hex (URL-safe).
# The exporter's role rates_monitor: its password (the exporter's file) and that password's
# SCRAM-SHA-256 verifier (init's file: init sets the role's password from it, so only the
# exporter holds the password itself). The verifier needs python3 (hashlib).
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
keep rates_monitor_password "$(rand)"
# The verifier PostgreSQL stores (SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY, base64; ALTER ROLE
# takes it as it is), kept while it still matches the password, so init changes nothing then.
command -v python3 >/dev/null 2>&1 || { echo "secrets.sh: python3 is needed (rates_monitor_verifier)" >&2; exit 1; }
python3 - "$dir/rates_monitor_password" "$dir/rates_monitor_verifier" <<'EOF'
import base64, hashlib, hmac, os, sys

src, dst = sys.argv[1:3]
pw = open(src, "rb").read().strip()  # as the exporter reads it (strings.TrimSpace)


def verifier(salt, iters):
    salted = hashlib.pbkdf2_hmac("sha256", pw, salt, iters)
    client = hmac.new(salted, b"Client Key", "sha256").digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iters}:{b64(salt)}${b64(hashlib.sha256(client).digest())}:{b64(server)}"


try:
    old = open(dst).read().strip()
    iters, salt = old.split("$")[1].split(":")
    if verifier(base64.b64decode(salt), int(iters)) == old:
        sys.exit(0)
except (OSError, IndexError, ValueError):
    pass
with open(dst + ".tmp", "w") as f:
    f.write(verifier(os.urandom(16), 4096) + "\n")
os.replace(dst + ".tmp", dst)
EOF
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
    # Earlier versions gave it to the exporter (65534); only root containers read it now.
    chown 0:0 "$dir/postgres_password"
    chown 65534:65534 "$dir/rates_monitor_password"
    chown 10001:10001 "$dir/rates_app_password" "$dir/owner_database_url" "$dir/api_database_url" "$dir/ingest_tokens" \
        "$dir/ha_owner_database_url" "$dir/ha_api_database_url" "$dir/ha_api_read_database_url" \
        "$dir/rates_monitor_verifier"
    chown 472:0 "$dir/grafana_admin_password"
else
    echo "secrets.sh: not root: the files keep uid $(id -u); the api, init, exporter and Grafana" \
        "containers cannot read them (run: sudo make compose-secrets)" >&2
fi
echo "secrets.sh: $dir: postgres_password rates_app_password ingest_tokens grafana_admin_password owner_database_url api_database_url" \
    "rates_monitor_password rates_monitor_verifier, ha_* (0600)"
