#!/bin/sh
# ha_deploy_check.sh DIR DEB | --cleanup DIR   (make ha-deploy-check)
# The Ansible HA roles for real: three database hosts (etcd, Patroni, pgBackRest) and one app
# host (HAProxy, ratesd) as systemd containers under podman, each with its own address on a
# network made here; deploy/ansible/site.yml runs twice (the second run must report
# changed=0 on every host; see RATES_HA_IDEMPOTENCE below); then, through ratesd and the deployed HAProxy, GET /rates, batches,
# `patronictl switchover` and `podman kill` of the leader's host under a writer retrying with
# its Idempotency-Key (deploy/ci/ha_failover_drill.py: both write gaps printed, exit 1 on a
# lost acknowledged batch); the killed host rejoins as a replica; a full backup through the
# pgbackrest role's unit lands in the encrypted repository (a volume the three hosts share).
# Also asserted: no secret on any host's command line during the play (sampled), and TLS for
# ratesd's sessions and replication (pg_stat_ssl) and for Patroni's REST API.
# RATES_HA_DB_SUITE picks the database hosts' Debian: bookworm (default: PostgreSQL 15, Patroni
# 3.0.2, etcd 3.4, pgBackRest 2.45) or bullseye (Debian 11: PostgreSQL 13, production's major,
# through the same role and its rates_pg_version; Patroni 2.0.2, etcd 3.3, pgBackRest 2.33).
# The app host is Debian 12 either way (the .deb is built there). Root filesystems cached in
# /var/cache/rates-ci with every package preinstalled, so the playbook needs no mirror. Podman
# settings: deploy/ci/podman_env.sh. Exit 77 (reason in DIR/skip) when podman cannot run here.
# RATES_HA_IDEMPOTENCE (Debian 12 database hosts only; the Debian 11 twin always runs twice):
# 1 (make ha-deploy-check's default) runs the second playbook run and, when it reports changed=0,
# records that for these inputs (deploy/ci/ha_record.sh idempotence: commit
# deploy/ci/ha-idempotence.passed with the change that needed the run); auto (make test's) runs
# it only when the inputs differ from the recorded ones; 0 never. About 6 minutes each.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/ci/podman_env.sh
. "$here/podman_env.sh"
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh" # free_port
# shellcheck source=deploy/ci/app_role_check.sh
. "$here/app_role_check.sh"
hosts="rdci-db1 rdci-db2 rdci-db3 rdci-app"
if [ "$1" = --cleanup ]; then
    dir=$2
    [ -f "$dir/containers.conf" ] || exit 0
    podman_env_use "$dir"
    for h in $hosts; do podman rm -f -t 5 "$h" >/dev/null 2>&1; done
    podman volume rm -f rdci-ha-repo >/dev/null 2>&1
    podman network rm -f rdci-ha >/dev/null 2>&1
    podman_env_teardown "$dir"
    exit 0
fi
dir=$1
deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
mkdir -p "$dir"
# Run alone (not from make ha-deploy-check, which installs them), say what is missing.
for t in podman iptables-save debootstrap netavark:/usr/lib/podman/netavark; do
    [ -x "${t#*:}" ] || command -v "${t%%:*}" >/dev/null 2>&1 && continue
    echo "${t%%:*} is not installed: make ha-deploy-check installs it (sh scripts/deps.sh deploy)" | tee "$dir/skip"
    exit 77
done
podman_env_setup "$dir"
mkdir -p "$dir/pki"

suite=${RATES_HA_DB_SUITE:-bookworm}
# ha_image SUITE: imports the cached HA root of SUITE as a systemd image and prints its name.
ha_image() {
    tar=$(sh "$here/rootfs_ha.sh" "$1") || return 1
    podman import --change 'CMD ["/sbin/init"]' "$tar" "localhost/rates-ci/systemd-ha:$1" >/dev/null || return 1
    echo "localhost/rates-ci/systemd-ha:$1"
}
app_image=$(ha_image bookworm) || exit 1
db_image=$app_image
[ "$suite" = bookworm ] || db_image=$(ha_image "$suite") || exit 1
# host_ip HOST: each host's fixed address on the network made below.
host_ip() {
    case "$1" in
    rdci-db1) echo 10.234.0.11 ;; rdci-db2) echo 10.234.0.12 ;; rdci-db3) echo 10.234.0.13 ;;
    rdci-app) echo 10.234.0.14 ;;
    esac
}
podman network create --subnet 10.234.0.0/24 rdci-ha >/dev/null || exit 1
podman volume create rdci-ha-repo >/dev/null || exit 1
port=$(free_port)
for h in $hosts; do
    image=$db_image
    case "$h" in
    rdci-app) extra="-p 127.0.0.1:$port:3000" image=$app_image ;;
    *) extra="-v rdci-ha-repo:/var/lib/pgbackrest" ;;
    esac
    # shellcheck disable=SC2086 # extra holds whole options
    if ! podman run -d --name "$h" --hostname "$h" --network rdci-ha --ip "$(host_ip "$h")" --systemd=always \
        $extra "$image" /sbin/init >"$dir/run-$h.log" 2>&1; then
        cat "$dir/run-$h.log"
        echo "podman cannot start a systemd container here: $(tail -1 "$dir/run-$h.log")" >"$dir/skip"
        exit 77
    fi
