#!/bin/sh
# deploy/compose/ha/patroni/entrypoint.sh: starts one Patroni node of the compose `ha` profile.
# Runs as root only to read the secret files (compose bind-mounts them with the host's owner,
# 0600) into a 0700 directory of postgres, writes /run/patroni/patroni.yml from the environment,
# then execs Patroni as postgres (PID 1). Secrets: /run/secrets/ha_superuser_password,
# ha_replication_password, ha_rest_password, postgres_password (the owner role's, used once by
# post_bootstrap). Environment (compose.yaml, defaults here):
#   PATRONI_NAME (required), PATRONI_SCOPE (rates), RATES_HA_HOST (this node's DNS name;
#   default the hostname), RATES_HA_ETCD_HOSTS (ha-etcd:2379), RATES_HA_TTL / _LOOP_WAIT /
#   _RETRY_TIMEOUT (10 / 2 / 4: loop_wait + 2 * retry_timeout <= ttl), POSTGRES_USER and
#   POSTGRES_DB (rates: the owner role and database post_bootstrap creates).
set -eu
: "${PATRONI_NAME:?PATRONI_NAME is required}"
scope=${PATRONI_SCOPE:-rates}
host=${RATES_HA_HOST:-$(hostname)}
etcd=${RATES_HA_ETCD_HOSTS:-ha-etcd:2379}
ttl=${RATES_HA_TTL:-10}
loop_wait=${RATES_HA_LOOP_WAIT:-2}
retry=${RATES_HA_RETRY_TIMEOUT:-4}
sec=${RATES_SECRETS_PATH:-/run/secrets}
pgdata=/var/lib/postgresql/data/pgdata
conf=/run/patroni

# secret NAME: the first line of /run/secrets/NAME; refuses an empty one or a quote (the value
# goes into single-quoted YAML).
secret() {
    v=$(head -n1 "$sec/$1") || exit 1
    case "$v" in '' | *"'"*) echo "ha-patroni: secret $1 is empty or holds a quote" >&2; exit 1 ;; esac
    printf '%s' "$v"
}
su_pw=$(secret ha_superuser_password)
repl_pw=$(secret ha_replication_password)
rest_pw=$(secret ha_rest_password)

umask 077
mkdir -p "$conf"
secret postgres_password >"$conf/owner_password"
cat >"$conf/patroni.yml" <<YAML
scope: $scope
name: $PATRONI_NAME
log:
  level: INFO
restapi:
  listen: 0.0.0.0:8008
  connect_address: $host:8008
  # POST /switchover, /failover, /restart and PATCH /config need these; GET /primary,
  # /replica and /health (HAProxy's checks) stay open.
  authentication:
    username: patroni
    password: '$rest_pw'
# The v2 API: its leader update is a compare-and-swap (deploy/patroni/patroni.yml.tpl, "Fencing").
etcd:
  hosts: $etcd
  protocol: http
bootstrap:
  dcs:
    ttl: $ttl
    loop_wait: $loop_wait
    retry_timeout: $retry
    master_start_timeout: 5
    maximum_lag_on_failover: 1048576
    # Every acknowledged commit is on the synchronous standby, which is the one promoted.
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        password_encryption: scram-sha-256
        max_connections: 200
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        shared_buffers: 64MB
        log_line_prefix: '%m [%p] '
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  post_bootstrap: /usr/local/bin/ha-post-bootstrap.sh
postgresql:
  listen: 0.0.0.0:5432
  connect_address: $host:5432
  data_dir: $pgdata
  bin_dir: /usr/lib/postgresql/13/bin
  pgpass: $conf/pgpass
  authentication:
    superuser:
      username: postgres
      password: '$su_pw'
    replication:
      username: replicator
      password: '$repl_pw'
    rewind:
      username: postgres
      password: '$su_pw'
  parameters:
    unix_socket_directories: /var/run/postgresql
  basebackup:
    - checkpoint: fast
  # samenet: the compose network (nodes, HAProxy, whose proxied sessions carry its address).
  # md5 also accepts the SCRAM verifiers password_encryption stores.
  pg_hba:
    - local all all trust
    - host replication replicator samenet md5
    - host all all samenet md5
watchdog:
  mode: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
YAML
chown -R postgres:postgres "$conf"
mkdir -p /var/lib/postgresql/data /var/run/postgresql
chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql
chmod 0700 /var/lib/postgresql/data
export RATES_HA_OWNER_PASSWORD_FILE="$conf/owner_password"
exec setpriv --reuid=postgres --regid=postgres --init-groups patroni "$conf/patroni.yml"
