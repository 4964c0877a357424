#!/bin/sh
# scripts/env.sh: environments on demand: named, scaled-down copies of rates side by side
# (docs/environments.md). Called by mk/env.mk:
#   env.sh up NAME [--target local|compose] [--data dump|sample|synthetic] [--ttl 2h]
#   env.sh ls | down NAME | down-all | purge | bench-scale
# Local copies share ONE small PostgreSQL cluster ($ROOT/_pg) holding a template database per
# data mode; each copy gets a database cloned from its template (CREATE DATABASE ... TEMPLATE),
# its own ratesd (a copy of the binary) on an allocated loopback port, a folder $ROOT/NAME with
# meta, pid files and logs, and optionally a TTL watchdog. Only PIDs recorded in a copy's
# folder (and checked against /proc) are ever signalled.
# shellcheck disable=SC3043 # `local`: dash, bash and busybox sh all have it
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

TOP=$PWD
ROOT=$(realpath -m "${RATES_ENV_ROOT:-$TOP/var/envs}") # canonical: compared with /proc/PID/exe
BIN=${RATES_BIN:-$TOP/build/ratesd}
GEN=${RATES_GEN:-$(dirname "$BIN")/rates-gen}
DUMP=${RATES_DUMP:-db/rates.sql}
case $DUMP in /*) ;; *) DUMP=$TOP/$DUMP ;; esac
PG=$ROOT/_pg
SYNTH_PRICES=${RATES_ENV_SYNTH_PRICES:-56689}
SYNTH_SEED=${RATES_ENV_SYNTH_SEED:-1}
SAMPLE_EVERY=10 # sample mode keeps every 10th route (ordered by orig_code, dest_code)
ENV_POOL=${RATES_ENV_POOL_SIZE:-6} # >= workers + 4 batches (ratesd checks); connections open lazily
ENV_WORKERS=${RATES_ENV_WORKERS:-2}
export RATES_ENV_ROOT="$ROOT" RATES_BIN="$BIN" RATES_GEN="$GEN"

say() { echo "rates-env: $*"; }
die() {
    echo "rates-env: $*" >&2
    exit 1
}
now() { date +%s; }
ms_now() { date +%s%3N; }

# --- locking: one lock for everything that changes the cluster or the copies -----------
lock() {
    mkdir -p "$ROOT"
    chmod 755 "$ROOT" # the postgres user must reach $ROOT/_pg
    exec 9>"$ROOT/.lock"
    flock -w 900 9 || die "another env command holds $ROOT/.lock for too long"
}
try_lock() {
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock"
    flock -n 9
}
unlock() { exec 9>&-; }

# --- the shared cluster --------------------------------------------------------------------
pg_port() { cat "$PG/port" 2>/dev/null || true; }
pg_alive() {
    [ -f "$PG/data/postmaster.pid" ] || return 1
    pid=$(head -1 "$PG/data/postmaster.pid")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q postgres "/proc/$pid/comm" 2>/dev/null
}
psql_admin() { PGOPTIONS='-c client_min_messages=warning' \
     psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(pg_port)" -U postgres -d "${2:-postgres}" -c "$1"; }
db_url() { echo "postgresql://postgres@127.0.0.1:$(pg_port)/$1"; }

ensure_cluster() {
    local port
    pg_alive && return 0
    mkdir -p "$PG"
    port=$(pg_port)
    if [ -z "$port" ] || ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',int(sys.argv[1])))" "$port" 2>/dev/null; then
        port=$(free_port)
    fi
    echo "$port" >"$PG/port"
    say "starting the shared PostgreSQL in $PG on 127.0.0.1:$port"
    # Small on purpose: copies are scaled down. fsync off: templates are rebuilt from the dump.
    PG_EXTRA_CONF="shared_buffers = 16MB
max_connections = ${RATES_ENV_PG_MAX_CONNECTIONS:-60}
work_mem = 4MB
maintenance_work_mem = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 1GB
log_min_messages = warning" pg_cluster_start "$PG" "$port" 9>&- || die "PostgreSQL did not start (see $PG/postgres.log)"
}

stop_cluster_if_idle() {
    [ -n "$(copies)" ] && return 0
    if pg_alive; then
        say "no copies left: stopping the shared PostgreSQL (templates kept in $PG)"
        pg_cluster_stop "$PG"
    fi
}

# --- templates: one per data mode, rebuilt when their inputs change ------------------------
mig_hash() { cat db/migrations/*.sql | sha256sum | cut -c1-16; }
dump_fp() { echo "$(stat -L -c '%s-%Y' "$DUMP")-$(mig_hash)"; }
template_fp() { # template name -> fingerprint of what it was built from
    case $1 in
    rates_template) echo "dump:$(dump_fp)" ;;
    rates_template_sample) echo "sample:$SAMPLE_EVERY:$(dump_fp)" ;;
    *) echo "synthetic:$SYNTH_PRICES:$SYNTH_SEED:$("$GEN" --prices 1000 --seed "$SYNTH_SEED" | sha256sum | cut -c1-16):$(mig_hash)" ;;
    esac
}
template_name() {
    case $1 in
    dump) echo rates_template ;;
    sample) echo rates_template_sample ;;
    synthetic) echo "rates_template_synthetic_${SYNTH_PRICES}_$SYNTH_SEED" ;;
    esac
}
db_exists() { [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]; }

migrate_db() {
    RATES_DATABASE_URL=$(db_url "$1") RATES_LOG_FORMAT=text "$BIN" migrate >>"$ROOT/templates.log" 2>&1 ||
        die "ratesd migrate failed on $1 (see $ROOT/templates.log)"
}

# ensure_template MODE: builds (once) the template of a data mode under a temporary name and
# renames it into place, so a failed build never leaves a half-loaded template behind.
ensure_template() {
    local t fp cur new t0
    [ "$1" = sample ] && ensure_template dump
    t=$(template_name "$1")
    fp=$(template_fp "$t")
    cur=$(psql_admin "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$t'")
    [ "$cur" = "$fp" ] && return 0
    new=${t}_building
    t0=$(ms_now)
    say "building template $t ($1 data)"
    psql_admin "DROP DATABASE IF EXISTS $new"
    case $1 in
    dump)
        psql_admin "CREATE DATABASE $new"
        psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(pg_port)" -U postgres -d "$new" -f "$DUMP" \
            >>"$ROOT/templates.log" 2>&1 || die "loading $DUMP failed (see $ROOT/templates.log)"
        migrate_db "$new"
        ;;
    sample)
        psql_admin "CREATE DATABASE $new TEMPLATE rates_template"
        psql_admin "DELETE FROM public.prices p USING (
              SELECT orig_code, dest_code,
                     row_number() OVER (ORDER BY orig_code COLLATE \"C\", dest_code COLLATE \"C\") AS rn
              FROM (SELECT DISTINCT orig_code, dest_code FROM public.prices) d) r
            WHERE p.orig_code = r.orig_code AND p.dest_code = r.dest_code
              AND r.rn % $SAMPLE_EVERY <> 1" "$new"
        psql_admin "VACUUM FULL public.prices" "$new"
        ;;
    synthetic)
        psql_admin "CREATE DATABASE $new"
        migrate_db "$new"
        "$GEN" --prices "$SYNTH_PRICES" --seed "$SYNTH_SEED" |
            psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(pg_port)" -U postgres -d "$new" \
                >>"$ROOT/templates.log" 2>&1 || die "loading synthetic data failed (see $ROOT/templates.log)"
        ;;
    esac
    RATES_DATABASE_URL=$(db_url "$new") RATES_LOG_FORMAT=text "$BIN" aggregates check \
        >>"$ROOT/templates.log" 2>&1 || die "ratesd aggregates check failed on $new (see $ROOT/templates.log)"
    psql_admin "VACUUM ANALYZE" "$new"
    psql_admin "COMMENT ON DATABASE $new IS '$fp'"
    psql_admin "ALTER DATABASE $new ALLOW_CONNECTIONS false" # nobody may hold it open
    psql_admin "DROP DATABASE IF EXISTS $t"
    psql_admin "ALTER DATABASE $new RENAME TO $t"
    say "template $t ready in $(($(ms_now) - t0)) ms"
}

# --- copies ----------------------------------------------------------------------------------
copies() { # names of the copies, one a line
    for m in "$ROOT"/*/meta; do
        [ -f "$m" ] || continue
        basename "$(dirname "$m")"
    done
}
load_meta() { # NAME -> m_* variables
    # shellcheck disable=SC2034 # every field, so that nothing leaks from another copy
    m_name="" m_target="" m_data="" m_note="" m_db="" m_port="" m_url="" m_created=0 m_expires=0 m_id="" m_project=""
    [ -f "$ROOT/$1/meta" ] || return 1
    # shellcheck disable=SC1090 # key=value lines written by this script, values checked
    . "$ROOT/$1/meta"
}
check_name() {
    echo "$1" | grep -Eq '^[a-z][a-z0-9-]{0,39}$' ||
        die "NAME must be 1-40 characters, a-z 0-9 and '-', starting with a letter (got '$1')"
}
parse_ttl() { # 90s, 30m, 2h, 1d or seconds -> seconds (0: none)
    case $1 in
    "" | 0) echo 0 && return 0 ;;
    *) echo "$1" | grep -Eq '^[0-9]{1,9}[smhd]?$' || return 1 ;;
    esac
    case $1 in
    *d) echo $((${1%d} * 86400)) ;;
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
    esac
}
fmt_dur() { # seconds -> 1h02m, 5m03s, 42s
    local s
    s=$1
    if [ "$s" -ge 3600 ]; then printf '%dh%02dm' $((s / 3600)) $((s % 3600 / 60)); elif [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# The recorded PID of a copy's ratesd, when it is still that process (checked via /proc).
ratesd_pid() {
    local pid
    pid=$(cat "$ROOT/$1/ratesd.pid" 2>/dev/null || true)
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$ROOT/$1/bin/ratesd" ] && echo "$pid"
    return 0
}
watchdog_pid() {
    local pid
    pid=$(cat "$ROOT/$1/watchdog.pid" 2>/dev/null || true)
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q " _watchdog $1 " && echo "$pid"
    return 0
}
stop_pid() { # PID: SIGTERM, up to 10 s, then SIGKILL
    local i
    kill -TERM "$1" 2>/dev/null || return 0
    i=0
    while [ -d "/proc/$1" ] && [ $i -lt 50 ]; do
        sleep 0.2
        i=$((i + 1))
    done
    [ -d "/proc/$1" ] && kill -KILL "$1" 2>/dev/null
    return 0
}
# The watchdog leads its own process group (setsid): signal the group, so that its `sleep`
# goes too.
stop_watchdog() {
    if [ "$(ps -o pgid= -p "$1" | tr -d ' ')" = "$1" ]; then
        kill -TERM "-$1" 2>/dev/null || true
    else
        kill -TERM "$1" 2>/dev/null || true
    fi
}
http_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

start_ratesd() { # NAME PORT -> pid in ratesd.pid; 0 when /readyz answers 200
    local d i
    d=$ROOT/$1
    # A clean environment: only what the copy needs (plus log level and ingest settings).
    setsid env -i PATH="$PATH" HOME="${HOME:-/root}" \
        ${RATES_LOG_LEVEL:+RATES_LOG_LEVEL="$RATES_LOG_LEVEL"} \
        ${RATES_INGEST_TOKENS:+RATES_INGEST_TOKENS="$RATES_INGEST_TOKENS"} \
        ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
        RATES_DATABASE_URL="$m_url" RATES_LISTEN="127.0.0.1:$2" \
        RATES_POOL_SIZE="$ENV_POOL" RATES_WORKERS="$ENV_WORKERS" RATES_HTTP_THREADS=1 \
        RATES_INGEST_OPEN="${RATES_INGEST_OPEN:-true}" RATES_LOG_FORMAT=json \
        RATES_SHUTDOWN_TIMEOUT_S=5 \
        "$d/bin/ratesd" </dev/null >>"$d/ratesd.log" 2>&1 9>&- &
    echo $! >"$d/ratesd.pid"
    i=0
    while [ $i -lt 100 ]; do
        [ -d "/proc/$!" ] || return 1
        [ "$(http_status "http://127.0.0.1:$2/readyz")" = 200 ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# Frees the ports and the pid: the caller holds the lock.
down_locked() {
    local name pid
    name=$1
    load_meta "$name" || { rm -rf "${ROOT:?}/$name"; return 0; }
    if [ "$m_target" = compose ]; then
        compose_down "$name"
    else
        pid=$(ratesd_pid "$name")
        [ -n "$pid" ] && stop_pid "$pid"
        pid=$(watchdog_pid "$name")
        [ -n "$pid" ] && [ "$pid" != "$$" ] && stop_watchdog "$pid"
        ensure_cluster
        psql_admin "DROP DATABASE IF EXISTS $m_db WITH (FORCE)"
    fi
    rm -rf "${ROOT:?}/$name"
    say "$name is down"
}

reap_expired() {
    local t n
    t=$(now)
    for n in $(copies); do
        load_meta "$n" || continue
        if [ "$m_expires" -gt 0 ] && [ "$t" -ge "$m_expires" ]; then
            say "$n: TTL expired, tearing it down"
            down_locked "$n"
        fi
    done
}

cmd_up() {
    name=${1:-}
    shift || true
    target=local data=dump ttl=""
    while [ $# -gt 0 ]; do
        case $1 in
        --target) target=${2:-local}; shift 2 ;;
        --data) data=${2:-dump}; shift 2 ;;
        --ttl) ttl=${2:-}; shift 2 ;;
        *) die "unknown argument $1" ;;
        esac
    done
    [ -n "$name" ] || die "usage: make env-up NAME=x [TARGET=local|compose] [DATA=dump|sample|synthetic] [TTL=2h]"
    check_name "$name"
    case $target in local | compose) ;; *) die "TARGET must be local or compose" ;; esac
    case $data in dump | sample | synthetic) ;; *) die "DATA must be dump, sample or synthetic" ;; esac
    ttl_s=$(parse_ttl "$ttl") || die "TTL must look like 90s, 30m, 2h or 1d (got '$ttl')"
    [ -x "$BIN" ] || die "no ratesd at $BIN (make)"
    [ -x "$GEN" ] || die "no rates-gen at $GEN (make)"
    note=""
    if [ "$data" != synthetic ] && [ ! -f "$DUMP" ]; then
        say "no dump at $DUMP (set RATES_DUMP): DATA=$data falls back to DATA=synthetic ($SYNTH_PRICES prices, seed $SYNTH_SEED)"
        note="no-dump:fell-back-from-$data"
        data=synthetic
    fi
    t_start=$(ms_now)
    lock
    reap_expired
    [ -e "$ROOT/$name" ] && die "$name already exists (make env-down NAME=$name first)"
    if [ "$target" = compose ]; then
        compose_up "$name" "$data" "$ttl_s" "$note"
        unlock
        return 0
    fi
    ensure_cluster
    ensure_template "$data"
    d=$ROOT/$name
    db=rates_env_$(echo "$name" | tr - _)
    mkdir -p "$d/bin"
    cp "$BIN" "$d/bin/ratesd" # pinned: rebuilding the tree does not change a running copy
    created=$(now)
    expires=0
    [ "$ttl_s" -gt 0 ] && expires=$((created + ttl_s))
    psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    t0=$(ms_now)
    # PostgreSQL 15+ would copy the template block by block through the WAL by default;
    # FILE_COPY (the only strategy of 13/14) copies the files.
    strategy=""
    [ "$(psql_admin 'SHOW server_version_num')" -ge 150000 ] && strategy=" STRATEGY = FILE_COPY"
    psql_admin "CREATE DATABASE $db TEMPLATE $(template_name "$data")$strategy"
    clone_ms=$(($(ms_now) - t0))
    m_url=$(db_url "$db")
    tries=0
    port=""
    while [ $tries -lt 10 ]; do
        tries=$((tries + 1))
        port=$(free_port)
        # Never a port another copy has recorded (it may be restarting).
        grep -qs "^m_port=$port\$" "$ROOT"/*/meta && continue
        {
            echo "m_name=$name"
            echo "m_target=local"
            echo "m_data=$data"
            echo "m_note=$note"
            echo "m_db=$db"
            echo "m_port=$port"
            echo "m_url=$m_url"
            echo "m_pg_port=$(pg_port)"
            echo "m_created=$created"
            echo "m_expires=$expires"
            echo "m_id=$$-$created"
        } >"$d/meta"
        if start_ratesd "$name" "$port"; then
            break
        fi
        pid=$(ratesd_pid "$name")
        [ -n "$pid" ] && stop_pid "$pid"
        if [ $tries -ge 3 ]; then
            break
        fi
        say "ratesd did not start on port $port (taken?), trying another"
    done
    if [ -z "$(ratesd_pid "$name")" ]; then
        tail -5 "$d/ratesd.log" >&2 || true
        down_locked "$name"
        stop_cluster_if_idle
        die "ratesd of $name did not become ready (log above)"
    fi
    if [ "$expires" -gt 0 ]; then
        setsid sh scripts/env.sh _watchdog "$name" "$$-$created" </dev/null >>"$d/watchdog.log" 2>&1 9>&- &
        echo $! >"$d/watchdog.pid"
    fi
    unlock
    say "$name is up in $(($(ms_now) - t_start)) ms (database cloned from template in $clone_ms ms)"
    echo "  url:      http://127.0.0.1:$port/"
    echo "  data:     $data${note:+ ($note)}, database $db on 127.0.0.1:$(pg_port) (shared cluster $PG)"
    if [ "$expires" -gt 0 ]; then
        echo "  pids:     ratesd $(cat "$d/ratesd.pid"), TTL watchdog $(cat "$d/watchdog.pid") (tears it down in $(fmt_dur "$ttl_s"))"
    else
        echo "  pids:     ratesd $(cat "$d/ratesd.pid") (no TTL)"
    fi
    echo "  logs:     $d/ratesd.log"
    echo "  try:      curl 'http://127.0.0.1:$port/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=$(sample_route "$data" | cut -f1)&dest_code=$(sample_route "$data" | cut -f2)'"
    echo "  memory:   $(mem_line "$name")"
}

sample_route() { # a route with prices in the data of a mode
    if [ "$1" = synthetic ]; then
        "$GEN" --prices "$SYNTH_PRICES" --seed "$SYNTH_SEED" --routes 1 | cut -f1,2
    else
        printf 'CNGGZ\tEETLL\n'
    fi
}

# --- memory --------------------------------------------------------------------------------
kb_of() { # PID FIELD: a field of /proc/PID/smaps_rollup (Pss) or status (VmRSS), in kB
    local f
    f=/proc/$1/smaps_rollup
    [ "$2" = VmRSS ] && f=/proc/$1/status
    [ -r "$f" ] || { echo 0; return 0; } # not root: other users' processes are not readable
    awk -v k="$2:" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' "$f" 2>/dev/null || echo 0
}

# "TOTAL MB (ratesd RSS + backends PSS + shared PSS/N)" for one copy. The backends are the
# PostgreSQL processes connected to the copy's database; "shared" is the postmaster and the
# background processes of the shared cluster, divided among the running copies.
mem_line() {
    local svc pid be shared n p total
    load_meta "$1" || return 0
    svc=0
    pid=$(ratesd_pid "$1")
    [ -n "$pid" ] && svc=$(kb_of "$pid" VmRSS)
    be=0 shared=0 n=1
    if pg_alive; then
        for p in $(psql_admin "SELECT pid FROM pg_stat_activity WHERE datname = '$m_db'"); do
            be=$((be + $(kb_of "$p" Pss)))
        done
        for p in $(head -1 "$PG/data/postmaster.pid") $(psql_admin "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"); do
            shared=$((shared + $(kb_of "$p" Pss)))
        done
        n=$(copies | wc -l)
        [ "$n" -ge 1 ] || n=1
    fi
    total=$((svc + be + shared / n))
    echo "$((total / 1024)) MB (ratesd RSS $((svc / 1024)) MB + its PostgreSQL backends PSS $((be / 1024)) MB + shared PostgreSQL PSS $((shared / 1024)) MB / $n copies)"
}

cmd_ls() {
    if [ ! -d "$ROOT" ]; then
        say "no environments in $ROOT"
        return 0
    fi
    if try_lock; then
        reap_expired
        unlock
    fi
    if [ -z "$(copies)" ]; then
        say "no environments in $ROOT"
        return 0
    fi
    t=$(now)
    details=""
    printf '%-16s %-8s %-10s %-28s %-16s %-8s %-8s %-10s %s\n' NAME TARGET DATA URL PIDS AGE MEM_MB TTL_LEFT STATUS
    for n in $(copies); do
        load_meta "$n" || continue
        url="http://127.0.0.1:$m_port/"
        if [ "$m_target" = compose ]; then
            pids=compose:$m_project
            mem=-
            status=$(http_status "${url}readyz")
        else
            pid=$(ratesd_pid "$n")
            wd=$(watchdog_pid "$n")
            pids=${pid:-dead}${wd:+,wd:$wd}
            detail=$(mem_line "$n")
            details="$details
  $n: $detail"
            mem=${detail%% *}
            status=$(http_status "${url}readyz")
        fi
        case $status in 200) status=ready ;; 503) status=not-ready ;; *) status=down ;; esac
        left=-
        [ "$m_expires" -gt 0 ] && left=$(fmt_dur $((m_expires - t)))
        printf '%-16s %-8s %-10s %-28s %-16s %-8s %-8s %-10s %s\n' "$n" "$m_target" "$m_data" "$url" "$pids" \
            "$(fmt_dur $((t - m_created)))" "$mem" "$left" "$status"
    done
    pg_alive && echo "shared PostgreSQL: 127.0.0.1:$(pg_port) in $PG (pid $(head -1 "$PG/data/postmaster.pid"))"
    [ -n "$details" ] && echo "memory (MEM_MB):$details"
    return 0
}

cmd_down() {
    [ -n "${1:-}" ] || die "usage: make env-down NAME=x"
    check_name "$1"
    lock
    if [ -n "${2:-}" ]; then # from the watchdog: only the copy it was started for
        if ! load_meta "$1" || [ "$m_id" != "$2" ]; then
            unlock
            return 0
        fi
    fi
    [ -d "$ROOT/$1" ] || { unlock; die "no environment named $1 (make env-ls)"; }
    down_locked "$1"
    reap_expired
    stop_cluster_if_idle
    unlock
}

cmd_down_all() {
    lock
    for n in $(copies); do down_locked "$n"; done
    stop_cluster_if_idle
    unlock
}

cmd_purge() { # everything, the template cache included
    cmd_down_all
    lock
    pg_cluster_stop "$PG"
    rm -rf "${PG:?}" "$ROOT/templates.log" "$ROOT/_bench"
    unlock
    rm -f "$ROOT/.lock"
    rmdir "$ROOT" 2>/dev/null || true
    say "purged $ROOT"
}

# A copy's TTL watchdog: sleeps in bounded steps until its expiry, then takes the copy down.
cmd_watchdog() {
    name=$1 id=$2
    i=0
    while [ $i -lt 100000 ]; do
        load_meta "$name" && [ "$m_id" = "$id" ] || exit 0
        left=$((m_expires - $(now)))
        if [ "$left" -le 0 ]; then
            say "$name: TTL expired, tearing it down"
            exec sh scripts/env.sh down "$name" "$id"
        fi
        [ "$left" -gt 30 ] && left=30
        sleep "$left"
        i=$((i + 1))
    done
}

# --- TARGET=compose: the deploy engineer's compose.yaml, one project per copy ---------------
compose_cmd() {
    if docker compose version >/dev/null 2>&1; then
        echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo docker-compose
    else
        return 1
    fi
}

compose_up() {
    name=$1 data=$2 ttl_s=$3 note=$4
    file=${RATES_COMPOSE_FILE:-$TOP/compose.yaml}
    [ -f "$file" ] || die "TARGET=compose needs $file (the deploy compose file)"
    dc=$(compose_cmd) || die "TARGET=compose needs docker compose (or docker-compose) and a Docker engine"
    d=$ROOT/$name
    mkdir -p "$d/data"
    port=$(free_port)
    case $data in
    dump) ddir=$(dirname "$DUMP") dfile=$(basename "$DUMP") ;;
    sample)
        LC_ALL=C awk -F'\t' '/^COPY public[.]prices /{f=1;next} /^\\\.$/{f=0} f{print $1 "\t" $2}' "$DUMP" |
            LC_ALL=C sort -u | awk "NR % $SAMPLE_EVERY == 1" >"$d/data/routes.keep"
        awk -F'\t' 'NR==FNR{k[$1 "\t" $2]=1;next} /^COPY public[.]prices /{f=1;print;next} f&&/^\\\.$/{f=0} f&&!(($1 "\t" $2) in k){next} {print}' \
            "$d/data/routes.keep" "$DUMP" >"$d/data/rates.sql"
        ddir=$d/data dfile=rates.sql
        ;;
    synthetic)
        "$GEN" --schema --prices "$SYNTH_PRICES" --seed "$SYNTH_SEED" >"$d/data/rates.sql"
        ddir=$d/data dfile=rates.sql
        ;;
    esac
    # Scaled down: a small pool, a small PostgreSQL.
    cat >"$d/compose.override.yaml" <<EOF
services:
  db:
    command: ["postgres", "-c", "shared_buffers=16MB", "-c", "max_connections=20"]
EOF
    umask 077
    {
        echo "RATES_SECRETS_DIR=$d/secrets"
        echo "RATES_BIND=127.0.0.1"
        echo "RATES_PORT=$port"
        echo "RATES_POOL_SIZE=$ENV_POOL"
        echo "RATES_WORKERS=$ENV_WORKERS"
        echo "RATES_DUMP_DIR=$ddir"
        echo "RATES_DUMP_FILE=$dfile"
    } >"$d/compose.env"
    umask 022
    # The stack's secret files (compose secrets:, 0600; deploy/compose/secrets.sh).
    RATES_ENV_FILE="$d/compose.env" sh "$TOP/deploy/compose/secrets.sh" "$d/secrets" >/dev/null ||
        die "cannot write the compose secrets in $d/secrets"
    project=rates-env-$name
    created=$(now)
    expires=0
    [ "$ttl_s" -gt 0 ] && expires=$((created + ttl_s))
    {
        echo "m_name=$name"
        echo "m_target=compose"
        echo "m_data=$data"
        echo "m_note=$note"
        echo "m_port=$port"
        echo "m_project=$project"
        echo "m_created=$created"
        echo "m_expires=$expires"
        echo "m_id=$$-$created"
    } >"$d/meta"
    # shellcheck disable=SC2086
    $dc -p "$project" --env-file "$d/compose.env" -f "$file" -f "$d/compose.override.yaml" up -d --build api ||
        { compose_down "$name"; rm -rf "${d:?}"; die "docker compose up failed"; }
    if [ "$expires" -gt 0 ]; then
        setsid sh scripts/env.sh _watchdog "$name" "$$-$created" </dev/null >>"$d/watchdog.log" 2>&1 9>&- &
        echo $! >"$d/watchdog.pid"
    fi
    say "$name is up (compose project $project): http://127.0.0.1:$port/"
}

compose_down() {
    local d pid dc file
    d=$ROOT/$1
    load_meta "$1" || return 0
    file=${RATES_COMPOSE_FILE:-$TOP/compose.yaml}
    pid=$(watchdog_pid "$1")
    [ -n "$pid" ] && [ "$pid" != "$$" ] && stop_watchdog "$pid"
    dc=$(compose_cmd) || { say "no docker compose: cannot stop project $m_project"; return 0; }
    # shellcheck disable=SC2086
    $dc -p "$m_project" --env-file "$d/compose.env" -f "$file" -f "$d/compose.override.yaml" down -v --remove-orphans || true
}

cmd=${1:-}
shift || true
case $cmd in
up) cmd_up "$@" ;;
ls) cmd_ls ;;
down) cmd_down "$@" ;;
down-all) cmd_down_all ;;
purge) cmd_purge ;;
bench-scale) exec sh scripts/env-bench.sh "$@" ;;
_watchdog) cmd_watchdog "$@" ;;
*) die "usage: env.sh up NAME [--target local|compose] [--data dump|sample|synthetic] [--ttl 2h] | ls | down NAME | down-all | purge | bench-scale" ;;
esac
