#!/bin/sh
# tests/stages/tarball.sh: the release tarball works on its own, without .git. `make dist`
# (git archive of HEAD, COMMIT filled in) is unpacked in a temp dir; there `make deb` builds a
# package holding ratesd of this VERSION and commit, and `make up` serves /readyz and one /rates
# on loopback (the dump of RATES_DUMP when set, else the synthetic sample), then stops on SIGINT
# with its PostgreSQL. Each step is a JUnit testcase in $RATES_TEST_RESULTS/stage-tarball.xml,
# bounded in time; the temp dir and every process started are gone at exit.
# RATES_TARBALL_CHECKS=0 turns the stage off; RATES_TARBALL_PARTS picks "up deb" (both, the
# default). Skipped when this tree is not a clone.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # free_port, pg_cluster_stop
out=${RATES_TEST_RESULTS:-$root/build/test-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ "${RATES_TARBALL_CHECKS:-1}" = 0 ]; then
    echo "tarball: RATES_TARBALL_CHECKS=0: skipped"
    exit 0
fi
work=$(mktemp -d /tmp/rates-tarball.XXXXXX)
chmod 755 "$work" # make up as root runs PostgreSQL as postgres under $work/src/var/pg
src=$work/src
cases=$work/cases.tsv
: >"$cases"
up_pid=""
stage_t0=$(date +%s)

cleanup() {
    if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
        kill -INT "-$up_pid" 2>/dev/null
        i=0
        while kill -0 "$up_pid" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 1; i=$((i + 1)); done
        kill -KILL "-$up_pid" 2>/dev/null
    fi
    [ -f "$src/var/pg/data/postmaster.pid" ] && pg_cluster_stop "$src/var/pg"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_case NAME FUNCTION: output in $work/logs/NAME.log; 0 passes, 77 skips (reason: the log's
# last line), anything else fails (the log's tail goes into the report).
run_case() {
    name=$1
    shift
    mkdir -p "$work/logs"
    log=$work/logs/$name.log
    t0=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    dt=$(($(date +%s) - t0))
    case $rc in
    0) st=pass && echo "  ok    $name (${dt}s)" ;;
    77) st=skip && echo "  skip  $name: $(tail -1 "$log")" ;;
    *) st=fail && echo "  FAIL  $name (${dt}s); last lines:" && tail -20 "$log" | sed 's/^/        /' ;;
    esac
    printf '%s\t%s\t%s\n' "$name" "$st" "$dt" >>"$cases"
}

write_junit() {
    /usr/bin/python3 - "$cases" "$work/logs" "$out/stage-tarball.xml" <<'EOF'
import os, re, sys
from xml.sax.saxutils import escape, quoteattr
cases, logs, path = sys.argv[1:4]
bad = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
rows = [l.rstrip("\n").split("\t") for l in open(cases) if l.strip()]
def text(name, n):
    try:
        return bad.sub("", open(os.path.join(logs, name + ".log"), errors="replace").read()[-n:])
    except OSError:
        return ""
with open(path, "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    f.write('<testsuite name="tarball" tests="%d" failures="%d" skipped="%d">\n' % (
        len(rows), sum(r[1] == "fail" for r in rows), sum(r[1] == "skip" for r in rows)))
    for name, st, dt in rows:
        f.write('  <testcase classname="tarball" name=%s time="%s">' % (quoteattr(name), dt))
        if st == "fail":
            f.write('<failure message="failed">%s</failure>' % escape(text(name, 6000)))
        elif st == "skip":
            lines = text(name, 300).strip().splitlines()
            f.write("<skipped message=%s/>" % quoteattr(lines[-1] if lines else "skipped"))
        else:
            f.write("<system-out>%s</system-out>" % escape(text(name, 2000)))
        f.write("</testcase>\n")
    f.write("</testsuite>\n")
EOF
}

version=$(cat VERSION)
commit=""
up_wait_s=${RATES_TARBALL_UP_WAIT_S:-420} # make up: build, npm packages, dump, migrations

# make dist in this clone; the tarball unpacked in $src has no .git and names the commit.
c_dist() {
    git rev-parse --verify -q HEAD >/dev/null 2>&1 || { echo "not a git clone: no tarball to make"; return 77; }
    tgz=$(timeout 120 make -s --no-print-directory dist DIST_OUT="$work/dist") || return 1
    echo "tarball: $tgz ($(du -k "$tgz" | cut -f1) kB)"
    mkdir -p "$src"
    tar -xzf "$tgz" -C "$src" --strip-components=1 || return 1
    [ ! -e "$src/.git" ] || { echo "the tarball holds .git"; return 1; }
    # The build's one npm file, Redoc's bundle, from this clone as tools/build-deb.sh does: npm ci
    # of tools/api takes ~3 minutes here (200 MB). RATES_TARBALL_NPM=1 lets the tarball run it.
    redoc=tools/api/node_modules/redoc/bundles/redoc.standalone.js
    if [ -z "${RATES_TARBALL_NPM:-}" ] && [ -f "$redoc" ] && cmp -s tools/api/package-lock.json "$src/tools/api/package-lock.json"; then
        mkdir -p "$src/$(dirname "$redoc")" && cp "$redoc" "$src/$redoc" && touch "$src/tools/api/node_modules/.rates-installed"
        echo "Redoc's bundle copied from this clone (RATES_TARBALL_NPM=1: npm ci in the tarball instead)"
    fi
    commit=$(git rev-parse --short=12 HEAD)
    got=$(make -s --no-print-directory -C "$src" print-commit)
    echo "commit: HEAD $commit, the tarball's Makefile says $got"
    [ "$got" = "$commit" ]
}

