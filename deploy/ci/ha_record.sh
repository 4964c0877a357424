#!/bin/sh
# ha_record.sh [CHECK [passed | record HASH]]: what the HA deploy check is made of, and whether
# one of its slow parts (CHECK) already passed on that. The parts:
#   pg13         the whole check on Debian 11 database hosts (make ha-deploy-check-pg13)
#   idempotence  the check's second playbook run on Debian 12 hosts (changed=0 everywhere)
# Both depend on what the playbook, the hosts and the check are made of, not on the service:
# the pg13 stage tests the service on PostgreSQL 13, and the first playbook run and the drill
# run in every make test.
#   (no CHECK)     prints the 16-hex-digit hash of those inputs: the Ansible roles, Patroni and
#                  HAProxy settings, the check, its drill and root filesystems, the migrations,
#                  debian/. Reads files, not git: the same hash from a clone and a tarball.
#   CHECK passed   exit 0, printing where, when these inputs passed CHECK: as recorded in
#                  deploy/ci/ha-CHECK.passed (committed, so a clean CI machine knows it too) or
#                  in this machine's stamp; exit 1 otherwise.
#   CHECK record HASH
#                  after CHECK passed on inputs of hash HASH (taken before the run): writes the
#                  stamp and the record (hash, date, kernel, commit); refuses (exit 1) when the
#                  files changed during the run.
set -eu
cd "$(dirname "$0")/../.."

inputs() {
    find deploy/ansible deploy/patroni deploy/haproxy deploy/ci/ha_deploy_check.sh \
        deploy/ci/podman_env.sh deploy/ci/rootfs.sh deploy/ci/rootfs_ha.sh \
        deploy/ci/app_role_check.sh deploy/ci/ha_failover_drill.py deploy/ci/netstate.py \
        tests/support/ha db/migrations debian -type f ! -name '*.pyc' 2>/dev/null |
        LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16
}

usage() {
    echo "usage: ha_record.sh [pg13|idempotence [passed | record HASH]]" >&2
    exit 2
}

[ $# -gt 0 ] || { inputs; exit 0; }
check=$1
case "$check" in
pg13 | idempotence) ;;
*) usage ;;
esac
record=deploy/ci/ha-$check.passed
stamp=/var/cache/rates-ci/ha-deploy-check-$check.passed
case "${2:-}" in
passed)
    h=$(inputs)
    if [ "$(cut -d' ' -f1 "$record" 2>/dev/null)" = "$h" ]; then
        echo "as recorded in $record ($(cut -d' ' -f2- "$record"))"
    elif [ "$(cat "$stamp" 2>/dev/null)" = "$h" ]; then
        echo "on this machine ($stamp)"
    else
        exit 1
    fi ;;
record)
    h=${3:?record HASH}
    if [ "$(inputs)" != "$h" ]; then
        echo "ha $check: passed, but its inputs changed during the run: not recorded" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$stamp")"
    echo "$h" >"$stamp"
    commit=${COMMIT:-$(make -s --no-print-directory print-commit 2>/dev/null || echo unknown)}
    echo "$h $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $commit" >"$record"
    echo "ha $check: passed; recorded in $record: $(cat "$record")" ;;
*) usage ;;
esac
