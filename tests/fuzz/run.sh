#!/bin/sh
# tests/fuzz/run.sh NAME...: runs $FUZZ_DIR/fuzz_NAME for $FUZZ_SECONDS each, from the seed
# corpus in tests/fuzz/corpus/NAME; new inputs go to $FUZZ_DIR/work/NAME and a crash to
# $FUZZ_DIR/crash-NAME-*. With RESULTS=DIR, writes DIR/fuzz.xml (one JUnit testcase a target).
# Exits 1 when any target found a crash.
set -u
cd "$(dirname "$0")/../.." || exit 1
dir=${FUZZ_DIR:-build/fuzz}
secs=${FUZZ_SECONDS:-30}
status=0
cases=""
failures=0
for name in "$@"; do
    bin=$dir/fuzz_$name
    work=$dir/work/$name
    log=$dir/fuzz-$name.log
    mkdir -p "$work"
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if "$bin" $dict -max_total_time="$secs" -max_len=20480 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$dir/crash-$name-" \
        "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
        result=""
        echo "fuzz $name: ok ($(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$') runs in ${secs}s)"
    else
        status=1
        failures=$((failures + 1))
        msg=$(grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g')
        result="<failure message=\"libFuzzer found a crash (see $log)\">$msg</failure>"
        echo "fuzz $name: CRASH (see $log)"
        tail -30 "$log"
    fi
    took=$(( $(date +%s) - start ))
    cases="$cases<testcase classname=\"fuzz\" name=\"fuzz_$name\" time=\"$took\">$result</testcase>"
done
if [ -n "${RESULTS:-}" ]; then
    mkdir -p "$RESULTS"
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="fuzz" tests="%s" failures="%s">%s</testsuite>\n' \
        "$#" "$failures" "$cases" >"$RESULTS/fuzz.xml"
fi
exit $status
