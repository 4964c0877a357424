#!/bin/sh
# The fast loop (`make check`): one normal build, the unit tests and the integration tests that
# need only PostgreSQL (the `drill` marker, the ThreadSanitizer pass, the PostgreSQL 13 and
# deploy stages are left to `make test`). Installs what it needs first, uses the dump when
# RATES_DUMP or db/rates.sql is there, and ends with the same summary line as `make test`:
# "N passed, N failed, N skipped". Arguments go to pytest (`make check ARGS="-k golden"`).
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # pytest_parallel
sh scripts/deps.sh test || exit 1
. tests/find_dump.sh
out=build/check-results
rm -rf "$out"
mkdir -p "$out"
fail=0
jobs=$(nproc 2>/dev/null || echo 2)
t0=$(date +%s)

echo "== build"
make -s -j"$jobs" all unit-bins >/dev/null || exit 1

echo "== unit tests (build)"
sh tests/run_unit.sh --junit "$out" build/tests/test_* || fail=1

echo "== integration tests (build/ratesd, not drill)"
# pytest-xdist spreads the files over two workers, each with its own cluster.
par=$(pytest_parallel "${RATES_CHECK_WORKERS:-2}")
# shellcheck disable=SC2086
RATES_BIN="$PWD/build/ratesd" /usr/bin/python3 -m pytest -q -p no:cacheprovider $par \
    -m "not drill" --junitxml="$out/integration-build.xml" tests/integration "$@" || fail=1

/usr/bin/python3 tests/summary.py "$out" || fail=1
echo "make check: $(($(date +%s) - t0)) s"
exit $fail