done
for h in $hosts; do
    i=0
    until podman exec "$h" systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded'; do
        i=$((i + 1))
        [ "$i" -lt 60 ] || { echo "systemd in $h did not come up"; podman logs --tail 30 "$h"; exit 1; }
        sleep 1
    done
done
echo "4 systemd containers up (database hosts: Debian $suite); ratesd on rdci-app published on 127.0.0.1:$port"
# Container quirk, not the role's: runc here cannot bind-mount a socket ("Operation not
# supported"), and Debian's haproxy.service bind-mounts /dev/log into its chroot. The role's
# haproxy.cfg does not chroot (it logs to /dev/log directly), so the CI hosts drop that mount.
podman exec rdci-app sh -c 'mkdir -p /etc/systemd/system/haproxy.service.d &&
    printf "[Service]\nBindReadOnlyPaths=\n" >/etc/systemd/system/haproxy.service.d/ci-container.conf &&
    systemctl daemon-reload' || exit 1
rnd() { od -An -N9 -tx1 /dev/urandom | tr -d ' \n'; }
# The secrets, as Ansible Vault would hold them: a vars file given with -e @file (mode 0600).
owner_pw=$(rnd)
app_pw=$(rnd)
su_pw=$(rnd)
repl_pw=$(rnd)
rest_pw=$(rnd)
cipher_pw=$(rnd)$(rnd)
token="ci-$(rnd)"
umask 077
cat >"$dir/secrets.yml" <<EOC
rates_ha_superuser_password: "$su_pw"
rates_ha_replication_password: "$repl_pw"
rates_ha_rest_password: "$rest_pw"
rates_ha_owner_password: "$owner_pw"
rates_pgbackrest_cipher_pass: "$cipher_pw"
rates_app_db_password: "$app_pw"
rates_ingest_tokens: "ci:$token"
EOC
umask 022
# Through HAProxy on loopback to a member: every member's certificate names 127.0.0.1 too.
tls="sslmode=verify-full&sslrootcert=/etc/rates/db-ca.crt"
{
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: containers.podman.podman"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "    ansible_become_method: su"
    echo "    rates_apt_update_cache: false"
    echo "    rates_ha_pki_dir: $dir/pki"
    echo "    rates_patroni_ttl: 10"
    echo "  children:"
    echo "    rates_db:"
    echo "      hosts:"
    for h in rdci-db1 rdci-db2 rdci-db3; do
        echo "        $h: {rates_ha_address: $(host_ip "$h")}"
    done
    echo "    rates_lb:"
    echo "      hosts:"
    echo "        rdci-app: {rates_ha_address: $(host_ip rdci-app)}"
    echo "    rates:"
    echo "      hosts:"
    echo "        rdci-app:"
    echo "      vars:"
    echo "        rates_deb: \"$deb\""
    echo "        rates_owner_database_url: \"postgresql://rates:$owner_pw@127.0.0.1:5000/rates?$tls\""
    echo "        rates_database_url: \"postgresql://rates_app:$app_pw@127.0.0.1:5000/rates?$tls\""
    echo "        rates_database_read_url: \"postgresql://rates_app:$app_pw@127.0.0.1:5001/rates?$tls\""
    echo "        rates_listen_port: 3000"
} >"$dir/inventory.yml"
cd "$root/deploy/ansible" || exit 1
export ANSIBLE_CONFIG="$root/deploy/ansible/ansible.cfg" ANSIBLE_LOCAL_TEMP="$dir/tmp" ANSIBLE_NOCOLOR=1 \
    ANSIBLE_PIPELINING=1 ANSIBLE_FORKS=8
