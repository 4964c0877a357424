#!/bin/sh
# tests/stages/deploy.sh: checks every deployment artifact for real, each as one JUnit testcase
# in $RATES_TEST_RESULTS/deploy.xml. A check is SKIPPED (with the reason) only when this machine
# cannot run it (no package, no engine); any failure of our own artifacts is a FAILURE.
# Gate: RATES_DEPLOY_CHECKS=0 turns the stage off. Parts: RATES_DEPLOY_PARTS (default
# "static deb k8s ansible terraform container podman"). Runs as root (dockerd, podman).
# See deploy/README.md ("What CI proves").
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # free_port
out=${RATES_TEST_RESULTS:-$root/build/test-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ "${RATES_DEPLOY_CHECKS:-1}" = 0 ]; then
    echo "deploy: RATES_DEPLOY_CHECKS=0: deployment checks skipped"
    exit 0
fi
parts=${RATES_DEPLOY_PARTS:-static deb k8s ansible terraform container podman}
work=$(mktemp -d /tmp/rdci.XXXXXX)
cases=$work/cases.tsv
: >"$cases"
stage_t0=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
PYTHON=/usr/bin/python3
DOCKER=/usr/bin/docker
COMPOSE=/usr/bin/docker-compose
VERSION=$(cat VERSION 2>/dev/null || echo 0.0.0)
COMMIT=$(make -s --no-print-directory print-commit 2>/dev/null || echo unknown) # the COMMIT file in a tarball
export VERSION COMMIT

has_part() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
now() { date +%s; }

# run_case NAME FUNCTION: runs it with its output in $work/logs/NAME.log; 0 passes,
# 77 skips (reason: first line of $work/skip), anything else fails (message: log tail).
run_case() {
    _c_name=$1
    shift
    mkdir -p "$work/logs"
    _c_log=$work/logs/$_c_name.log
    rm -f "$work/skip"
    _c_t0=$(now)
    "$@" >"$_c_log" 2>&1
    _c_rc=$?
    _c_dt=$(($(now) - _c_t0))
    if [ "$_c_rc" = 0 ]; then
        printf '%s\tpass\t%s\t\n' "$_c_name" "$_c_dt" >>"$cases"
        echo "  ok    $_c_name (${_c_dt}s)"
    elif [ "$_c_rc" = 77 ]; then
        _c_reason=$(head -1 "$work/skip" 2>/dev/null || echo "not possible on this machine")
        printf '%s\tskip\t%s\t%s\n' "$_c_name" "$_c_dt" "$_c_reason" >>"$cases"
        echo "  skip  $_c_name: $_c_reason"
    else
        printf '%s\tfail\t%s\t%s\n' "$_c_name" "$_c_dt" "$_c_log" >>"$cases"
        echo "  FAIL  $_c_name (${_c_dt}s); last lines:"
        tail -25 "$_c_log" | sed 's/^/        /'
    fi
    return 0
}
skip() {
    echo "$*" >"$work/skip"
    echo "SKIP: $*"
    return 77
}
# need TOOL...: skips the case when a tool is missing (the install step could not get it).
need() {
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { skip "$t is not installed (apt-get could not install it)"; return 77; }
    done
}

