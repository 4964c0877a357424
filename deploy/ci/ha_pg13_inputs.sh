#!/bin/sh
# ha_pg13_inputs.sh: prints the 16-hex-digit hash of what the PostgreSQL 13 twin of the HA
# deploy check (make ha-deploy-check-pg13) is made of: the Ansible roles, Patroni and HAProxy
# settings, the check, its drill and root filesystems, the migrations, debian/. The service
# itself is not among them: the pg13 stage tests it on PostgreSQL 13 in every make test.
# make test runs the twin only when this hash differs from deploy/ci/ha-pg13.passed (written by
# make ha-deploy-check-pg13 when it passes) and from this machine's own stamp. Reads files,
# not git: the same hash from a clone and from a release tarball.
set -eu
cd "$(dirname "$0")/../.."
find deploy/ansible deploy/patroni deploy/haproxy deploy/ci/ha_deploy_check.sh \
    deploy/ci/podman_env.sh deploy/ci/rootfs.sh deploy/ci/rootfs_ha.sh \
    deploy/ci/app_role_check.sh deploy/ci/ha_failover_drill.py deploy/ci/netstate.py \
    tests/support/ha db/migrations debian -type f ! -name '*.pyc' 2>/dev/null |
    LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16
