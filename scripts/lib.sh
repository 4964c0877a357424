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

# The PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH on Debian.
# pg_bindir mirrors pg_bindir() in tests/support/cluster.py (the shell cannot import it; change
# both together): pg_config's bindir when it has initdb, else the newest of PostgreSQL 17..13.
pg_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    for v in 17 16 15 14 13; do
        d=/usr/lib/postgresql/$v/bin
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return
        fi
    done
    echo "rates: no PostgreSQL server binaries found (apt-get install postgresql)" >&2
    return 1
}

# A free TCP port on 127.0.0.1 (for the shell; Python code uses tests/support/ports.py).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a PostgreSQL server binary as the postgres user when we are root (it refuses root).
pg_run() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_cluster_start DIR PORT: creates (once) and starts a cluster in DIR on 127.0.0.1:PORT,
# with its Unix socket in DIR. Extra postgresql.conf lines may come in PG_EXTRA_CONF.
pg_cluster_start() {
    dir=$1
    port=$2
    bindir=$(pg_bindir) || return 1
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$dir"
        chown postgres:postgres "$dir"
        chmod 700 "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        pg_run "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; return 1; }
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$dir'"
            echo "max_connections = 200"
            echo "shared_buffers = 128MB"
            echo "${PG_EXTRA_CONF:-}"
        } | pg_run tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    pg_run "$bindir/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
        { tail -20 "$dir/postgres.log" >&2; return 1; }
}

pg_cluster_stop() {
    bindir=$(pg_bindir) || return 1
    [ -f "$1/data/postmaster.pid" ] && pg_run "$bindir/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null
    return 0
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
