#!/bin/sh
# rootfs_ha.sh SUITE: prints the path of the cached root filesystem (deploy/ci/rootfs.sh) that
# every HA use in CI shares: bookworm or bullseye with systemd and the HA engines preinstalled
# (PostgreSQL, Patroni and its etcd client, etcd, HAProxy, pgBackRest). The podman hosts of
# ha_deploy_check.sh boot it with systemd; the compose ha profile's images (etcd, Patroni,
# HAProxy) are built FROM the bullseye one (tests/stages/deploy.sh, compose-ha-failover).
# bookworm also holds the .deb's runtime libraries: it is the app host's root as well.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
common=systemd,systemd-sysv,dbus,procps,python3,python3-apt,python3-psycopg2,patroni,python3-etcd,etcd-server,etcd-client,haproxy,pgbackrest,curl,ca-certificates,iproute2,openssl
case "${1:?SUITE}" in
bookworm) exec sh "$here/rootfs.sh" bookworm-ha-root bookworm \
    "$common,postgresql,postgresql-client,libmicrohttpd12,libpq5,libyajl2,libcurl4,adduser" ;;
bullseye) exec sh "$here/rootfs.sh" bullseye-ha-root bullseye \
    "$common,postgresql-13,postgresql-client-13,postgresql-client" ;;
*) echo "rootfs_ha.sh: unknown suite $1" >&2; exit 2 ;;
esac
