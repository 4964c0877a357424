#!/bin/sh
# tools/build-deb.sh OUT_DIR: builds the Debian package the Debian way (debian/, debhelper,
# dpkg-buildpackage -b) from a copy of the tracked tree, so the build never touches the work
# tree (dh_clean, debian/build). Redoc's bundle (tools/api) is copied in when it is installed,
# so the copy needs no network. Prints the .deb's path.
set -eu
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/rates-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/rates
mkdir -p "$src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion 2>/dev/null) |
    tar -xf - -C "$src"
redoc=tools/api/node_modules/redoc/bundles/redoc.standalone.js
if [ -f "$root/$redoc" ]; then
    mkdir -p "$src/$(dirname "$redoc")"
    cp "$root/$redoc" "$src/$redoc"
    touch "$src/tools/api/node_modules/.rates-installed"
fi
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign >"$work/build.log" 2>&1) ||
    { tail -40 "$work/build.log" >&2; exit 1; }
for f in "$work"/*.deb; do cp "$f" "$out/"; echo "$out/$(basename "$f")"; done
