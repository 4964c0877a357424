#!/bin/sh
# The one command that runs every test: installs what it needs, builds normally and with
# AddressSanitizer+UndefinedBehaviorSanitizer, runs the unit tests and the integration tests
# (a real PostgreSQL cluster made and destroyed by the harness, the real binary over HTTP)
# with both builds, the concurrency tests under ThreadSanitizer, and ends with one summary
# line "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/lib.sh
. scripts/lib.sh # pytest_parallel
sh scripts/deps.sh test || exit 1
. tests/find_dump.sh
out=build/test-results
rm -rf "$out"
mkdir -p "$out"
fail=0
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build"
make -s -j"$jobs" all unit-bins >/dev/null || exit 1
make -s -j"$jobs" SAN=1 all unit-bins >/dev/null || exit 1

for variant in build build-san; do
    echo "== unit tests ($variant)"
    sh tests/run_unit.sh --junit "$out" "$variant"/tests/test_* || fail=1
done

# Both builds run everything but the drills on two pytest-xdist workers (a cluster each, whole
# files per worker, as make check does); the long drills run once, alone, with the normal build.
# pytest's exit 5 (nothing selected, e.g. `make test` with -k that no drill matches) is not a failure.
pytest() {
    /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@"
    rc=$?
    [ "$rc" = 5 ] && return 0
    return "$rc"
}
par=$(pytest_parallel "${RATES_TEST_WORKERS:-2}")
for variant in build build-san; do
    echo "== integration tests ($variant/ratesd)"
    # shellcheck disable=SC2086
    RATES_BIN="$PWD/$variant/ratesd" pytest $par \
        -m "not drill" --junitxml="$out/integration-$variant.xml" tests/integration "$@" || fail=1
done
echo "== integration tests: drills (build/ratesd)"
RATES_BIN="$PWD/build/ratesd" pytest \
    -m drill --junitxml="$out/integration-build-drills.xml" tests/integration "$@" || fail=1

# ThreadSanitizer over the tests that exercise concurrency (keep-alive, 32 concurrent clients,
# uploads, shutdown, upgrade). RATES_TSAN=1 makes them skip timing assertions; suppressions for
# the libraries' own races are in tests/tsan.supp (tests/support/server.py passes TSAN_OPTIONS).
echo "== integration tests under ThreadSanitizer (build-tsan/ratesd)"
if make -s -j"$jobs" SAN=thread all >/dev/null; then
    RATES_TSAN=1 RATES_BIN="$PWD/build-tsan/ratesd" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        -m "not drill" --junitxml="$out/integration-build-tsan.xml" \
        tests/integration/httpd/test_http.py tests/integration/ingest/test_batches.py \
        tests/integration/ingest/test_failure.py tests/integration/ingest/test_limits.py \
        tests/integration/ingest/test_owner.py tests/integration/ops/test_shutdown.py \
        tests/integration/ops/test_upgrade.py || fail=1
else
    printf '<testsuite><testcase classname="tsan" name="build"><failure message="make SAN=thread failed"/></testcase></testsuite>\n' \
        >"$out/integration-build-tsan.xml"
    fail=1
fi

# Extra test stages (deploy checks, fuzzing...) drop scripts in tests/stages/ (each writes
# JUnit XML into $RATES_TEST_RESULTS).
for stage in tests/stages/*.sh; do
    [ -f "$stage" ] || continue
    echo "== stage $(basename "$stage")"
    RATES_TEST_RESULTS="$out" sh "$stage" || fail=1
done

/usr/bin/python3 tests/summary.py "$out" || fail=1
exit $fail
