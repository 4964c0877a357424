#!/bin/sh
# tests/stages/pg13.sh: the integration suite once more, against PostgreSQL 13 (production's
# major version): Debian 11's postgresql-13 in a cached bullseye root (tests/pg13/chroot.sh),
# started by the harness inside it (RATES_PG_CHROOT). Normal build only, drills excluded
# (they need several clusters and stay on 15). JUnit XML: $RATES_TEST_RESULTS/pg13.xml, every
# test's classname prefixed "pg13." so the summary tells them from the 15 run.
# Gate: RATES_PG13=0 turns the stage off. RATES_BIN overrides the binary (default build/ratesd).
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # pytest_parallel
out=${RATES_TEST_RESULTS:-$root/build/test-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PYTHON=/usr/bin/python3
if [ "${RATES_PG13:-1}" = 0 ]; then
    echo "pg13: RATES_PG13=0: stage skipped"
    exit 0
fi
bin=${RATES_BIN:-$root/build/ratesd}
work=$(mktemp -d /tmp/rates-pg13.XXXXXX)
t0=$(date +%s)

# junit_fail NAME MESSAGE: the stage itself could not run: one failing testcase says why.
junit_fail() {
    "$PYTHON" - "$out/pg13.xml" "$1" "$2" <<'EOF'
import sys
from xml.sax.saxutils import quoteattr
path, name, msg = sys.argv[1:4]
with open(path, "w") as f:
    f.write('<testsuite name="pg13" tests="1" failures="1"><testcase classname="pg13.stage" '
            f'name={quoteattr(name)}><failure message={quoteattr(msg)}/></testcase></testsuite>\n')
EOF
}

if ! chroot_root=$(sh tests/pg13/chroot.sh 2>"$work/chroot.log"); then
    echo "pg13: cannot build the bullseye root:"
    tail -20 "$work/chroot.log"
    junit_fail chroot "$(tail -5 "$work/chroot.log")"
    rm -rf "$work"
    exit 1
fi
t_root=$(($(date +%s) - t0))
echo "pg13: root $chroot_root ready in ${t_root}s ($(chroot "$chroot_root" /usr/lib/postgresql/13/bin/postgres --version))"

# Clusters the harness leaves behind (a killed run) are stopped and removed at the end: the
# ones that were not there before this run.
find "$chroot_root/var/tmp" -maxdepth 1 -name "rates-pg-*" | sort >"$work/before"
cleanup() {
    find "$chroot_root/var/tmp" -maxdepth 1 -name "rates-pg-*" | sort >"$work/after"
    for d in $(comm -13 "$work/before" "$work/after"); do
        if [ -f "$d/data/postmaster.pid" ]; then
            uid=$(stat -c %u "$d")
            gid=$(stat -c %g "$d")
            chroot --userspec="$uid:$gid" "$chroot_root" /usr/lib/postgresql/13/bin/pg_ctl \
                -D "/var/tmp/$(basename "$d")/data" -m immediate -w stop >/dev/null 2>&1
        fi
        rm -rf "$d"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Two pytest-xdist workers, a cluster each, as make test's other passes.
par=$(pytest_parallel "${RATES_TEST_WORKERS:-2}")
# shellcheck disable=SC2086
RATES_PG_CHROOT=$chroot_root RATES_BIN=$bin "$PYTHON" -m pytest -q -p no:cacheprovider $par \
    -m "not drill" -o junit_suite_name=pg13 --junitxml="$work/pg13-raw.xml" tests/integration "$@"
rc=$?
if [ -s "$work/pg13-raw.xml" ]; then
    "$PYTHON" - "$work/pg13-raw.xml" "$out/pg13.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
for case in tree.getroot().iter("testcase"):
    case.set("classname", "pg13." + case.get("classname", ""))
tree.write(sys.argv[2], encoding="unicode")
EOF
else
    junit_fail pytest "pytest wrote no report (exit $rc)"
    rc=1
fi
echo "pg13: stage took $(($(date +%s) - t0))s (root ${t_root}s)"
[ "$rc" = 0 ]
