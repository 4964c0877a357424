#!/bin/sh
# dockerd.sh start DIR | stop DIR: a private Docker engine for CI, its data and exec roots and
# socket under DIR (apt does not start the one from docker.io, and we must not disturb others).
# start prints nothing; use DOCKER_HOST=unix://DIR/docker.sock. stop kills it by its PID and
# removes the bridges and iptables rules it created (snapshot taken at start).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1
dir=$2
case "$cmd" in
start)
    mkdir -p "$dir"
    /usr/bin/python3 "$here/netstate.py" save "$dir/netstate.json"
    # Own bridge name and address pool: never the default docker0, so nothing else clashes.
    bridge=ratesci0
    ip link show "$bridge" >/dev/null 2>&1 || {
        ip link add name "$bridge" type bridge
        ip addr add 10.231.0.1/24 dev "$bridge"
        ip link set "$bridge" up
    }
    /usr/sbin/dockerd --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" -H "unix://$dir/docker.sock" --bridge "$bridge" \
        --default-address-pool base=10.232.0.0/16,size=24 \
        --log-level warn >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.launch.pid"
    i=0
    until DOCKER_HOST="unix://$dir/docker.sock" /usr/bin/docker info >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -ge 60 ] || ! kill -0 "$(cat "$dir/dockerd.launch.pid")" 2>/dev/null; then
            echo "dockerd did not start:" >&2
            tail -20 "$dir/dockerd.log" >&2
            exit 1
        fi
        sleep 1
    done
    ;;
stop)
    pid=$(cat "$dir/docker.pid" 2>/dev/null || cat "$dir/dockerd.launch.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # containerd started by dockerd (its child) exits with it; unmount anything left.
    grep " $dir/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    ip link delete ratesci0 2>/dev/null || true
    if [ -f "$dir/netstate.json" ]; then
        /usr/bin/python3 "$here/netstate.py" restore "$dir/netstate.json"
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
