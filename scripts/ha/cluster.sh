#!/bin/sh
# scripts/ha/cluster.sh: a replicated PostgreSQL on loopback for the HA drills.
#
#   cluster.sh up [--sync] [--no-dump]   primary n1 + streaming standby n2 (pg_basebackup -R,
#                                        replication slot), WAL archived to $HA_DIR/archive;
#                                        --sync: synchronous_standby_names (commit waits for n2)
#   cluster.sh promote                   promotes the standby (after the primary died)
#   cluster.sh kill-primary              kill -9 of the primary's postmaster (the drill)
#   cluster.sh rejoin                    rebuilds the dead old primary as a standby of the new
#   cluster.sh status                    roles, WAL positions, replication lag
#   cluster.sh env                       prints the URLs (sh syntax) for ratesd
#   cluster.sh down [--purge]            stops both nodes (--purge: deletes $HA_DIR)
#
# State lives in $RATES_HA_DIR (default var/ha): n1/, n2/, archive/, ha.env. Ports are free
# loopback ports picked at `up`. Only PIDs recorded in this directory are ever signalled.
set -eu
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

HA_DIR=${RATES_HA_DIR:-$PWD/var/ha}
RATES_BIN=${RATES_BIN:-build/ratesd}
ENV_FILE=$HA_DIR/ha.env

die() {
    echo "ha: $*" >&2
    exit 1
}

ha_load() {
    [ -f "$ENV_FILE" ] || die "no cluster in $HA_DIR (run: cluster.sh up)"
    # shellcheck disable=SC1090
    . "$ENV_FILE"
}

# node_port NAME
node_port() {
    if [ "$1" = n1 ]; then echo "$HA_N1_PORT"; else echo "$HA_N2_PORT"; fi
}

node_running() {
    [ -f "$HA_DIR/$1/data/postmaster.pid" ] &&
        kill -0 "$(head -1 "$HA_DIR/$1/data/postmaster.pid")" 2>/dev/null
}

# node_sql NAME SQL: one value, or empty when the node is down.
node_sql() {
    psql -X -At -h 127.0.0.1 -p "$(node_port "$1")" -U postgres -d postgres -c "$2" 2>/dev/null || true
}

node_role() {
    if ! node_running "$1"; then echo down; return; fi
    case $(node_sql "$1" "SELECT pg_is_in_recovery()") in
        t) echo standby ;;
        f) echo primary ;;
        *) echo unreachable ;;
    esac
}

node_start() {
    pg_run "$(pg_bindir)/pg_ctl" -D "$HA_DIR/$1/data" -l "$HA_DIR/$1/postgres.log" -w -t 60 start >/dev/null ||
        { tail -20 "$HA_DIR/$1/postgres.log" >&2; die "node $1 did not start"; }
}

write_env() {
    hosts="127.0.0.1:$HA_N1_PORT,127.0.0.1:$HA_N2_PORT"
    rhosts="127.0.0.1:$HA_N2_PORT,127.0.0.1:$HA_N1_PORT"
    cat >"$ENV_FILE" <<EOF
HA_DIR='$HA_DIR'
HA_N1_PORT=$HA_N1_PORT
HA_N2_PORT=$HA_N2_PORT
HA_SYNC=$HA_SYNC
# ratesd finds the primary among both hosts by itself (libpq target_session_attrs).
RATES_HA_URL='postgresql://postgres@$hosts/rates?target_session_attrs=read-write'
# /rates prefers a standby and falls back to the primary (libpq >= 14).
RATES_HA_READ_URL='postgresql://postgres@$rhosts/rates?target_session_attrs=prefer-standby'
EOF
}

