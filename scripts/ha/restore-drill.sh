#!/bin/sh
# scripts/ha/restore-drill.sh: a point-in-time restore into a fresh cluster, checked.
#
# 1. a primary with WAL archiving (cluster.sh up), a base backup (pg_basebackup);
# 2. batches A are written (ledger + prices), the target time T is taken;
# 3. batches B are written, then the accident: the dump's prices are deleted;
# 4. the base backup is restored into a fresh data directory with restore_command from the
#    archive and recovery_target_time = T, and promoted;
# 5. the restored prices and ledger must equal those at T (A in, B and the accident out).
# Prints the recovery time (restore start to read-write) and the recovery point. Loopback
# only; everything lives in $RATES_HA_DIR (default var/ha-restore) and is removed at the end
# unless KEEP=1.
set -eu
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RATES_HA_DIR=${RATES_HA_DIR:-$PWD/var/ha-restore}
export RATES_HA_DIR
RESTORE=$RATES_HA_DIR/restore
BASE=$RATES_HA_DIR/base

cleanup() {
    if [ -f "$RESTORE/data/postmaster.pid" ]; then
        pg_run "$(pg_bindir)/pg_ctl" -D "$RESTORE/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "restore: kept $RATES_HA_DIR (cluster.sh down --purge removes it)"
    else
        sh scripts/ha/cluster.sh down --purge >/dev/null
    fi
}

now_ms() {
    python3 -c 'import time; print(int(time.monotonic() * 1000))'
}

sh scripts/ha/cluster.sh up >/dev/null
trap cleanup EXIT
# shellcheck disable=SC1091
. "$RATES_HA_DIR/ha.env"
url="postgresql://postgres@127.0.0.1:$HA_N1_PORT/rates"
q() {
    psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# The drill's ports, and N batches of 1000 rows written as ratesd writes them: the ledger
# record and the rows, in one transaction.
q "$url" "INSERT INTO regions (slug, name) VALUES ('ha_drill', 'HA drill') ON CONFLICT DO NOTHING;
          INSERT INTO ports (code, name, parent_slug) VALUES ('HADRA', 'A', 'ha_drill'),
              ('HADRB', 'B', 'ha_drill') ON CONFLICT DO NOTHING" >/dev/null
write_batches() {
    i=1
    while [ "$i" -le "$2" ]; do
        q "$url" "WITH b AS (INSERT INTO batches (idempotency_key, token_name, status, rows,
                      received_at, committed_at) VALUES ('$1-$i', 'drill', 'committed', 1000,
                      now(), now()) RETURNING id)
                  INSERT INTO prices (orig_code, dest_code, day, price, batch_id)
                  SELECT 'HADRA', 'HADRB', date '2031-01-01' + g % 365, 1000 + g, b.id
                  FROM b, generate_series(1, 1000) g" >/dev/null
        i=$((i + 1))
    done
}
snapshot() {
    q "$1" "SELECT (SELECT count(*) FROM prices) || ' prices, ' ||
                   (SELECT count(*) FROM batches WHERE status = 'committed') || ' batches, sum ' ||
                   (SELECT coalesce(sum(price), 0) FROM prices) || ', ledger ' ||
                   (SELECT md5(coalesce(string_agg(idempotency_key || ':' || rows, ',' ORDER BY id), ''))
                    FROM batches)"
}

t0=$(now_ms)
pg_run "$(pg_bindir)/pg_basebackup" -h 127.0.0.1 -p "$HA_N1_PORT" -U postgres -D "$BASE" \
    -X stream -c fast >/dev/null
echo "restore: base backup taken in $(( $(now_ms) - t0 )) ms ($(du -sh "$BASE" | cut -f1))"

write_batches a 5
at_target=$(snapshot "$url")
target=$(q "$url" "SELECT clock_timestamp()")
sleep 1
write_batches b 3
q "$url" "DELETE FROM prices WHERE batch_id IS NULL" >/dev/null
damaged=$(snapshot "$url")
q "$url" "SELECT pg_switch_wal()" >/dev/null
# The segment holding the accident reaches the archive (archive_command, archive_timeout).
seg=$(q "$url" "SELECT pg_walfile_name(pg_current_wal_lsn())")
i=0
while [ "$(q "$url" "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")" != t ]; do
    i=$((i + 1))
    [ "$i" -le 200 ] || { echo "restore: archiving did not catch up" >&2; exit 1; }
    q "$url" "SELECT pg_switch_wal()" >/dev/null
    sleep 0.1
done
echo "restore: at target $target: $at_target"
echo "restore: after the accident:   $damaged"

# The restore: a fresh data directory from the base backup, WAL from the archive.
t0=$(now_ms)
port=$(free_port)
mkdir -p "$RESTORE"
cp -a "$BASE" "$RESTORE/data"
chown -R postgres:postgres "$RESTORE"
chmod 700 "$RESTORE" "$RESTORE/data"
{
    echo "# restore-drill.sh"
    echo "port = $port"
    echo "unix_socket_directories = '$RESTORE'"
    echo "cluster_name = 'restored'"
    echo "archive_mode = off"
    echo "restore_command = 'cp $RATES_HA_DIR/archive/%f %p'"
    echo "recovery_target_time = '$target'"
    echo "recovery_target_action = 'promote'"
} | pg_run tee -a "$RESTORE/data/postgresql.conf" >/dev/null
pg_run touch "$RESTORE/data/recovery.signal"
pg_run "$(pg_bindir)/pg_ctl" -D "$RESTORE/data" -l "$RESTORE/postgres.log" -w -t 300 start >/dev/null
rurl="postgresql://postgres@127.0.0.1:$port/rates"
i=0
while [ "$(q "$rurl" "SELECT pg_is_in_recovery()" 2>/dev/null)" != f ]; do
    i=$((i + 1))
    [ "$i" -le 3000 ] || { echo "restore: not promoted" >&2; exit 1; }
    sleep 0.1
done
elapsed=$(( $(now_ms) - t0 ))
restored=$(snapshot "$rurl")
stop_line=$(grep -E "recovery stopping before|last completed transaction" "$RESTORE/postgres.log" | tail -2 | sed 's/^.*LOG: *//' | tr '\n' ' ')
echo "restore: restored:             $restored"
echo "restore: recovery time $elapsed ms (copy, WAL replay to the target, promotion)"
echo "restore: recovery point: $stop_line"
if [ "$restored" = "$at_target" ] && [ "$restored" != "$damaged" ]; then
    echo "restore: OK: the restored prices and ledger equal those at the target time"
else
    echo "restore: FAILED: restored state differs from the state at the target time" >&2
    exit 1
fi
