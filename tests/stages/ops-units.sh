#!/bin/sh
# tests/stages/ops-units.sh: the deploy checks of issue 4: `systemd-analyze verify` on the unit
# files (ExecStart pointed at the built binary) and docs/operations.md naming every metric
# family that /metrics renders. Writes JUnit XML into $RATES_TEST_RESULTS.
set -u
cd "$(dirname "$0")/../.." || exit 1
out=${RATES_TEST_RESULTS:-build/test-results}
mkdir -p "$out"
bin=${RATES_BIN:-$PWD/build/ratesd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cases=""
failures=0

# add_case NAME STATUS(0 ok, 1 failed, 2 skipped) MESSAGE
add_case() {
    msg=$(printf '%s' "$3" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g')
    case $2 in
    0) cases="$cases<testcase classname=\"ops\" name=\"$1\"/>" ;;
    1) cases="$cases<testcase classname=\"ops\" name=\"$1\"><failure message=\"$msg\"/></testcase>"
       failures=$((failures + 1)); echo "  FAILED $1: $3" ;;
    *) cases="$cases<testcase classname=\"ops\" name=\"$1\"><skipped message=\"$msg\"/></testcase>"
       echo "  skipped $1: $3" ;;
    esac
}

if command -v systemd-analyze >/dev/null 2>&1; then
    sed "s|/usr/bin/ratesd|$bin|g" deploy/systemd/ratesd.service > "$tmp/ratesd.service"
    cp deploy/systemd/ratesd.socket "$tmp/"
    if msg=$(cd "$tmp" && systemd-analyze verify ./ratesd.socket ./ratesd.service 2>&1) && [ -z "$msg" ]; then
        add_case systemd_analyze_verify 0 ""
    else
        add_case systemd_analyze_verify 1 "$msg"
    fi
else
    add_case systemd_analyze_verify 2 "systemd-analyze not installed"
fi

missing=""
families=$(sed -n 's/.*render_head(o, "\([a-z_]*\)".*/\1/p' src/metrics.c)
for f in $families; do
    grep -q "\`$f\`" docs/operations.md 2>/dev/null || missing="$missing $f"
done
if [ -z "$missing" ]; then
    add_case metrics_documented 0 ""
else
    add_case metrics_documented 1 "docs/operations.md does not name:$missing"
fi

missing=""
for sig in SIGTERM SIGINT SIGHUP SIGUSR2; do
    grep -q "$sig" docs/operations.md 2>/dev/null || missing="$missing $sig"
done
if [ -z "$missing" ]; then add_case signals_documented 0 ""; else add_case signals_documented 1 "missing:$missing"; fi

n=3
printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="ops-units" tests="%d" failures="%d">%s</testsuite>\n' \
    "$n" "$failures" "$cases" > "$out/stage-ops-units.xml"
[ "$failures" = 0 ]