# basebackup FROM TO: TO becomes a streaming standby of FROM with slot TO.
basebackup() {
    from=$1
    to=$2
    dir=$HA_DIR/$to
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir" 2>/dev/null || true
    chmod 700 "$dir"
    node_sql "$from" "SELECT pg_create_physical_replication_slot('$to') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '$to')" >/dev/null
    pg_run "$(pg_bindir)/pg_basebackup" -h 127.0.0.1 -p "$(node_port "$from")" -U postgres \
        -D "$dir/data" -R -S "$to" -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
        { cat "$dir/basebackup.log" >&2; die "pg_basebackup $from -> $to failed"; }
    {
        echo "# cluster.sh: this node"
        echo "port = $(node_port "$to")"
        echo "unix_socket_directories = '$dir'"
        echo "cluster_name = '$to'"
    } | pg_run tee -a "$dir/data/postgresql.conf" >/dev/null
    node_start "$to"
}

cmd_up() {
    HA_SYNC=0
    load_dump=1
    for a in "$@"; do
        case $a in
            --sync) HA_SYNC=1 ;;
            --no-dump) load_dump=0 ;;
            *) die "up: unknown option $a" ;;
        esac
    done
    [ ! -f "$ENV_FILE" ] || die "a cluster exists in $HA_DIR (cluster.sh down --purge first)"
    [ -x "$RATES_BIN" ] || die "no $RATES_BIN (make, or set RATES_BIN)"
    mkdir -p "$HA_DIR/archive" "$HA_DIR/n1"
    chown postgres:postgres "$HA_DIR" "$HA_DIR/archive" "$HA_DIR/n1" 2>/dev/null || true
    chmod 700 "$HA_DIR/n1"
    HA_N1_PORT=$(free_port)
    HA_N2_PORT=$(free_port)
    [ "$HA_N1_PORT" != "$HA_N2_PORT" ] || HA_N2_PORT=$(free_port)
    pg_run "$(pg_bindir)/initdb" -D "$HA_DIR/n1/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$HA_DIR/n1/initdb.log" 2>&1 || { cat "$HA_DIR/n1/initdb.log" >&2; die "initdb failed"; }
    # Settings both nodes share (the standby copies them with the base backup).
    {
        echo "# cluster.sh: replication and archiving"
        echo "listen_addresses = '127.0.0.1'"
        echo "max_connections = 200"
        echo "shared_buffers = 128MB"
        echo "wal_level = replica"
        echo "max_wal_senders = 10"
        echo "max_replication_slots = 10"
        echo "wal_keep_size = '256MB'"
        echo "hot_standby = on"
        echo "hot_standby_feedback = on"
        echo "wal_log_hints = on"
        echo "archive_mode = on"
        echo "archive_command = 'test ! -f $HA_DIR/archive/%f && cp %p $HA_DIR/archive/%f'"
        echo "archive_timeout = 5"
        echo "log_line_prefix = '%m [%p] '"
        echo "# cluster.sh: this node"
        echo "port = $HA_N1_PORT"
        echo "unix_socket_directories = '$HA_DIR/n1'"
        echo "cluster_name = 'n1'"
    } | pg_run tee -a "$HA_DIR/n1/data/postgresql.conf" >/dev/null
    node_start n1
    write_env
    url="postgresql://postgres@127.0.0.1:$HA_N1_PORT"
    psql -X -q -d "$url/postgres" -c "CREATE DATABASE rates"
    dump=${RATES_DUMP:-db/rates.sql}
    [ -f "$dump" ] || dump=../shared/db/rates.sql
    if [ "$load_dump" = 1 ] && [ -f "$dump" ]; then
        psql -X -q -v ON_ERROR_STOP=1 -d "$url/rates" -f "$dump" >/dev/null
    fi
    RATES_DATABASE_URL="$url/rates" "$RATES_BIN" migrate >"$HA_DIR/migrate.log" 2>&1 ||
        { cat "$HA_DIR/migrate.log" >&2; die "migrate failed"; }
    basebackup n1 n2
    i=0
    while [ "$(node_sql n1 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" != 1 ]; do
        i=$((i + 1))
        [ "$i" -le 100 ] || die "the standby does not stream"
        sleep 0.1
    done
    # Synchronous only once the standby streams (before, every commit would wait for it).
    if [ "$HA_SYNC" = 1 ]; then
        node_sql n1 "ALTER SYSTEM SET synchronous_standby_names = 'n2'" >/dev/null
        node_sql n1 "SELECT pg_reload_conf()" >/dev/null
    fi
    echo "ha: primary n1 on 127.0.0.1:$HA_N1_PORT, standby n2 on 127.0.0.1:$HA_N2_PORT (sync=$HA_SYNC), archive $HA_DIR/archive"
    echo "ha: URLs for ratesd: cluster.sh env (or source $ENV_FILE)"
}

