#!/bin/sh
# tests/stages/contract.sh: the checks of issue 17 that are not integration tests, each one
# JUnit testcase in $RATES_TEST_RESULTS/stage-contract.xml:
#   openapi_lint    api/openapi.json passes the pinned @redocly/cli lint (tools/api/lint.sh)
#   man_lint        the three man pages build and `mandoc -T lint -W warning` says nothing
#   cli_conventions --help, --version, usage exit 2 for the three programs
#   clang_format    src/ and tests/unit/ are as clang-format (.clang-format) makes them
set -u
cd "$(dirname "$0")/../.." || exit 1
out=${RATES_TEST_RESULTS:-build/test-results}
mkdir -p "$out"
build=${RATES_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cases=""
failures=0
n=0

# add_case NAME STATUS(0 ok, 1 failed, 2 skipped) MESSAGE
add_case() {
    n=$((n + 1))
    msg=$(printf '%s' "$3" | tail -c 4000 | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g')
    case $2 in
    0) cases="$cases<testcase classname=\"contract\" name=\"$1\"/>"; echo "  ok    $1" ;;
    1) cases="$cases<testcase classname=\"contract\" name=\"$1\"><failure message=\"$msg\"/></testcase>"
       failures=$((failures + 1)); echo "  FAIL  $1: $3" ;;
    *) cases="$cases<testcase classname=\"contract\" name=\"$1\"><skipped message=\"$msg\"/></testcase>"
       echo "  skip  $1: $3" ;;
    esac
}

if msg=$(timeout 300 sh tools/api/lint.sh 2>&1); then
    add_case openapi_lint 0 ""
else
    add_case openapi_lint 1 "$msg"
fi

if ! command -v mandoc >/dev/null 2>&1; then
    add_case man_lint 1 "mandoc is not installed (scripts/packages-test.txt)"
elif ! msg=$(make -s BUILD="$build" man 2>&1); then
    add_case man_lint 1 "make man failed: $msg"
elif msg=$(mandoc -T lint -W warning "$build"/man/* 2>&1) && [ -z "$msg" ]; then
    add_case man_lint 0 ""
else
    add_case man_lint 1 "$msg"
fi

msg=""
for p in ratesd rates-load rates-gen; do
    b=$build/$p
    [ -x "$b" ] || { msg="$msg $p: not built;"; continue; }
    "$b" --help >"$tmp/help" 2>&1 || msg="$msg $p --help exit $?;"
    v=$("$b" --version 2>&1) || msg="$msg $p --version exit $?;"
    case $v in "$p $(cat VERSION) ("?*")") ;; *) msg="$msg $p --version says '$v' (want NAME VERSION (COMMIT));" ;; esac
    "$b" --no-such-option >/dev/null 2>&1
    rc=$?
    [ "$rc" = 2 ] || msg="$msg $p usage error exit $rc (not 2);"
done
if [ -z "$msg" ]; then add_case cli_conventions 0 ""; else add_case cli_conventions 1 "$msg"; fi

if command -v clang-format >/dev/null 2>&1 && [ -f .clang-format ]; then
    if differ=$(sh tools/check-format.sh 2>&1); then
        add_case clang_format 0 ""
    else
        add_case clang_format 1 "not formatted (clang-format -i FILE): $(echo $differ)"
    fi
else
    add_case clang_format 1 "clang-format or .clang-format missing (scripts/packages-test.txt)"
fi

printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="contract" tests="%d" failures="%d">%s</testsuite>\n' \
    "$n" "$failures" "$cases" >"$out/stage-contract.xml"
[ "$failures" = 0 ]
