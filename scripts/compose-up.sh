#!/bin/sh
# scripts/compose-up.sh up | down: the compose stack (compose.yaml) in one command, beside
# `make up` (`make compose-up`, `make compose-down`; deploy/README.md, "Compose (one host)").
# up: installs docker.io and docker-compose from Debian when missing; uses the Docker engine that
#   answers (DOCKER_HOST, the default socket), else docker.service under systemd, else a private
#   engine in $RATES_DOCKER_DIR (/var/lib/rates-docker; deploy/ci/dockerd.sh, no iptables rule);
#   .env from .env.example and the secret files (deploy/compose/secrets.sh) when missing; builds
#   the api and init images (when no registry answers, their Debian base and the database image
#   come from Debian packages, as in CI); mounts the dump (RATES_DUMP, else the .env's
#   RATES_DUMP_DIR/RATES_DUMP_FILE, db/rates.sql) or, without one, the synthetic sample `make up`
#   loads (rates-gen --seed 1, marked so that /readyz says "data": "sample"; replaced by the dump
#   on the first run that has one); `up -d`; waits for /readyz (RATES_COMPOSE_WAIT_S, 180 s) and
#   prints the URL. A second run reuses everything: build cache, secrets, data volume, containers.
# down: `compose down`, the data volume kept unless RATES_COMPOSE_VOLUMES=1; then stops the
#   private engine when nothing else runs on it.
# The project is compose's default (this directory's name) unless COMPOSE_PROJECT_NAME is set,
# so the plain `docker compose` commands of deploy/README.md see the same stack.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
top=$PWD
state=$top/var/compose
engine_dir=${RATES_DOCKER_DIR:-/var/lib/rates-docker}
wait_s=${RATES_COMPOSE_WAIT_S:-180}
project=${COMPOSE_PROJECT_NAME:-$(basename "$top" | LC_ALL=C tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-')}
sample_mark="rates sample: synthetic data made by rates-gen, not the dump" # as scripts/up.sh
export DEBIAN_FRONTEND=noninteractive

say() { echo "rates-compose: $*"; }
die() {
    echo "rates-compose: $*" >&2
    exit 1
}

# setting KEY DEFAULT: compose's precedence: the environment, then .env, then DEFAULT.
setting() {
    eval "v=\${$1:-}"
    if [ -z "$v" ] && [ -f .env ]; then
        v=$(sed -n "s/^$1=//p" .env | tail -1)
    fi
    echo "${v:-$2}"
}

# Debian's client (it has BuildKit and matches docker.io's engine) before any other on PATH.
docker_bin() {
    if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker || echo docker; fi
}
engine_answers() { "$(docker_bin)" info >/dev/null 2>&1; }
compose_cmd() {
    if "$(docker_bin)" compose version >/dev/null 2>&1; then
        echo "$(docker_bin) compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        echo docker-compose
    else
        return 1
    fi
}

ensure_packages() {
    pkgs=""
    { [ -x /usr/sbin/dockerd ] || command -v dockerd >/dev/null 2>&1 || engine_answers; } || pkgs="docker.io"
    { [ -x /usr/bin/docker ] || command -v docker >/dev/null 2>&1; } || pkgs="docker.io"
    compose_cmd >/dev/null || pkgs="$pkgs docker-compose"
    [ -z "$pkgs" ] && return 0
    say "installing Debian packages:$pkgs"
    log=${TMPDIR:-/tmp}/rates-compose-apt.log
    as_root apt-get update -qq >"$log" 2>&1 || true
    # shellcheck disable=SC2086 # a list of package names
    as_root apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $pkgs >>"$log" 2>&1 ||
        { tail -20 "$log" >&2; die "apt-get install$pkgs failed ($log)"; }
}

# Sets DOCKER_HOST when the engine is not the default one; `private` tells whether it is ours.
private=""
ensure_engine() {
    engine_answers && return 0
    [ -z "${DOCKER_HOST:-}" ] || die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
    if [ -d /run/systemd/system ]; then
        say "starting docker.service"
        as_root systemctl start docker && engine_answers && return 0
    fi
    if [ -S /var/run/docker.sock ] && [ "$(id -u)" != 0 ]; then
        die "the Docker engine at /var/run/docker.sock refuses $(id -un): run as root, or join the docker group (sudo usermod -aG docker $(id -un), then log in again)"
    fi
    DOCKER_HOST=unix://$engine_dir/docker.sock
    export DOCKER_HOST
    private=1
    engine_answers && return 0
    [ "$(id -u)" = 0 ] || die "no Docker engine runs and a private one needs root: run as root, or start one"
    say "no Docker engine runs: starting a private one in $engine_dir (deploy/ci/dockerd.sh)"
    RATES_DOCKERD_BRIDGE=${RATES_DOCKERD_BRIDGE:-ratesup0} \
        RATES_DOCKERD_BRIDGE_ADDR=${RATES_DOCKERD_BRIDGE_ADDR:-10.233.0.1/24} \
        RATES_DOCKERD_POOL=${RATES_DOCKERD_POOL:-10.234.0.0/16} RATES_DOCKERD_IPTABLES=false \
        sh deploy/ci/dockerd.sh start "$engine_dir" || die "the private Docker engine did not start"
}

have_image() { "$(docker_bin)" image inspect "$1" >/dev/null 2>&1; }
# image_or_standin IMAGE STANDIN: IMAGE when present or pullable, else STANDIN when present; else
# fails. A stand-in made on an earlier run wins over a new pull attempt (no registry, no wait).
image_or_standin() {
    if have_image "$1"; then echo "$1"; elif have_image "$2"; then echo "$2"; elif "$(docker_bin)" pull -q "$1" >/dev/null 2>&1; then echo "$1"; else return 1; fi
}
# Debian root filesystems, as CI makes them (deploy/ci/rootfs.sh, cached in /var/cache/rates-ci).
rootfs_image() { # NAME SUITE INCLUDE TAG
    command -v debootstrap >/dev/null 2>&1 ||
        as_root apt-get install -y -q -o DPkg::Lock::Timeout=300 debootstrap >/dev/null 2>&1 || die "apt-get install debootstrap failed"
    tar=$(as_root sh deploy/ci/rootfs.sh "$1" "$2" "$3") || die "debootstrap $2 failed"
    "$(docker_bin)" import "$tar" "$4" >/dev/null
}

ensure_base_images() {
    base_arg=""
    if ! image_or_standin debian:bookworm-slim rates-ci/bookworm-minbase >/dev/null; then
        say "no registry answers: the build base is Debian bookworm from debootstrap (a few minutes, once)"
        rootfs_image bookworm-minbase bookworm "" rates-ci/bookworm-minbase
    fi
    have_image debian:bookworm-slim || base_arg="--build-arg BASE_IMAGE=rates-ci/bookworm-minbase"
    db_image=$(setting RATES_DB_IMAGE postgres:13.5)
    if [ "$db_image" = postgres:13.5 ]; then
        if ! db_image=$(image_or_standin postgres:13.5 rates-ci/postgres:13); then
            say "no registry answers: postgres:13.5 is replaced by Debian 11's PostgreSQL 13 (deploy/ci/postgres13)"
            rootfs_image bullseye-pg13 bullseye postgresql-13,postgresql-client-13 rates-ci/bullseye-pg13
            "$(docker_bin)" build -q -t rates-ci/postgres:13 deploy/ci/postgres13 >/dev/null || die "building rates-ci/postgres:13 failed"
            db_image=rates-ci/postgres:13
        fi
    else
        image_or_standin "$db_image" "$db_image" >/dev/null || die "RATES_DB_IMAGE=$db_image: not present and not pullable"
    fi
    [ "$db_image" = postgres:13.5 ] || say "NOTE: the database runs $db_image (PostgreSQL 13 from Debian) in place of postgres:13.5"
    RATES_DB_IMAGE=$db_image
    export RATES_DB_IMAGE
}

# build TARGET TAG: one stage of the Dockerfile, the output in var/compose/build.log.
build() {
    # shellcheck disable=SC2086 # base_arg: empty or two words
    DOCKER_BUILDKIT=1 "$(docker_bin)" build --network host --target "$1" $base_arg \
        --build-arg VERSION="$version" --build-arg COMMIT="$commit" -t "$2" . >>"$state/build.log" 2>&1 ||
        { tail -30 "$state/build.log" >&2; die "docker build --target $1 failed (var/compose/build.log)"; }
}

# The dump to mount, or the synthetic sample; sets data (dump|sample) and RATES_DUMP_DIR/_FILE.
choose_data() {
    if [ -n "${RATES_DUMP:-}" ]; then
        [ -f "$RATES_DUMP" ] || die "RATES_DUMP=$RATES_DUMP: no such file"
        dump=$RATES_DUMP
    else
        dump=$(setting RATES_DUMP_DIR ./db)/$(setting RATES_DUMP_FILE rates.sql)
    fi
    if [ -f "$dump" ]; then
        data=dump
        dump=$(realpath "$dump")
        RATES_DUMP_DIR=$(dirname "$dump")
        RATES_DUMP_FILE=$(basename "$dump")
    else
        data=sample
        if [ ! -s "$state/sample/rates.sql" ]; then
            say "no dump at $dump (set RATES_DUMP): making the SYNTHETIC SAMPLE (rates-gen --seed 1)"
            build build "$image-build:$tag"
            mkdir -p "$state/sample"
            chmod 755 "$state" "$state/sample"
            { "$(docker_bin)" run --rm --network none "$image-build:$tag" /out/rates-gen --schema --seed 1 &&
                echo "COMMENT ON TABLE public.prices IS '$sample_mark';"; } >"$state/sample/rates.sql.tmp" ||
                die "rates-gen failed"
            chmod 644 "$state/sample/rates.sql.tmp"
            mv "$state/sample/rates.sql.tmp" "$state/sample/rates.sql"
        fi
        RATES_DUMP_DIR=$state/sample
        RATES_DUMP_FILE=rates.sql
    fi
    export RATES_DUMP_DIR RATES_DUMP_FILE
}

# Given a dump, a data volume that holds the sample is deleted (as `make up` drops its database).
# Only asked of the database after a run that mounted the sample (the mark file).
replace_sample() {
    sample_run=$state/sample-mounted.$project
    if [ "$data" = sample ]; then
        : >"$sample_run"
        return 0
    fi
    [ -f "$sample_run" ] || return 0
    "$(docker_bin)" volume inspect "${project}_pgdata" >/dev/null 2>&1 || return 0
    $dc up -d --no-build db >/dev/null 2>&1 || die "the db service did not start"
    i=0
    until [ "$("$(docker_bin)" inspect -f '{{.State.Health.Status}}' "$($dc ps -q db)" 2>/dev/null)" = healthy ]; do
        i=$((i + 1))
        [ "$i" -lt 90 ] || die "the db service is not healthy after 90 s ($dc logs db)"
        sleep 1
    done
    # shellcheck disable=SC2016 # expanded inside the container
    mark=$($dc exec -T db sh -c 'psql -X -At -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "$1"' sh \
        "SELECT coalesce(obj_description(to_regclass('public.prices'), 'pg_class'), '')")
    rm -f "$sample_run"
    [ "$mark" = "$sample_mark" ] || return 0
    say "replacing the synthetic sample with the dump $dump (deleting volume ${project}_pgdata)"
    $dc down >/dev/null 2>&1
    "$(docker_bin)" volume rm "${project}_pgdata" >/dev/null
}

port_free() {
    /usr/bin/python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))' "$1" "$2" 2>/dev/null
}
http_get() { # URL: the body on stdout; fails unless 200
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 5 "$1" 2>/dev/null
    else
        /usr/bin/python3 -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1" 2>/dev/null
    fi
}

