#!/bin/sh
# Runs cmocka unit-test binaries and exits non-zero when any failed.
#   tests/run_unit.sh BIN...               cmocka's own output on the terminal
#   tests/run_unit.sh --junit DIR BIN...   one JUnit XML file per binary in DIR (read by
#                                          tests/summary.py) and a line per binary
# A binary that exits non-zero without reporting a failure (a crash, a sanitizer abort) is
# counted as one failed test, so nothing is lost from the summary.
status=0
junit=""
if [ "${1:-}" = --junit ]; then
    junit=$2
    shift 2
fi
for t in "$@"; do
    [ -x "$t" ] && [ -f "$t" ] || continue # the compiler's .d files lie beside the binaries
    if [ -z "$junit" ]; then
        "$t" || status=1
        continue
    fi
    name=$(basename "$t")
    variant=$(basename "$(dirname "$(dirname "$t")")")
    xml="$junit/unit-$variant-$name.xml"
    if ! CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE="$xml" "$t" >/dev/null 2>&1; then
        status=1
        if ! grep -q '<failure' "$xml" 2>/dev/null; then
            printf '<testsuite><testcase classname="%s" name="runs"><failure message="exited non-zero without a report"/></testcase></testsuite>\n' \
                "$name" >"$xml"
        fi
    fi
    printf '  %s: %s tests, %s failures\n' "$name" \
        "$(grep -c '<testcase' "$xml")" "$(grep -c '<failure' "$xml")"
done
exit $status
