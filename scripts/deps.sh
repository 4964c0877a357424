#!/bin/sh
# Installs the Debian packages the project needs, only those that are missing.
# Usage: scripts/deps.sh [build|test]   (test includes build)
set -eu
here=$(dirname "$0")
. "$here/lib.sh"
lists="$here/packages-build.txt"
if [ "${1:-build}" = test ]; then
    lists="$lists $here/packages-test.txt"
fi
missing=""
for p in $(cat $lists | sed 's/#.*//' | tr -s ' \n' '\n' | sort -u); do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
echo "rates: installing Debian packages:$missing"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "rates: no apt-get here; install these packages yourself:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
# shellcheck disable=SC2086
as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