cmd_up() {
    t0=$(date +%s)
    ensure_packages
    ensure_engine
    dc="$(compose_cmd) -p $project"
    mkdir -p "$state"
    : >"$state/build.log"
    if [ ! -f .env ]; then
        cp .env.example .env
        say "made .env from .env.example (edit it: port, dump, tuning)"
    fi
    secrets=$(setting RATES_SECRETS_DIR ./.secrets)
    for f in postgres_password rates_app_password ingest_tokens grafana_admin_password owner_database_url api_database_url \
        ha_superuser_password ha_replication_password ha_rest_password ha_owner_database_url ha_api_database_url ha_api_read_database_url \
        rates_monitor_password rates_monitor_verifier; do
        if [ ! -s "$secrets/$f" ]; then
            as_root env RATES_SECRETS_DIR="$secrets" sh deploy/compose/secrets.sh "$secrets" | sed 's/^/rates-compose: /'
            break
        fi
    done
    version=${RATES_VERSION:-$(cat VERSION 2>/dev/null || echo 0.0.0)}
    commit=${RATES_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
    image=$(setting RATES_IMAGE rates)
    tag=$(setting RATES_TAG latest)
    ensure_base_images
    say "building $image:$tag and $image-init:$tag (docker build; output in var/compose/build.log)"
    build runtime "$image:$tag"
    build init "$image-init:$tag"
    choose_data
    bind=$(setting RATES_BIND 127.0.0.1)
    port=$(setting RATES_PORT 3000)
    host=$bind
    [ "$bind" = 0.0.0.0 ] && host=127.0.0.1
    if [ -z "$($dc ps -q api 2>/dev/null)" ] && ! port_free "$bind" "$port"; then
        die "$bind:$port is taken (make up?): choose another port, e.g. RATES_PORT=3005 make compose-up"
    fi
    replace_sample
    say "starting compose project $project (db, init, api) on $host:$port"
    $dc up -d --no-build >"$state/up.log" 2>&1 || { cat "$state/up.log" >&2; $dc logs --tail 30 >&2; die "$dc up failed"; }
    i=0
    until ready=$(http_get "http://$host:$port/readyz"); do
        i=$((i + 1))
        st=$("$(docker_bin)" inspect -f '{{.State.Status}}' "$($dc ps -q api)" 2>/dev/null || echo missing)
        if [ "$i" -ge "$wait_s" ] || [ "$st" = exited ] || [ "$st" = missing ]; then
            $dc ps >&2
            $dc logs --tail 30 init api >&2
            die "/readyz did not answer 200 within ${i}s (api: $st)"
        fi
        sleep 1
    done
    q="date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL"
    [ "$data" = sample ] && q="date_from=2021-01-01&date_to=2021-01-31&orig_code=CN000&dest_code=EE003"
    engine=""
    [ -n "$private" ] && engine="DOCKER_HOST=$DOCKER_HOST "
    say "ready in $(($(date +%s) - t0))s: /readyz $ready"
    if [ "$data" = sample ]; then
        say "SYNTHETIC SAMPLE DATA: no dump was given (RATES_DUMP=/path/to/rates.sql make compose-up replaces it)"
    else
        say "data: the dump $dump (loaded once into the volume ${project}_pgdata)"
    fi
    say "logs: ${engine}$dc logs -f api; stop: make compose-down (keeps the data; VOLUMES=1 deletes it)"
    echo "rates-compose: up: http://$host:$port/"
    echo "curl 'http://$host:$port/rates?$q'"
}

cmd_down() {
    if ! engine_answers; then
        [ -z "${DOCKER_HOST:-}" ] || die "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST"
        DOCKER_HOST=unix://$engine_dir/docker.sock
        export DOCKER_HOST
        engine_answers || { say "no Docker engine runs: nothing to stop"; return 0; }
        private=1
    fi
    dc="$(compose_cmd) -p $project" || die "no docker compose"
    if [ "${RATES_COMPOSE_VOLUMES:-}" = 1 ]; then
        say "stopping compose project $project and deleting its volumes"
        $dc down -v
    else
        say "stopping compose project $project (volumes kept; VOLUMES=1 deletes them)"
        $dc down
    fi
    if [ -n "$private" ] && [ -z "$("$(docker_bin)" ps -q)" ]; then
        say "stopping the private Docker engine in $engine_dir (images and volumes kept)"
        sh deploy/ci/dockerd.sh stop "$engine_dir"
    fi
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
*) die "usage: compose-up.sh up|down" ;;
esac
