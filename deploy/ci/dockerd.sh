#!/bin/sh
# dockerd.sh start DIR | stop DIR: a private Docker engine, its data and exec roots and socket
# under DIR, for machines where none runs (apt does not start docker.io's without systemd, and
# we must not disturb other engines). Used by CI (tests/stages/deploy.sh) and by
# `make compose-up` (scripts/compose-up.sh, DIR var/docker).
# start prints nothing and returns at once when the engine of DIR already answers; use
# DOCKER_HOST=unix://DIR/docker.sock. stop kills it by its PID and removes the bridge it made.
# Environment (defaults: CI's):
#   RATES_DOCKERD_BRIDGE       own bridge (ratesci0), never docker0, with address
#   RATES_DOCKERD_BRIDGE_ADDR  (10.231.0.1/24); networks come from RATES_DOCKERD_POOL (10.232.0.0/16)
#   RATES_DOCKERD_IPTABLES     true: Docker manages iptables; a snapshot taken at start is restored
#                              at stop (netstate.py). false: no iptables rule at all (published
#                              ports through docker-proxy, no NAT out of containers), so another
#                              engine on the same host keeps its rules and ours never undo them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1
dir=$2
case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if DOCKER_HOST="unix://$dir/docker.sock" /usr/bin/docker info >/dev/null 2>&1; then
        exit 0
    fi
    bridge=${RATES_DOCKERD_BRIDGE:-ratesci0}
    addr=${RATES_DOCKERD_BRIDGE_ADDR:-10.231.0.1/24}
    pool=${RATES_DOCKERD_POOL:-10.232.0.0/16}
    iptables=${RATES_DOCKERD_IPTABLES:-true}
    echo "$bridge" >"$dir/bridge"
    rm -f "$dir/netstate.json"
    if [ "$iptables" = true ]; then
        /usr/bin/python3 "$here/netstate.py" save "$dir/netstate.json"
        set --
    else
        set -- --iptables=false --ip-masq=false
    fi
    ip link show "$bridge" >/dev/null 2>&1 || {
        ip link add name "$bridge" type bridge
        ip addr add "$addr" dev "$bridge"
        ip link set "$bridge" up
    }
    # Its own session: a Ctrl-C in the terminal that started it does not reach it.
    setsid /usr/sbin/dockerd --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" -H "unix://$dir/docker.sock" --bridge "$bridge" \
        --default-address-pool "base=$pool,size=24" "$@" \
        --log-level warn </dev/null >"$dir/dockerd.log" 2>&1 &
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
    [ -d "$dir" ] && dir=$(cd "$dir" && pwd)
    pid=$(cat "$dir/docker.pid" 2>/dev/null || cat "$dir/dockerd.launch.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # containerd started by dockerd (its child) exits with it; unmount anything left.
    grep " $dir/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    ip link delete "$(cat "$dir/bridge" 2>/dev/null || echo ratesci0)" 2>/dev/null || true
    if [ -f "$dir/netstate.json" ]; then
        /usr/bin/python3 "$here/netstate.py" restore "$dir/netstate.json"
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
