#!/bin/sh
# deploy/debian/install_purge.sh DIR DEB | --cleanup DIR
# Installs DEB in a clean Debian 12 systemd container under podman (the cached debootstrap root
# of deploy/ci/ansible_podman.sh: the package's runtime libraries are there, so no mirror is
# needed), and proves what the package promises: the rates system user, conffiles under
# /etc/rates/ (root:rates 0640), ratesd.socket enabled and active at once (dh_installsystemd),
# ratesd answering /healthz through the socket, man pages; then purges it and proves that
# nothing of it is left (units, /etc/rates with the administrator's secret files, process).
# Exit 77 (reason in DIR/skip) when podman cannot run a systemd container on this machine.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/ci/podman_env.sh
. "$root/deploy/ci/podman_env.sh"
name=rdci-deb
if [ "$1" = --cleanup ]; then
    dir=$2
    [ -f "$dir/containers.conf" ] || exit 0
    podman_env_use "$dir"
    podman rm -f -t 5 "$name" >/dev/null 2>&1
    podman_env_teardown "$dir"
    exit 0
fi
dir=$1
deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
# The podman settings of the other podman checks (deploy/ci/podman_env.sh).
podman_env_setup "$dir"
# The same root (and so the same cache entry) as the Ansible case.
tar=$(sh "$root/deploy/ci/rootfs.sh" bookworm-systemd bookworm \
    systemd,systemd-sysv,dbus,python3,python3-apt,python3-psycopg2,postgresql,postgresql-client,libmicrohttpd12,libpq5,libyajl2,libcurl4,adduser,curl,ca-certificates,iproute2) || exit 1
podman import --change 'CMD ["/sbin/init"]' "$tar" localhost/rates-ci/systemd:bookworm >/dev/null || exit 1
if ! podman run -d --name "$name" --network none --systemd=always \
    localhost/rates-ci/systemd:bookworm /sbin/init >"$dir/run.log" 2>&1; then
    cat "$dir/run.log"
    echo "podman cannot start a systemd container here: $(tail -1 "$dir/run.log")" >"$dir/skip"
    exit 77
fi
cx() { podman exec "$name" "$@"; }
i=0
until cx systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded'; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "systemd in the container did not come up"; podman logs --tail 30 "$name"; exit 1; }
    sleep 1
done
fail() { echo "FAIL: $*"; exit 1; }
podman cp "$deb" "$name:/tmp/rates.deb" || exit 1
echo "== dpkg -i"
cx dpkg -i /tmp/rates.deb || fail "dpkg -i"
cx getent passwd rates || fail "no rates user"
# shellcheck disable=SC2016 # expanded by the shell in the container
cx sh -c 'test "$(stat -c %U:%G:%a /etc/rates/ratesd.conf)" = root:rates:640' || fail "/etc/rates/ratesd.conf not root:rates 0640"
cx sh -c 'grep -qx /etc/rates/ratesd.conf /var/lib/dpkg/info/rates.conffiles' || fail "not a conffile"
cx systemctl is-enabled ratesd.socket || fail "socket not enabled"
cx systemctl is-active ratesd.socket || fail "socket not active after install"
i=0
until [ "$(cx curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3000/healthz)" = 200 ]; do
    i=$((i + 1))
    [ "$i" -lt 30 ] || { cx journalctl -u ratesd --no-pager | tail -30; fail "no /healthz through the socket"; }
    sleep 1
done
cx systemctl is-active ratesd.service || fail "service not running"
# shellcheck disable=SC2016 # expanded by the shell in the container
cx sh -c 'test "$(stat -c %U /proc/$(systemctl show -p MainPID --value ratesd.service))" = rates' ||
    fail "ratesd does not run as rates"
cx man -w ratesd >/dev/null 2>&1 || cx test -f /usr/share/man/man8/ratesd.8.gz || fail "no man page"
# The administrator's secret, as docs/operations.md says to add it: purge must take it too.
cx sh -c 'echo postgresql://x@db/rates > /etc/rates/database_url; chown root:rates /etc/rates/database_url'
echo "== dpkg --purge"
cx dpkg --purge rates || fail "dpkg --purge"
cx test ! -e /etc/rates || fail "/etc/rates is left after purge"
cx test ! -e /lib/systemd/system/ratesd.service || fail "unit left"
cx test ! -e /etc/systemd/system/sockets.target.wants/ratesd.socket || fail "enablement symlink left"
cx sh -c '! grep -qsx ratesd /proc/[0-9]*/comm' || fail "ratesd still running"
cx sh -c '! ss -Htln "sport = :3000" | grep -q .' || fail "port 3000 still listening"
echo "install and purge: ok (the rates user stays, as Debian practice wants)"