cmd_kill_primary() {
    ha_load
    for n in n1 n2; do
        if [ "$(node_role "$n")" = primary ]; then
            pid=$(head -1 "$HA_DIR/$n/data/postmaster.pid")
            kill -9 "$pid"
            echo "ha: killed primary $n (postmaster $pid)"
            return 0
        fi
    done
    die "no running primary"
}

cmd_promote() {
    ha_load
    for n in n1 n2; do
        [ "$(node_role "$n")" = standby ] || continue
        pg_run "$(pg_bindir)/pg_ctl" -D "$HA_DIR/$n/data" -w -t 60 promote >/dev/null
        # The new primary has no standby yet: it must not wait for one (availability over
        # the second copy until `rejoin`; docs/high-availability.md).
        node_sql "$n" "ALTER SYSTEM SET synchronous_standby_names = ''" >/dev/null
        node_sql "$n" "SELECT pg_reload_conf()" >/dev/null
        echo "ha: promoted $n"
        return 0
    done
    die "no standby to promote"
}

cmd_rejoin() {
    ha_load
    new=""
    old=""
    for n in n1 n2; do
        case $(node_role "$n") in
            primary) new=$n ;;
            down) old=$n ;;
        esac
    done
    if [ -z "$new" ] || [ -z "$old" ]; then
        die "rejoin needs one primary and one stopped node"
    fi
    basebackup "$new" "$old"
    if [ "$HA_SYNC" = 1 ]; then
        node_sql "$new" "ALTER SYSTEM SET synchronous_standby_names = '$old'" >/dev/null
        node_sql "$new" "SELECT pg_reload_conf()" >/dev/null
    fi
    echo "ha: $old rejoined as a standby of $new"
}

cmd_status() {
    ha_load
    for n in n1 n2; do
        role=$(node_role "$n")
        case $role in
            primary)
                echo "$n 127.0.0.1:$(node_port "$n") primary lsn=$(node_sql "$n" "SELECT pg_current_wal_lsn()") sync='$(node_sql "$n" "SHOW synchronous_standby_names")'"
                node_sql "$n" "SELECT '  -> ' || application_name || ' ' || state || ' ' || sync_state || ' replay_lag_bytes=' || pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication"
                ;;
            standby)
                echo "$n 127.0.0.1:$(node_port "$n") standby replay=$(node_sql "$n" "SELECT pg_last_wal_replay_lsn()") lag_s=$(node_sql "$n" "SELECT coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 3), 0)")"
                ;;
            *) echo "$n 127.0.0.1:$(node_port "$n") $role" ;;
        esac
    done
}

cmd_down() {
    if [ -f "$ENV_FILE" ]; then
        for n in n1 n2; do
            if [ -f "$HA_DIR/$n/data/postmaster.pid" ]; then
                pg_run "$(pg_bindir)/pg_ctl" -D "$HA_DIR/$n/data" -m immediate -w stop >/dev/null 2>&1 || true
            fi
        done
    fi
    if [ "${1:-}" = --purge ]; then
        rm -rf "$HA_DIR"
        echo "ha: removed $HA_DIR"
    fi
}

cmd=${1:-status}
[ $# -eq 0 ] || shift
case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    promote) cmd_promote ;;
    kill-primary) cmd_kill_primary ;;
    rejoin) cmd_rejoin ;;
    status) cmd_status ;;
    env) ha_load; cat "$ENV_FILE" ;;
    *) die "usage: cluster.sh up [--sync] [--no-dump] | down [--purge] | promote | kill-primary | rejoin | status | env" ;;
esac