# Where a play's time goes: the slowest tasks, printed after each run's recap.
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=8
# Process lists during both plays, on every host and here (the controller): 5 samples a
# second, bounded (20 minutes or the stop file). No secret may show on any command line.
# shellcheck disable=SC2016 # expanded by the sampling shell, not here
ps_sample='i=0; while [ "$i" -lt 6000 ] && [ ! -e /run/ps-sample.stop ]; do
    echo "--- ps sample"; cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" " "; echo
    i=$((i + 1)); sleep 0.2; done'
for h in $hosts; do
    podman exec -d "$h" sh -c "rm -f /run/ps-sample.stop; { $ps_sample; } >/run/ps-sample.txt" || exit 1
done
rm -f /run/ps-sample.stop
sh -c "$ps_sample" >"$dir/ps-sample-controller.txt" &
sampler=$!
inputs=$(sh "$here/ha_record.sh") || exit 1
runs="1 2"
idem=${RATES_HA_IDEMPOTENCE:-auto}
[ "$suite" = bookworm ] || idem=1
case "$idem" in
0) runs=1; echo "== second run skipped: RATES_HA_IDEMPOTENCE=0" ;;
auto) if where=$(sh "$here/ha_record.sh" idempotence passed); then
    runs=1
    echo "== second run skipped: its inputs ($inputs) reported changed=0 $where;" \
        "RATES_HA_IDEMPOTENCE=1 runs it"
fi ;;
esac
for run in $runs; do
    echo "== ansible-playbook run $run"
    t0=$(date +%s)
    timeout 1200 ansible-playbook -i "$dir/inventory.yml" -e "@$dir/secrets.yml" site.yml >"$dir/run$run.log" 2>&1
    rc=$?
    echo "run $run: $(($(date +%s) - t0)) s"
    grep -A6 '^PLAY RECAP' "$dir/run$run.log"
    grep -E ' -{3,} +[0-9.]+s$' "$dir/run$run.log" | tail -8
    if [ "$rc" != 0 ]; then
        grep -B5 -A15 'fatal:' "$dir/run$run.log" | head -80
        tail -30 "$dir/run$run.log"
        exit 1
    fi
done
if [ "$runs" != 1 ]; then
    bad=$(grep -E '^rdci-[a-z0-9]+ +:' "$dir/run2.log" | grep -v 'changed=0 ')
    if [ -n "$bad" ]; then
        echo "second run changed something: $bad"
        grep -B3 -A3 '^changed:' "$dir/run2.log" | head -60
        exit 1
    fi
    echo "second run: changed=0 on every host"
    if [ "$suite" = bookworm ]; then sh "$here/ha_record.sh" idempotence record "$inputs" || exit 1; fi
fi
touch /run/ps-sample.stop
wait "$sampler"
rm -f /run/ps-sample.stop
for h in $hosts; do
    podman exec "$h" touch /run/ps-sample.stop
    sleep 0.5
    podman exec "$h" cat /run/ps-sample.txt >"$dir/ps-sample-$h.txt" || exit 1
done
# A command line may hold newlines: count the marker lines, not lines.
samples=$(cat "$dir"/ps-sample-*.txt | grep -c '^--- ps sample$')
[ "$samples" -gt 100 ] || { echo "only $samples process-list samples: the sampler did not run"; exit 1; }
for pw in "$owner_pw" "$app_pw" "$su_pw" "$repl_pw" "$rest_pw" "$cipher_pw" "$token"; do
    if grep -l -F -- "$pw" "$dir"/ps-sample-*.txt; then
        grep -h -F -- "$pw" "$dir"/ps-sample-*.txt | sed "s/$pw/<secret>/g" | sort -u | head -5
        echo "a secret showed on a command line during the play (above, masked)"
        exit 1
    fi
