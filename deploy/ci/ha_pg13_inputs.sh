#!/bin/sh
# ha_pg13_inputs.sh [passed | record HASH]: what the PostgreSQL 13 twin of the HA deploy check
# (make ha-deploy-check-pg13) is made of, and whether it passed on that.
#   (no argument)  prints the 16-hex-digit hash of its inputs: the Ansible roles, Patroni and
#                  HAProxy settings, the check, its drill and root filesystems, the migrations,
#                  debian/. Not the service: the pg13 stage tests it on PostgreSQL 13 in every
#                  make test. Reads files, not git: the same hash from a clone and a tarball.
#   passed         exit 0, printing where, when these inputs passed it: as recorded in
#                  deploy/ci/ha-pg13.passed (committed, so a clean CI machine knows it too) or
#                  in this machine's stamp; exit 1 otherwise.
#   record HASH    after a pass on inputs of hash HASH (taken before the run): writes the
#                  stamp and the record (hash, date, kernel, commit); refuses (exit 1) when the
#                  files changed during the run.
set -eu
cd "$(dirname "$0")/../.."
record=deploy/ci/ha-pg13.passed
stamp=/var/cache/rates-ci/ha-deploy-check-pg13.passed

inputs() {
    find deploy/ansible deploy/patroni deploy/haproxy deploy/ci/ha_deploy_check.sh \
        deploy/ci/podman_env.sh deploy/ci/rootfs.sh deploy/ci/rootfs_ha.sh \
        deploy/ci/app_role_check.sh deploy/ci/ha_failover_drill.py deploy/ci/netstate.py \
        tests/support/ha db/migrations debian -type f ! -name '*.pyc' 2>/dev/null |
        LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16
}

case "${1:-}" in
"") inputs ;;
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
    h=${2:?record HASH}
    if [ "$(inputs)" != "$h" ]; then
        echo "ha-deploy-check-pg13: passed, but its inputs changed during the run: not recorded" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$stamp")"
    echo "$h" >"$stamp"
    commit=${COMMIT:-$(make -s --no-print-directory print-commit 2>/dev/null || echo unknown)}
    echo "$h $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $commit" >"$record"
    echo "ha-deploy-check-pg13: passed; recorded in $record: $(cat "$record")" ;;
*) echo "usage: ha_pg13_inputs.sh [passed | record HASH]" >&2; exit 2 ;;
esac
