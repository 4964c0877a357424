#!/bin/sh
# tests/stages/fuzz.sh: a short libFuzzer run of each body parser (FUZZ_SECONDS, default 20)
# as a `make test` stage; one JUnit testcase per target in $RATES_TEST_RESULTS/fuzz.xml.
set -u
cd "$(dirname "$0")/../.." || exit 1
: "${RATES_TEST_RESULTS:?RATES_TEST_RESULTS must name the results directory}"
secs=${FUZZ_SECONDS:-20}
build=${FUZZ_BUILD:-build}
if ! make -s BUILD="$build" fuzz-build >/dev/null 2>&1; then
    make -s BUILD="$build" fuzz-build 2>&1 | tail -20
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="fuzz" tests="1" failures="1"><testcase classname="fuzz" name="build"><failure message="the fuzz targets did not build (clang -fsanitize=fuzzer; libclang-rt-14-dev?)"/></testcase></testsuite>\n' \
        >"$RATES_TEST_RESULTS/fuzz.xml"
    exit 1
fi
FUZZ_SECONDS=$secs FUZZ_DIR="$build/fuzz" RESULTS=$RATES_TEST_RESULTS sh tests/fuzz/run.sh csv ndjson json
