#!/bin/sh
# tools/check-format.sh [FILE...]: lists the C files (default: src/, tests/unit/) that
# clang-format (.clang-format) would change, one per line; exits 1 when any would.
# Reformat one with `clang-format -i FILE`. Nothing is changed by this script.
set -u
cd "$(dirname "$0")/.." || exit 2
command -v clang-format >/dev/null 2>&1 || { echo "check-format: clang-format is not installed" >&2; exit 2; }
[ $# -gt 0 ] || set -- src/*.c src/*.h tests/unit/*.c
bad=0
for f in "$@"; do
    [ -f "$f" ] || continue
    if ! clang-format --style=file "$f" | cmp -s "$f" -; then
        echo "$f"
        bad=1
    fi
done
exit $bad
