#!/bin/sh
# scripts/lib.sh: helpers shared by the scripts (sourced, not run).

# Runs a command as root: directly, through sudo, or prints it and fails.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "rates: please run as root: $*" >&2
        return 1
    fi
}

# The repository root, for the Python support package (tests/support) behind the helpers below:
# $root when the sourcing script set it, else the directory it was sourced from (the scripts cd
# to the root first), else the script's parent directory.
for rates_root in "${root:-}" "$PWD" "$(dirname "$0")/.." "$(dirname "$0")"; do
    [ -n "$rates_root" ] && [ -f "$rates_root/tests/support/cluster.py" ] && break
done
rates_root=$(cd "$rates_root" && pwd)

# rates_support MODULE ARGS...: runs `python3 -m tests.support.MODULE ARGS` from the repository
# root (quiet about the module being imported by its own package first), on this machine's
# PostgreSQL (never the tests' RATES_PG_CHROOT). Debian's /usr/bin/python3 when there: the
# interpreter of the python3-* packages that scripts/deps.sh installs (and no shim to start).
rates_support() {
    module=tests.support.$1
    shift
    py=python3
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    (cd "$rates_root" && unset RATES_PG_CHROOT && exec "$py" -W ignore::RuntimeWarning:runpy -m "$module" "$@")
}

# The PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH on Debian:
# tests/support/cluster.py's pg_bindir.
pg_bindir() {
    rates_support cluster bindir
}

# A free TCP port on 127.0.0.1 (tests/support/ports.py).
free_port() {
    rates_support ports
}

# pytest_parallel N: pytest's options for N pytest-xdist workers (each test file whole on one
# worker, so its module fixtures are made once), or nothing when pytest-xdist is missing.
pytest_parallel() {
    if /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
        echo "-n $1 --dist loadfile"
    fi
}

# pg_cluster_start DIR PORT: creates (once) and starts a cluster in DIR on 127.0.0.1:PORT,
# with its Unix socket in DIR. Extra postgresql.conf lines may come in PG_EXTRA_CONF.
# pg_cluster_stop DIR: stops it when it runs. Both are tests/support/cluster.py's PgDir.
pg_cluster_start() {
    case $1 in /*) ;; *) set -- "$PWD/$1" "$2" ;; esac
    rates_support cluster start "$1" "$2"
}

pg_cluster_stop() {
    case $1 in /*) ;; *) set -- "$PWD/$1" ;; esac
    rates_support cluster stop "$1"
}

# bench_mix_lua MIX: a wrk script cycling over the /rates requests of MIX (lines "orig dest
# date_from date_to", as scripts/bench_mix.sql prints them), on stdout.
bench_mix_lua() {
    echo "local paths = {"
    while read -r o d f t; do
        echo "  \"/rates?date_from=$f&date_to=$t&orig_code=$o&dest_code=$d\","
    done <"$1"
    echo "}"
    cat <<'LUA'
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
LUA
}
