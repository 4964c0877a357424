#!/bin/sh
# ansible_podman.sh DIR DEB | --cleanup DIR
# The real run of deploy/ansible/site.yml, twice, against a systemd container under podman
# (Debian 12 minbase + systemd, PostgreSQL and the .deb's runtime libraries preinstalled from
# the cached debootstrap tarball, so the playbook needs no mirror), over the
# containers.podman.podman connection. Passes when the second run reports changed=0 and
# ratesd answers /readyz and /rates through the 127.0.0.1 port published by podman.
# Podman settings (runc on cgroupfs, ulimits, storage and network config in DIR):
# deploy/ci/podman_env.sh.
# Exit 77 (reason in DIR/skip) when podman itself cannot run a container on this machine.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/ci/podman_env.sh
. "$here/podman_env.sh"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh" # free_port
# shellcheck source=deploy/ci/app_role_check.sh
. "$here/app_role_check.sh"
if [ "$1" = --cleanup ]; then
    dir=$2
    [ -f "$dir/containers.conf" ] || exit 0
    podman_env_use "$dir"
    podman rm -f -t 5 rdci-target >/dev/null 2>&1
    podman network rm -f rdci >/dev/null 2>&1
    podman_env_teardown "$dir"
    exit 0
fi
dir=$1
deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
podman_env_setup "$dir"

tar=$(sh "$here/rootfs.sh" bookworm-systemd bookworm \
    systemd,systemd-sysv,dbus,python3,python3-apt,python3-psycopg2,postgresql,postgresql-client,libmicrohttpd12,libpq5,libyajl2,libcurl4,adduser,curl,ca-certificates,iproute2) || exit 1
podman import --change 'CMD ["/sbin/init"]' "$tar" localhost/rates-ci/systemd:bookworm >/dev/null || exit 1
podman network create --subnet 10.233.0.0/24 rdci >/dev/null || exit 1
port=$(free_port)
if ! podman run -d --name rdci-target --hostname rates-target --network rdci --systemd=always \
    -p "127.0.0.1:$port:3000" localhost/rates-ci/systemd:bookworm /sbin/init >"$dir/run.log" 2>&1; then
    cat "$dir/run.log"
    echo "podman cannot start a systemd container here: $(tail -1 "$dir/run.log")" >"$dir/skip"
    exit 77
fi
i=0
until podman exec rdci-target systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded'; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then
        echo "systemd in the container did not come up"
        podman logs --tail 30 rdci-target
        exit 1
    fi
    sleep 1
done
echo "systemd container up after ${i}s; 127.0.0.1:$port -> 3000"
cat >"$dir/inventory.yml" <<EOC
all:
  children:
    rates:
      hosts:
        rdci-target:
          ansible_connection: containers.podman.podman
          ansible_python_interpreter: /usr/bin/python3
          # root in the container already; su (not sudo) switches to postgres for the db tasks
          ansible_become_method: su
      vars:
        rates_deb: "$deb"
        rates_install_postgresql: true
        rates_apt_update_cache: false
        rates_db_password: "ci-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
        rates_app_db_password: "ci-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
        rates_listen_port: 3000
EOC
cd "$root/deploy/ansible" || exit 1
export ANSIBLE_CONFIG="$root/deploy/ansible/ansible.cfg" ANSIBLE_LOCAL_TEMP="$dir/tmp" ANSIBLE_NOCOLOR=1
for run in 1 2; do
    echo "== ansible-playbook run $run"
    timeout 900 ansible-playbook -i "$dir/inventory.yml" site.yml >"$dir/run$run.log" 2>&1
    rc=$?
    tail -4 "$dir/run$run.log"
    if [ "$rc" != 0 ]; then
        tail -40 "$dir/run$run.log"
        exit 1
    fi
done
recap=$(grep -E '^rdci-target +:' "$dir/run2.log")
echo "second run: $recap"
echo "$recap" | grep -q 'changed=0 ' || { grep -B2 -A8 '^changed:' "$dir/run2.log" | head -60; exit 1; }
echo "$recap" | grep -q 'failed=0 ' || exit 1
# Least privilege as deployed (deploy/ci/app_role_check.sh).
app_role_check "$port" podman exec rdci-target runuser -u postgres -- psql -d rates || exit 1
podman exec rdci-target systemctl is-enabled ratesd.socket
podman exec rdci-target systemctl is-active ratesd.socket ratesd.service || exit 1
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]; do
    i=$((i + 1))
    [ "$i" -lt 30 ] || { echo "ratesd does not answer on 127.0.0.1:$port"; exit 1; }
    sleep 1
done
code=$(curl -s -o "$dir/rates.json" -w '%{http_code}' "http://127.0.0.1:$port/rates?date_from=2021-01-01&date_to=2021-01-02&orig_code=CNGGZ&dest_code=EETLL")
echo "GET /rates through 127.0.0.1:$port -> $code $(head -c 200 "$dir/rates.json")"
[ "$code" = 200 ] || [ "$code" = 400 ] || exit 1
# Zero-downtime restart: systemd holds the socket; requests during a restart all get answers.
/usr/bin/python3 - "$port" <<'EOP' &
import sys, time, urllib.request
port = sys.argv[1]
bad = 0
for i in range(150):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
    except Exception as e:
        bad += 1
        print("request failed:", e)
    time.sleep(0.02)
sys.exit(1 if bad else 0)
EOP
load=$!
sleep 0.5
podman exec rdci-target systemctl restart ratesd.service
wait "$load" || { echo "requests failed during systemctl restart ratesd.service"; exit 1; }
echo "150 requests across a service restart: all answered (socket activation)"
