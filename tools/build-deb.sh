#!/bin/sh
# tools/build-deb.sh OUT_DIR: builds the Debian package the Debian way (debian/, debhelper,
# dpkg-buildpackage -b) from a copy of the source tree, so the build never touches the work
# tree (dh_clean, debian/build). In a clone the copy is what git tracks plus untracked files it
# does not ignore; without git (a `make dist` or `git archive` tarball) it is the tree minus what
# the .gitignore files name (build outputs, var/, the dump, node_modules, debhelper's leftovers).
# The copy's COMMIT file gets the commit ($COMMIT from make, else COMMIT or git here), so the
# packaged programs name it either way. Redoc's bundle (tools/api) is copied in when it is
# installed, so the copy needs no network. Prints the .deb's path.
set -eu
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/rates-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/rates
mkdir -p "$src"

# in_clone: true when $root is the top of a git work tree (not a tarball unpacked somewhere
# inside another clone, whose git would list nothing of it).
in_clone() {
    command -v git >/dev/null 2>&1 || return 1
    prefix=$(cd "$root" && git rev-parse --show-prefix 2>/dev/null) || return 1
    [ -z "$prefix" ]
}

# tree_files: the source files, NUL-separated, relative to $root.
tree_files() {
    if in_clone && [ -z "${RATES_DEB_NO_GIT:-}" ]; then
        git ls-files -z --cached --others --exclude-standard
        return
    fi
    # The same files as .gitignore, debian/.gitignore and tools/api/.gitignore leave to git.
    find . \( -path ./.git -o -path './build*' -o -path ./var -o -path ./.run -o -path ./.secrets \
        -o -path ./.env -o -path ./db/rates.sql -o -path './db/*.sql.gz' \
        -o -name '*.o' -o -name '*.d' -o -name __pycache__ -o -name .pytest_cache \
        -o -path ./debian/build -o -path ./debian/.debhelper -o -path ./debian/rates \
        -o -path ./debian/files -o -name '*.substvars' -o -name '*.debhelper' \
        -o -name '*.debhelper.log' -o -name debhelper-build-stamp \
        -o -path ./tools/api/node_modules -o -path ./tools/api/.setup.lock \) -prune \
        -o \( -type f -o -type l \) -print0 | sed -z 's|^\./||'
}
(cd "$root" && tree_files | tar -cf "$work/tree.tar" --null --no-recursion -T -) ||
    { echo "build-deb: could not copy the source tree of $root" >&2; exit 1; }
tar -xf "$work/tree.tar" -C "$src"
rm -f "$work/tree.tar"

commit=${COMMIT:-}
if [ -z "$commit" ] || [ "$commit" = unknown ]; then
    commit=$(sed -n 's/^\([0-9a-f]\{12\}\)[0-9a-f]*$/\1/p' "$root/COMMIT" 2>/dev/null || true)
    if [ -z "$commit" ] && in_clone; then
        commit=$(cd "$root" && git rev-parse --short=12 HEAD 2>/dev/null) || commit=""
    fi
fi
case $commit in
[0-9a-f]*) echo "$commit" >"$src/COMMIT" ;;
*) echo "build-deb: warning: the commit is unknown (no git, no filled-in COMMIT file)" >&2 ;;
esac

redoc=tools/api/node_modules/redoc/bundles/redoc.standalone.js
if [ -f "$root/$redoc" ]; then
    mkdir -p "$src/$(dirname "$redoc")"
    cp "$root/$redoc" "$src/$redoc"
    touch "$src/tools/api/node_modules/.rates-installed"
fi
# -j: MAKEFLAGS for debian/rules's make of the project (parallel-safe: make test builds -j).
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign -j"$(nproc 2>/dev/null || echo 2)" >"$work/build.log" 2>&1) ||
    { tail -40 "$work/build.log" >&2; exit 1; }
for f in "$work"/*.deb; do cp "$f" "$out/"; echo "$out/$(basename "$f")"; done
