#!/bin/sh
# tools/api/setup.sh: installs the pinned npm tools of tools/api/package-lock.json (npm ci) once;
# later runs reuse tools/api/node_modules. Parallel builds serialise on a lock. Exits 1 (with
# the reason) without npm.
set -eu
cd "$(dirname "$0")"
command -v npm >/dev/null 2>&1 || { echo "tools/api: npm is not installed" >&2; exit 1; }
exec 9>.setup.lock
flock -w 600 9
if [ ! -f node_modules/.rates-installed ] || [ -n "$(find package-lock.json -newer node_modules/.rates-installed)" ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
    touch node_modules/.rates-installed
fi
