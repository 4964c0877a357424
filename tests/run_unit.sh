#!/bin/sh
# Runs the cmocka unit-test binaries given as arguments; prints cmocka's output and exits
# non-zero when any failed.
status=0
for t in "$@"; do
    "$t" || status=1
done
exit $status