# make deb in the tarball: a package of this version whose ratesd names the commit.
c_deb() {
    [ -f "$src/Makefile" ] || { echo "no tarball (dist failed)"; return 1; }
    timeout 600 make -s --no-print-directory -C "$src" deb DEB_OUT="$work/deb" || return 1
    deb=$work/deb/rates_${version}_amd64.deb
    [ -f "$deb" ] || { echo "no $deb:"; ls -l "$work/deb"; return 1; }
    [ "$(dpkg-deb -f "$deb" Package)" = rates ] || { echo "Package is not rates"; return 1; }
    v=$(dpkg-deb -f "$deb" Version)
    [ "$v" = "$version" ] || { echo "Version $v, VERSION says $version"; return 1; }
    dpkg-deb --contents "$deb" | tee "$work/contents.txt"
    dpkg-deb --info "$deb" || return 1
    for f in ./usr/bin/ratesd ./usr/bin/rates-load ./usr/bin/rates-gen ./lib/systemd/system/ratesd.service \
        ./lib/systemd/system/ratesd.socket ./etc/rates/ratesd.conf ./usr/share/man/man8/ratesd.8.gz; do
        grep -q " $f\$" "$work/contents.txt" || { echo "the package lacks $f"; return 1; }
    done
    dpkg-deb -x "$deb" "$work/pkg" || return 1
    ver=$("$work/pkg/usr/bin/ratesd" --version) || return 1
    echo "packaged: $ver"
    [ "$ver" = "ratesd $version ($commit)" ] || { echo "expected: ratesd $version ($commit)"; return 1; }
}

# get PATH: the body of GET http://127.0.0.1:$port/PATH (status in $work/status).
get() {
    /usr/bin/python3 - "$port" "$1" "$work/status" <<'EOF'
import sys, urllib.request, urllib.error
port, path, status = sys.argv[1:4]
try:
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except OSError as e:
    code, body = 0, str(e).encode()
open(status, "w").write(str(code))
sys.stdout.write(body.decode(errors="replace"))
EOF
}

# make up in the tarball: builds, starts its PostgreSQL, loads the dump (or the sample), serves.
c_up() {
    [ -f "$src/Makefile" ] || { echo "no tarball (dist failed)"; return 1; }
    pg_port=$(free_port)
    port=$(free_port)
    dump=""
    if [ -n "${RATES_DUMP:-}" ] && [ -f "$RATES_DUMP" ]; then
        dump=$(cd "$(dirname "$RATES_DUMP")" && pwd)/$(basename "$RATES_DUMP")
    fi
    # None of this environment's RATES_* or PG* settings (CI's) reach make up or ratesd. Its own
    # session with SIGINT at its default (a shell's background job ignores it, and sh cannot
    # trap a signal ignored on entry), so that SIGINT reaches make, up.sh and ratesd as Ctrl-C.
    unset_env=$(env | sed -n 's/^\(\(RATES\|PG\)[A-Za-z0-9_]*\)=.*/-u \1/p')
    # shellcheck disable=SC2086 # unset_env: whole options
    (cd "$src" && exec env $unset_env RATES_PG_PORT="$pg_port" RATES_LISTEN="127.0.0.1:$port" \
        RATES_DUMP="$dump" /usr/bin/python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' make -s --no-print-directory up >"$work/up.log" 2>&1) &
    up_pid=$!
    t0=$(date +%s)
    until [ "$(get /readyz >"$work/readyz.json"; cat "$work/status")" = 200 ]; do
        if ! kill -0 "$up_pid" 2>/dev/null || [ $(($(date +%s) - t0)) -ge "$up_wait_s" ]; then
            echo "make up did not become ready in $(($(date +%s) - t0)) s:"
            tail -40 "$work/up.log"
            return 1
        fi
        sleep 1
    done
    echo "ready after $(($(date +%s) - t0)) s: $(cat "$work/readyz.json")"
    if [ -n "$dump" ]; then
        want=data q="/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CNGGZ&dest_code=EETLL"
        grep -q '"data": *"sample"' "$work/readyz.json" && { echo "/readyz says sample, a dump was given"; return 1; }
    else
        want=sample q="/rates?date_from=2021-01-01&date_to=2021-01-31&orig_code=CN000&dest_code=EE003"
        grep -q '"data": *"sample"' "$work/readyz.json" || { echo "/readyz does not say sample"; return 1; }
    fi
    get "$q" >"$work/rates.json"
    echo "GET $q ($want): $(cat "$work/status") $(head -c 300 "$work/rates.json")"
    [ "$(cat "$work/status")" = 200 ] || return 1
    /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["rates"]
assert len(r) == 31 and r[0]["day"] == "2021-01-31", r[:2]
assert any(d["price"] is not None for d in r), "no day with a price"
' "$work/rates.json" || return 1
    kill -INT "-$up_pid"
    i=0
    while kill -0 "$up_pid" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 60 ] || { echo "make up did not stop within 60 s of SIGINT"; return 1; }
        sleep 1
    done
    wait "$up_pid"
    up_pid=""
    tail -5 "$work/up.log"
    [ ! -f "$src/var/pg/data/postmaster.pid" ] || { echo "make up left its PostgreSQL running"; return 1; }
    echo "stopped in ${i}s, PostgreSQL too"
}

echo "tarball: in $work"
run_case dist c_dist
# make up first: its build installs tools/api's npm packages in the tree, which make deb then
# copies instead of installing them again in its copy.
parts=${RATES_TARBALL_PARTS:-up deb}
case " $parts " in *" up "*) run_case up c_up ;; esac
case " $parts " in *" deb "*) run_case deb c_deb ;; esac
write_junit
echo "tarball: $(($(date +%s) - stage_t0))s, JUnit in $out/stage-tarball.xml"
! grep -q '	fail	' "$cases"