done
echo "process lists during the play: $samples samples on 5 hosts, no secret on any command line"
# TLS to the database, as deployed: every ratesd session and both replication streams (from
# pg_stat_ssl), a session without TLS refused, Patroni's REST API on HTTPS only.
tls_check() {
    _all=0 _ssl=0
    for h in rdci-db1 rdci-db2 rdci-db3; do
        # A member may still be (re)starting its PostgreSQL right after the play: wait for it.
        _i=0
        until podman exec "$h" runuser -u postgres -- psql -X -At -c 'SELECT 1' >/dev/null 2>&1; do
            _i=$((_i + 1))
            [ "$_i" -lt 90 ] || { echo "PostgreSQL on $h did not answer in 90 s"; return 1; }
            sleep 1
        done
        # shellcheck disable=SC2046 # two numbers
        set -- $(podman exec "$h" runuser -u postgres -- psql -X -At -F ' ' -c \
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.usename = 'rates_app' AND a.client_addr IS NOT NULL")
        _all=$((_all + $1)) _ssl=$((_ssl + $2))
        if [ "$(podman exec "$h" runuser -u postgres -- psql -X -At -c 'SELECT pg_is_in_recovery()')" = f ]; then
            _repl=$(podman exec "$h" runuser -u postgres -- psql -X -At -F ' ' -c \
                "SELECT count(*), count(*) FILTER (WHERE s.ssl), min(s.version) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
        fi
    done
    echo "rates_app sessions: $_all, over TLS: $_ssl; replication streams, over TLS, protocol: ${_repl:-none}"
    if [ "$_all" -eq 0 ] || [ "$_all" != "$_ssl" ]; then echo "a ratesd session is not over TLS"; return 1; fi
    case "$_repl" in "2 2 TLS"*) ;; *) echo "replication is not over TLS on both replicas"; return 1 ;; esac
    if podman exec -e PGPASSWORD="$app_pw" -e PGCONNECT_TIMEOUT=5 rdci-app psql -X -At \
        -d "postgresql://rates_app@127.0.0.1:5000/rates?sslmode=disable" -c 'SELECT 1' >"$dir/nossl.log" 2>&1; then
        echo "a session without TLS was accepted"; return 1
    fi
    # PostgreSQL 14 and later say "no encryption", 13 "SSL off".
    grep -Eq 'no encryption|SSL off' "$dir/nossl.log" || { cat "$dir/nossl.log"; return 1; }
    echo "without TLS: $(grep -o 'no pg_hba.conf entry.*' "$dir/nossl.log" | head -1)"
    if podman exec rdci-app curl -s -m 5 -o /dev/null "http://$(host_ip rdci-db1):8008/health"; then
        echo "Patroni's REST API answered plain HTTP"; return 1
    fi
    podman exec rdci-app curl -fsS -m 5 -o /dev/null --cacert /etc/haproxy/rates-ha-ca.crt \
        "https://$(host_ip rdci-db1):8008/health" || { echo "Patroni's REST API over HTTPS failed"; return 1; }
    echo "Patroni REST: plain HTTP refused, HTTPS verified against the cluster CA"
}
tls_check || exit 1
# Least privilege as deployed (deploy/ci/app_role_check.sh).
app_role_check "$port" podman exec -e PGPASSWORD="$owner_pw" rdci-app psql -d "postgresql://rates@127.0.0.1:5000/rates?$tls" || exit 1
cd "$root" || exit 1
members="rdci-db1=rdci-db1 rdci-db2=rdci-db2 rdci-db3=rdci-db3"
# shellcheck disable=SC2086 # one MEMBER=CONTAINER word each
/usr/bin/python3 -m deploy.ci.ha_failover_drill podman /etc/patroni/config.yml $members -- "$port" "$token" \
    "$dir/report.json" || { for h in rdci-db1 rdci-db2 rdci-db3; do echo "== $h"; podman exec "$h" journalctl -u patroni --no-pager -n 15; done; exit 1; }
# The leader and one replica after the drill, from its report.
# shellcheck disable=SC2046 # two member names, split on purpose
set -- $(/usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["members_after"]
print(*sorted(m, key=lambda k: m[k][0] != "Leader")[:2])' "$dir/report.json")
leader=$1 replica=$2
echo "== full backup through the role's unit on the leader ($leader)"
podman exec "$leader" systemctl start rates-pgbackrest-backup@full.service || {
    podman exec "$leader" journalctl -u rates-pgbackrest-backup@full.service --no-pager -n 30; exit 1; }
podman exec "$leader" runuser -u postgres -- pgbackrest --stanza=rates info || exit 1
podman exec "$leader" cat /var/lib/prometheus/node-exporter/rates_pgbackrest.prom || exit 1
podman exec "$leader" runuser -u postgres -- pgbackrest --stanza=rates --output=json info |
    /usr/bin/python3 -c 'import json,sys; s=json.load(sys.stdin)[0]; b=s.get("backup") or []
c, wal = s.get("cipher"), (s.get("archive") or [{}])[0].get("max")
print(len(b), "backup(s), repository cipher", c, "archive up to", wal)
sys.exit(0 if b and c == "aes-256-cbc" else 1)' || exit 1
# Only the leader backs up: the same unit on a replica exits without a backup.
podman exec "$replica" systemctl start rates-pgbackrest-backup@diff.service || exit 1
podman exec "$replica" journalctl -u rates-pgbackrest-backup@diff.service --no-pager -n 3 | grep -q "not the leader" ||
    { echo "the backup unit on replica $replica did not stand down"; exit 1; }
echo "ha-deploy-check: passed"