write_junit() {
    "$PYTHON" - "$cases" "$out/deploy.xml" "$work/logs" <<'EOF'
import os, re, sys
from xml.sax.saxutils import escape as _escape, quoteattr as _quoteattr
# XML 1.0 has no place for control characters (ANSI colours in tool output): drop them.
_bad = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
def escape(t):
    return _escape(_bad.sub("", t))
def quoteattr(t):
    return _quoteattr(_bad.sub("", t))
cases_path, out_path, logs = sys.argv[1:4]
rows = [l.rstrip("\n").split("\t", 3) for l in open(cases_path) if l.strip()]
fails = sum(1 for r in rows if r[1] == "fail")
skips = sum(1 for r in rows if r[1] == "skip")
with open(out_path, "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    f.write(f'<testsuite name="deploy" tests="{len(rows)}" failures="{fails}" skipped="{skips}">\n')
    for name, status, dt, msg in rows:
        f.write(f'  <testcase classname="deploy" name={quoteattr(name)} time="{dt}">')
        if status == "skip":
            f.write(f"<skipped message={quoteattr(msg)}/>")
        elif status == "fail":
            try:
                text = open(msg, errors="replace").read()[-8000:]
            except OSError:
                text = msg
            f.write(f'<failure message="failed">{escape(text)}</failure>')
        else:
            try:
                text = open(os.path.join(logs, name + ".log"), errors="replace").read()[-2000:]
            except OSError:
                text = ""
            f.write(f"<system-out>{escape(text)}</system-out>")
        f.write("</testcase>\n")
    f.write("</testsuite>\n")
EOF
}

# ---------------------------------------------------------------- install what the checks need
install_tools() {
    missing=""
    # shellcheck disable=SC2013 # one package name a line, comments stripped
    for p in $(sed 's/#.*//' deploy/ci/packages.txt); do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "installing:$missing"
    apt-get update -qq || true
    # shellcheck disable=SC2086
    apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $missing
}

# ---------------------------------------------------------------- static checks
c_shellcheck() {
    need shellcheck || return 77
    files=$(find deploy -name '*.sh' -type f; echo tests/stages/deploy.sh debian/rates.postinst debian/rates.postrm)
    # shellcheck disable=SC2086
    shellcheck -x $files
}
c_yamllint() {
    need yamllint || return 77
    yamllint -s -c deploy/ci/yamllint.yml compose.yaml deploy/
}
c_promtool_config() {
    need promtool || return 77
    promtool check config deploy/monitoring/prometheus.yml &&
        promtool check rules deploy/monitoring/alerts.yml
}
c_promtool_test() {
    need promtool || return 77
    promtool test rules deploy/monitoring/tests/alerts.test.yml
}
c_dashboard_promql() {
    need promtool || return 77
    "$PYTHON" deploy/monitoring/check_promql.py deploy/monitoring/grafana/dashboards/rates.json \
        deploy/monitoring/alerts.yml src/metrics.c "$work/dashboard-rules.yml"
}
c_alertmanager_config() {
    need amtool || return 77
    amtool check-config deploy/monitoring/alertmanager.yml
}
c_systemd_verify() {
    need systemd-analyze || return 77
    "$PYTHON" deploy/ci/systemd_verify.py "$root/build-deploy/ratesd" deploy/systemd
}
c_compose_config() {
    need docker-compose || return 77
    # The secret files as `make compose-secrets` makes them (0700 dir, 0600 files).
    RATES_ENV_FILE=.env.example sh deploy/compose/secrets.sh "$work/cfg-secrets" || return 1
    { grep -v '^RATES_SECRETS_DIR=' .env.example; echo "RATES_SECRETS_DIR=$work/cfg-secrets"; } >"$work/env"
    for prof in "" "--profile dev" "--profile monitoring" "--profile ha"; do
        # shellcheck disable=SC2086
        $COMPOSE -f compose.yaml --env-file "$work/env" $prof config >"$work/compose-config.yaml" || return 1
        # No secret in any environment, every _FILE on a listed secret, no dangling mount.
        "$PYTHON" deploy/ci/check_compose.py "$work/compose-config.yaml" || return 1
    done
    if grep -E '^(POSTGRES_PASSWORD|RATES_APP_PASSWORD|RATES_INGEST_TOKENS|GRAFANA_ADMIN_PASSWORD)=' .env.example; then
        echo ".env.example still carries a secret"
        return 1
    fi
    # Without the secret files the check refuses (they are required).
    { grep -v '^RATES_SECRETS_DIR=' .env.example; echo "RATES_SECRETS_DIR=$work/no-secrets"; } >"$work/env-nosec"
    $COMPOSE -f compose.yaml --env-file "$work/env-nosec" config >"$work/compose-nosec.yaml" || return 1
    if "$PYTHON" deploy/ci/check_compose.py "$work/compose-nosec.yaml" >/dev/null; then
        echo "check_compose.py accepted missing secret files"
        return 1
    fi
}

# ---------------------------------------------------------------- .deb
c_deb_build() {
    make -s BUILD=build-deploy deb DEB_OUT="$work/deb" || return 1
    deb=$(ls "$work"/deb/rates_*.deb)
    dpkg-deb -I "$deb" && dpkg-deb -c "$deb" || return 1
    if make -s -n BUILD=build-deploy build-deploy/rates-load >/dev/null 2>&1 &&
        ! dpkg-deb -c "$deb" | grep ' \./usr/bin/rates-load$' >/dev/null; then
        echo "the tree builds rates-load but the package lacks it"
        return 1
    fi
    "$PYTHON" deploy/ci/check_deb.py "$deb"
}
c_deb_lintian() { # every finding fails (overrides, if any, live in debian/ with their reason)
    need lintian || return 77
    deb=$(ls "$work"/deb/rates_*.deb 2>/dev/null) || { echo "no .deb was built"; return 1; }
    lintian --fail-on error,warning --pedantic --info "$deb"
}
c_deb_install_purge() {
    need podman debootstrap || return 77
    [ -s "$work/deb/rates_${VERSION}_amd64.deb" ] || { echo "no .deb was built"; return 1; }
    sh deploy/debian/install_purge.sh "$work/podman-deb" "$work/deb/rates_${VERSION}_amd64.deb"
    rc=$?
    reason=$(tail -1 "$work/podman-deb/skip" 2>/dev/null)
    sh deploy/debian/install_purge.sh --cleanup "$work/podman-deb" >/dev/null 2>&1
    [ "$rc" = 77 ] && { skip "$reason"; return 77; }
    return $rc
}

# ---------------------------------------------------------------- kubernetes
c_k8s_render() {
    [ -x /usr/bin/kubectl ] || { skip "/usr/bin/kubectl (1.32) is absent; Debian's kubectl 1.20 cannot build these kustomizations"; return 77; }
    mkdir -p "$work/k8s"
    # dev's Secrets are files its make-secrets.sh generates (git-ignored): rendered from a copy
    # with fresh ones, as a clone has none and the tree's own stay untouched.
    rm -rf "$work/k8s-src"
    cp -R deploy/k8s "$work/k8s-src" && rm -rf "$work/k8s-src/overlays/dev/secrets" || return 1
    sh "$work/k8s-src/overlays/dev/make-secrets.sh" || return 1
    for o in dev staging prod; do
        /usr/bin/kubectl kustomize "$work/k8s-src/overlays/$o" >"$work/k8s/$o.yaml" || return 1
        echo "$o: $(grep -c '^kind:' "$work/k8s/$o.yaml") objects"
    done
}
c_k8s_schema() {
    [ -s "$work/k8s/prod.yaml" ] || { echo "no rendered overlays"; return 1; }
    need node npm || return 77
    sh deploy/ci/k8s-schema.sh "$work/k8s/dev.yaml" "$work/k8s/staging.yaml" "$work/k8s/prod.yaml"
    rc=$?
    [ "$rc" = 77 ] && { skip "the npm package kubernetes-models could not be installed"; return 77; }
    return $rc
}
c_k8s_rules() {
    [ -s "$work/k8s/prod.yaml" ] || { echo "no rendered overlays"; return 1; }
    "$PYTHON" deploy/ci/check_k8s.py "$work/k8s"
}

# ---------------------------------------------------------------- ansible
c_ansible_syntax() {
    need ansible-playbook || return 77
    (cd deploy/ansible && ANSIBLE_CONFIG=ansible.cfg ansible-playbook -i inventory/example.yml --syntax-check site.yml)
}
# ansible_refuses INVENTORY WHAT TEXT: the role's first task must refuse INVENTORY (check mode,
# local connection: it fails before touching anything), saying TEXT.
ansible_refuses() {
    if (cd deploy/ansible && ANSIBLE_CONFIG=ansible.cfg ANSIBLE_LOCAL_TEMP="$work" timeout 300 \
        ansible-playbook -i "$1" --check site.yml >"$1.log" 2>&1); then
        echo "the playbook accepted $2"
        return 1
    fi
    grep -qF "$3" "$1.log" || { tail -20 "$1.log"; return 1; }
}
c_ansible_db_per_host() {
    need ansible-playbook || return 77
    # Two app hosts that would each install their own PostgreSQL.
    cat >"$work/inv-two-dbs.yml" <<EOI
all:
  children:
    rates:
      hosts:
        app-a: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
        app-b: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
      vars: {rates_deb: /nonexistent.deb, rates_install_postgresql: true, rates_db_password: x,
             rates_app_db_password: y}
EOI
    ansible_refuses "$work/inv-two-dbs.yml" "a database on each of two app hosts" \
        "one-host inventory only" || return 1
    # The service pointed at the owner role (it must serve as rates_app).
    cat >"$work/inv-owner.yml" <<EOI
all:
  children:
    rates:
      hosts:
        app-a: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
      vars: {rates_deb: /nonexistent.deb, rates_app_db_password: y,
             rates_owner_database_url: "postgresql://rates:x@127.0.0.1:5000/rates",
             rates_database_url: "postgresql://rates:x@127.0.0.1:5000/rates"}
EOI
    ansible_refuses "$work/inv-owner.yml" "a service connecting as the owner role" \
        "urlsplit('username')) == 'rates_app'" || return 1
    # A database whose CA is known, reached without verify-full (as for the cluster it deploys).
    cat >"$work/inv-notls.yml" <<EOI
all:
  children:
    rates:
      hosts:
        app-a: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
      vars: {rates_deb: /nonexistent.deb, rates_app_db_password: y, rates_db_ca_file: /etc/hostname,
             rates_owner_database_url: "postgresql://rates:x@127.0.0.1:5000/rates?sslmode=verify-full",
             rates_database_url: "postgresql://rates_app:x@127.0.0.1:5000/rates?sslmode=require"}
EOI
    ansible_refuses "$work/inv-notls.yml" "a database session without verify-full" \
        "reject('search', 'sslmode=verify-full')" || return 1
    for inv in example dev-example ha-example; do
        (cd deploy/ansible && ANSIBLE_CONFIG=ansible.cfg ansible-playbook -i "inventory/$inv.yml" --syntax-check site.yml) >/dev/null || return 1
    done
}
c_ansible_lint() {
    need ansible-lint || return 77
    (cd deploy/ansible && HOME=$work ANSIBLE_CONFIG=ansible.cfg ansible-lint --offline -p site.yml roles/)
}

# ---------------------------------------------------------------- terraform and cloud-init
c_terraform_fmt() {
    need terraform || return 77
    TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff deploy/terraform
}
c_terraform_inventory() {
    need terraform || return 77
    "$PYTHON" deploy/ci/tf_inventory.py
}
c_cloud_init_schema() {
    need cloud-init || return 77
    for f in deploy/terraform/modules/*/templates/*.tpl; do
        "$PYTHON" deploy/ci/render_tpl.py "$f" >"$work/$(basename "$f" .yaml.tpl).yaml" || return 1
        cloud-init schema --config-file "$work/$(basename "$f" .yaml.tpl).yaml" || return 1
    done
}

# ---------------------------------------------------------------- containers (dockerd)
base_tar() { # NAME SUITE INCLUDE: debootstrap minbase rootfs tarball, cached across runs
    sh deploy/ci/rootfs.sh "$1" "$2" "$3" >/dev/null
}
dockerd_up=""
c_dockerd_start() {
    need dockerd docker-compose debootstrap || return 77
    sh deploy/ci/dockerd.sh start "$work/docker" || { skip "dockerd cannot start on this machine: $(tail -3 "$work/docker/dockerd.log" | tr '\n' ' ')"; return 77; }
    dockerd_up=1
}
export DOCKER_HOST="unix://$work/docker/sock-not-started"
c_base_images() {
    base_tar bookworm-minbase bookworm "" || return 1
    base_tar bullseye-pg13 bullseye postgresql-13,postgresql-client-13 || return 1
    $DOCKER import /var/cache/rates-ci/bookworm-minbase.tar debian:bookworm-slim &&
        $DOCKER import /var/cache/rates-ci/bullseye-pg13.tar rates-ci/bullseye-pg13 &&
        $DOCKER build -q -t rates-ci/postgres:13 deploy/ci/postgres13 &&
        $DOCKER run --rm rates-ci/postgres:13 postgres --version
    echo "NOTE: PostgreSQL 13.16 (Debian 11) stands in for postgres:13.5, which no registry here can serve."
}
c_image_build() {
    # --network host: the build's apt-get reaches the Debian mirror without the bridge's NAT.
    # BuildKit (built into docker.io 20.10) builds only the stages a target needs.
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    DOCKER_BUILDKIT=1 make -s image DOCKER="$DOCKER" DOCKER_BUILD_FLAGS="--network host --progress plain" \
        IMAGE=rates IMAGE_CREATED="$created" || return 1
    DOCKER_BUILDKIT=1 $DOCKER build --progress plain --network host --target init --build-arg VERSION="$VERSION" \
        --build-arg COMMIT="$COMMIT" -t "rates-init:$COMMIT" . || return 1
    $DOCKER tag "rates:$COMMIT" rates:ci && $DOCKER tag "rates-init:$COMMIT" rates-init:ci
    $DOCKER images
}
c_image_props() {
    "$PYTHON" deploy/ci/check_image.py "$DOCKER" "rates:$COMMIT" "$VERSION" "$COMMIT" "$out/deploy-image-size.txt"
}
api_port=""
compose() { $COMPOSE -p rdci -f compose.yaml -f deploy/ci/compose.ci.yaml --env-file "$work/ci.env" "$@"; }
c_compose_up() {
    dump_dir=""
    if [ -n "${RATES_DUMP:-}" ] && [ -f "$RATES_DUMP" ]; then
        dump_dir=$(dirname "$RATES_DUMP")
        dump_file=$(basename "$RATES_DUMP")
    fi
    api_port=$(free_port)
    {
        echo "RATES_SECRETS_DIR=$work/secrets"
        echo "RATES_TAG=ci"
        echo "RATES_PORT=$api_port"
        echo "RATES_DEV_PORT=$(free_port)"
        echo "RATES_DRAIN_DELAY_S=1"
        echo "CI_DB_PORT=$(free_port)"
        echo "RATES_VERSION=$VERSION"
        echo "RATES_COMMIT=$COMMIT"
        if [ -n "$dump_dir" ]; then
            echo "RATES_DUMP_DIR=$dump_dir"
            echo "RATES_DUMP_FILE=$dump_file"
        else
            echo "RATES_DUMP_DIR=$work/nodump"
        fi
    } >"$work/ci.overrides"
    # .env.example with the CI values replacing its own (one line per key).
    "$PYTHON" -c 'import sys
o = [l for l in open(sys.argv[2]) if "=" in l]
keys = {l.split("=", 1)[0] for l in o}
sys.stdout.write("".join(l for l in open(sys.argv[1]) if l.split("=", 1)[0] not in keys) + "".join(o))' \
        .env.example "$work/ci.overrides" >"$work/ci.env"
    # The secret files (compose `secrets:`), as `make compose-secrets` makes them; CI's token name.
    RATES_ENV_FILE="$work/ci.env" RATES_INGEST_TOKENS="ci:ci-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
        sh deploy/compose/secrets.sh "$work/secrets" || return 1
    mkdir -p "$work/nodump"
    echo "NOTE: db runs rates-ci/postgres:13 (PostgreSQL 13.16) standing in for postgres:13.5."
    compose up -d --no-build || { compose logs --tail 50; return 1; }
    "$PYTHON" deploy/ci/wait_healthy.py "$DOCKER" rdci_api_1 180 || { compose ps; compose logs --tail 50; return 1; }
    compose ps
    [ "$($DOCKER inspect -f '{{.State.ExitCode}}' rdci_init_1)" = 0 ] || return 1
    # The passwords reached the containers as files only: none in any container's environment.
    for c in rdci_db_1 rdci_init_1 rdci_api_1; do
        envs=$($DOCKER inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c") || return 1
        if printf '%s\n' "$envs" | grep -E '^[A-Z_]*(PASSWORD|TOKENS|DATABASE_URL)=|://[^/@]*:[^/@]+@'; then
            echo "$c: a secret in the environment"
            return 1
        fi
        echo "$c: _FILE forms: $(printf '%s\n' "$envs" | grep -o '^[A-Z_]*_FILE' | tr '\n' ' ')"
    done
}
c_compose_rates() {
    [ -n "$api_port" ] || return 1
    "$PYTHON" deploy/ci/http_checks.py rates "$api_port" "${RATES_DUMP:-}"
}
c_compose_init_once() {
    [ -n "$api_port" ] || return 1
    # shellcheck disable=SC2016 # expanded inside the container
    before=$($DOCKER exec rdci_db_1 sh -c 'psql -X -At -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT count(*) FROM prices"')
    compose up --no-build --force-recreate --no-deps init || return 1
    compose logs init | tail -5
    compose logs init | grep -q "dump not loaded again" || { echo "init did not notice the loaded database"; return 1; }
    # shellcheck disable=SC2016 # expanded inside the container
    after=$($DOCKER exec rdci_db_1 sh -c 'psql -X -At -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT count(*) FROM prices"')
    echo "prices rows before $before, after a second init $after"
    [ "$before" = "$after" ]
}
c_compose_stop_during_upload() {
    [ -n "$api_port" ] || return 1
    token=$(sed -n 's/^ci://p' "$work/secrets/ingest_tokens")
    "$PYTHON" deploy/ci/upload_during_stop.py "$api_port" "$token" "$DOCKER" rdci_api_1 rdci_db_1
    rc=$?
    if [ "$rc" = 77 ]; then skip "POST /batches answers 404: the ingest endpoint has not landed yet"; return 77; fi
    [ "$rc" = 0 ] || return 1
    compose up -d --no-build api && "$PYTHON" deploy/ci/wait_healthy.py "$DOCKER" rdci_api_1 60
}
c_sigterm_pid1() {
    [ -n "$api_port" ] || return 1
    pid1=$($DOCKER exec rdci_api_1 cat /proc/1/comm)
    echo "PID 1 in the api container: $pid1"
    [ "$pid1" = ratesd ] || return 1
    t0=$(now)
    $DOCKER stop -t 60 rdci_api_1 >/dev/null || return 1
    dt=$(($(now) - t0))
    code=$($DOCKER inspect -f '{{.State.ExitCode}}' rdci_api_1)
    echo "docker stop took ${dt}s, exit code $code"
    $DOCKER logs --tail 5 rdci_api_1 2>&1
    compose up -d --no-build api >/dev/null && "$PYTHON" deploy/ci/wait_healthy.py "$DOCKER" rdci_api_1 60 || return 1
    [ "$code" = 0 ] && [ "$dt" -lt 30 ]
}
c_alert_database_down() {
    [ -n "$api_port" ] || return 1
    need prometheus prometheus-alertmanager prometheus-postgres-exporter || return 77
    sh deploy/ci/alert_drill.sh "$work/alert" "$api_port" "$work/ci.env"
}
c_compose_dev_profile() {
    [ -n "$api_port" ] || return 1
    DOCKER_BUILDKIT=1 $DOCKER build -q --network host --target dev -t rates-dev:ci . || return 1
    dev_port=$(sed -n 's/^RATES_DEV_PORT=//p' "$work/ci.env")
    "$PYTHON" deploy/ci/dev_reload.py "$work" "$dev_port"
}
c_compose_ha() {
    [ -n "$api_port" ] || return 1
    # The Debian 11 root filesystem of every HA use in CI (no registry: postgres:13.5 cannot be
    # pulled), shared with ha-deploy-check-pg13; the ha Dockerfiles then install nothing.
    tar=$(sh deploy/ci/rootfs_ha.sh bullseye) || return 1
    $DOCKER import "$tar" rates-ci/bullseye-ha >/dev/null || return 1
    ha_port=$(free_port)
    {
        echo "RATES_HA_PORT=$ha_port"
        echo "RATES_HA_STATS_PORT=$(free_port)"
    } >>"$work/ci.env"
    hacompose() { compose -f deploy/ci/compose-ha.ci.yaml --profile ha "$@"; }
    hacompose build ha-etcd ha-pg1 ha-haproxy || return 1
    $DOCKER run --rm --entrypoint sh "rates-ha-patroni:ci" -c 'postgres --version; patroni --version; haproxy -v | head -1; etcd --version | head -1'
    hacompose up -d --no-build ha-rates1 ha-rates2 || { hacompose ps; hacompose logs --tail 40; return 1; }
    for c in rdci_ha-rates1_1 rdci_ha-rates2_1; do
        "$PYTHON" deploy/ci/wait_healthy.py "$DOCKER" "$c" 240 || { hacompose ps; hacompose logs --tail 40; return 1; }
    done
    hacompose ps
    hacompose logs ha-init | tail -5
    token=$(sed -n 's/^ci://p' "$work/secrets/ingest_tokens")
    "$PYTHON" -m deploy.ci.ha_failover_drill "$DOCKER" /run/patroni/patroni.yml pg1=rdci_ha-pg1_1 pg2=rdci_ha-pg2_1 pg3=rdci_ha-pg3_1 -- "$ha_port" "$token" "$out/deploy-compose-ha.json" ||
        { hacompose ps; hacompose logs --tail 30 ha-pg1 ha-pg2 ha-pg3 ha-haproxy; return 1; }
    hacompose rm -fsv ha-rates1 ha-rates2 ha-init ha-haproxy ha-pg1 ha-pg2 ha-pg3 ha-etcd >/dev/null 2>&1
    return 0
}
# `make compose-up` as a user runs it: in a copy of the tree (what a clean clone holds, no .env,
# no secrets), its own project and free port, on this engine (DOCKER_HOST) with CI's stand-in
# database image; twice (the second run must reuse every container), /readyz and the printed
# /rates URL over 127.0.0.1, then `make compose-down` (volume kept) and VOLUMES=1 (deleted).
# Cold and warm times in $out/deploy-make-compose-up.txt.
c_make_compose_up() {
    tree=$work/cu-tree
    rm -rf "$tree" && mkdir -p "$tree" || return 1
    if git rev-parse --git-dir >/dev/null 2>&1; then
        git ls-files -co --exclude-standard -z | tar --null -T - -cf - 2>/dev/null | tar -C "$tree" -xf - || return 1
    else
        tar --exclude=./.git --exclude='./build*' --exclude=./var --exclude=./.env --exclude=./.secrets -cf - . | tar -C "$tree" -xf - || return 1
    fi
    cu_port=$(free_port)
    cu() { COMPOSE_PROJECT_NAME=rdci-cu RATES_PORT=$cu_port RATES_DB_IMAGE=rates-ci/postgres:13 RATES_TAG=cu make -s -C "$tree" "$@"; }
    cu_ids() { $DOCKER ps -q --no-trunc --filter label=com.docker.compose.project=rdci-cu | sort | tr '\n' ' '; }
    t0=$(now)
    cu compose-up >"$work/cu-cold.log" 2>&1
    rc=$?
    cold=$(($(now) - t0))
    cat "$work/cu-cold.log"
    [ "$rc" = 0 ] || return 1
    ids=$(cu_ids)
    url=$(sed -n "s/^curl '\(http:[^']*\)'$/\1/p" "$work/cu-cold.log" | tail -1)
    case $url in "http://127.0.0.1:$cu_port/rates?"*) ;; *) echo "no /rates URL on 127.0.0.1:$cu_port printed"; return 1 ;; esac
    t0=$(now)
    cu compose-up >"$work/cu-warm.log" 2>&1
    rc=$?
    warm=$(($(now) - t0))
    cat "$work/cu-warm.log"
    [ "$rc" = 0 ] || return 1
    [ "$(cu_ids)" = "$ids" ] || { echo "the second run replaced containers: $ids -> $(cu_ids)"; return 1; }
    "$PYTHON" - "$cu_port" "$url" <<'PYEOF' || return 1
import json, sys, urllib.request
port, url = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
    print("/readyz", r.status, r.read().decode()[:200])
with urllib.request.urlopen(url, timeout=10) as r:
    body = json.loads(r.read())
    print(url, r.status, json.dumps(body)[:160])
days = body["rates"]
assert len(days) == 31 and any(d["price"] is not None for d in days), body
PYEOF
    echo "make compose-up: cold ${cold}s, warm ${warm}s" | tee "$out/deploy-make-compose-up.txt"
    cu compose-down || return 1
    [ -z "$(cu_ids)" ] || { echo "containers left after compose-down"; return 1; }
    $DOCKER volume inspect rdci-cu_pgdata >/dev/null || { echo "compose-down deleted the data volume"; return 1; }
    cu compose-down VOLUMES=1 || return 1
    if $DOCKER volume inspect rdci-cu_pgdata >/dev/null 2>&1; then echo "VOLUMES=1 kept the data volume"; return 1; fi
    $DOCKER rmi rates:cu rates-init:cu rates-build:cu >/dev/null 2>&1
    return 0
}
c_container_cleanup() {
    [ -n "$dockerd_up" ] || { skip "dockerd was not started"; return 77; }
    compose --profile dev --profile ha down -v --remove-orphans >/dev/null 2>&1
    sh deploy/ci/dockerd.sh stop "$work/docker"
    rc=$?
    dockerd_up=""
    if ip link show ratesci0 >/dev/null 2>&1; then echo "bridge ratesci0 left behind"; return 1; fi
    return $rc
}

# ---------------------------------------------------------------- podman: the playbook, twice
c_ansible_podman() {
    need podman ansible-playbook debootstrap || return 77
    [ -s "$work/deb/rates_${VERSION}_amd64.deb" ] || { echo "no .deb was built"; return 1; }
    sh deploy/ci/ansible_podman.sh "$work/podman" "$work/deb/rates_${VERSION}_amd64.deb"
    rc=$?
    [ "$rc" = 77 ] && { skip "$(tail -1 "$work/podman/skip" 2>/dev/null)"; return 77; }
    return $rc
}

# The PostgreSQL 13 twin (Debian 11 database hosts) takes about 16 minutes, cold or warm (the
# playbook twice: 403 and 365 s). make test runs it when its inputs changed since it last passed
# (deploy/ci/ha_record.sh pg13: the committed record or this machine's stamp; RATES_HA_PG13=auto,
# the default); always with RATES_HA_PG13=1, never with 0. A pass is recorded, as by make
# ha-deploy-check-pg13: commit deploy/ci/ha-pg13.passed with the change that needed the run.
# The service itself is tested on PostgreSQL 13 by the pg13 stage on every run.
c_ha_deploy_check_pg13() {
    inputs=$(sh deploy/ci/ha_record.sh) || return 1
    case "${RATES_HA_PG13:-auto}" in
    0) skip "RATES_HA_PG13=0"; return 77 ;;
    auto) if where=$(sh deploy/ci/ha_record.sh pg13 passed); then
        skip "its inputs ($inputs) passed it $where; RATES_HA_PG13=1 or make ha-deploy-check-pg13 runs it"
        return 77
    fi ;;
    esac
    c_ha_deploy_check bullseye || return $?
    sh deploy/ci/ha_record.sh pg13 record "$inputs"
}

# ------------------------------------------- podman: the Ansible HA roles on four hosts
# The second playbook run (changed=0; about 6 minutes) only when the inputs changed since one
# last passed (RATES_HA_IDEMPOTENCE=auto, deploy/ci/ha_deploy_check.sh); the first run and the
# drill always.
c_ha_deploy_check() { # [SUITE of the database hosts: bookworm (default) | bullseye (PostgreSQL 13)]
    suite=${1:-bookworm}
    need podman ansible-playbook debootstrap || return 77
    [ -s "$work/deb/rates_${VERSION}_amd64.deb" ] || { echo "no .deb was built"; return 1; }
    RATES_HA_DB_SUITE=$suite sh deploy/ci/ha_deploy_check.sh "$work/podman-ha" "$work/deb/rates_${VERSION}_amd64.deb"
    rc=$?
    [ -f "$work/podman-ha/report.json" ] && cp "$work/podman-ha/report.json" "$out/deploy-ha-deploy-check-$suite.json"
    reason=$(tail -1 "$work/podman-ha/skip" 2>/dev/null)
    sh deploy/ci/ha_deploy_check.sh --cleanup "$work/podman-ha" >/dev/null 2>&1
    [ "$rc" = 77 ] && { skip "$reason"; return 77; }
    return $rc
}

cleanup() {
    if [ -n "$dockerd_up" ]; then
        compose --profile dev --profile ha down -v --remove-orphans >/dev/null 2>&1
        sh deploy/ci/dockerd.sh stop "$work/docker" >/dev/null 2>&1
    fi
    sh deploy/ci/ansible_podman.sh --cleanup "$work/podman" >/dev/null 2>&1
    sh deploy/ci/ha_deploy_check.sh --cleanup "$work/podman-ha" >/dev/null 2>&1
    [ -n "${RATES_DEPLOY_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "deploy: checks in $work (parts: $parts)"
run_case tools-install install_tools
make -s BUILD=build-deploy all >/dev/null 2>&1 || echo "deploy: make BUILD=build-deploy failed (checks that need the binary will fail)"
if has_part static; then
    run_case shellcheck c_shellcheck
    run_case yamllint c_yamllint
    run_case promtool-check-config-rules c_promtool_config
    run_case promtool-test-rules c_promtool_test
    run_case dashboard-promql c_dashboard_promql
    run_case alertmanager-config c_alertmanager_config
    run_case systemd-analyze-verify c_systemd_verify
    run_case compose-config c_compose_config
fi
has_part deb && run_case deb-build c_deb_build
has_part deb && run_case deb-lintian c_deb_lintian
has_part podman && has_part deb && run_case deb-install-purge c_deb_install_purge
if has_part k8s; then
    run_case k8s-kustomize-render c_k8s_render
    run_case k8s-schema-validate c_k8s_schema
    run_case k8s-rules c_k8s_rules
fi
if has_part ansible; then
    run_case ansible-syntax-check c_ansible_syntax
    run_case ansible-lint c_ansible_lint
    run_case ansible-no-db-per-app-host c_ansible_db_per_host
fi
if has_part terraform; then
    run_case terraform-fmt c_terraform_fmt
    run_case terraform-inventory c_terraform_inventory
    run_case cloud-init-schema c_cloud_init_schema
    printf '%s\tskip\t0\t%s\n' terraform-validate "terraform validate needs the AWS provider, which cannot be downloaded here" >>"$cases"
fi
if has_part container; then
    run_case dockerd-start c_dockerd_start
    if [ -n "$dockerd_up" ]; then
        export DOCKER_HOST="unix://$work/docker/docker.sock"
        run_case base-images c_base_images
        run_case image-build c_image_build
        run_case image-properties c_image_props
        run_case compose-up c_compose_up
        run_case compose-rates c_compose_rates
        run_case compose-init-once c_compose_init_once
        run_case compose-stop-during-upload c_compose_stop_during_upload
        run_case api-sigterm-pid1 c_sigterm_pid1
        run_case alert-database-down c_alert_database_down
        run_case compose-dev-profile c_compose_dev_profile
        run_case compose-ha-failover c_compose_ha
        run_case make-compose-up c_make_compose_up
        run_case container-cleanup c_container_cleanup
    fi
fi
has_part podman && has_part deb && run_case ansible-podman-twice c_ansible_podman
has_part podman && has_part deb && run_case ha-deploy-check c_ha_deploy_check bookworm
has_part podman && has_part deb && run_case ha-deploy-check-pg13 c_ha_deploy_check_pg13
write_junit
echo "deploy: stage took $(($(now) - stage_t0)) s; $(grep -c "	pass	" "$cases") passed, $(grep -c "	fail	" "$cases") failed, $(grep -c "	skip	" "$cases") skipped"
[ -f "$out/deploy-image-size.txt" ] && echo "deploy: $(cat "$out/deploy-image-size.txt")"
! grep -q "	fail	" "$cases"
