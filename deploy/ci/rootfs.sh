#!/bin/sh
# rootfs.sh NAME SUITE [INCLUDE]: prints the path of a debootstrap --variant=minbase root
# filesystem tarball of SUITE with the INCLUDE packages, built once and cached under
# /var/cache/rates-ci (reruns on the same machine take no time). Output of debootstrap goes to
# /var/cache/rates-ci/NAME.log.
set -eu
name=$1
suite=$2
inc=${3:-}
cache=/var/cache/rates-ci
mkdir -p "$cache"
out=$cache/$name.tar
if [ ! -s "$out" ]; then
    d=$(mktemp -d /var/tmp/rdci-rootfs.XXXXXX)
    if ! debootstrap --variant=minbase ${inc:+--include=$inc} "$suite" "$d" http://deb.debian.org/debian >"$cache/$name.log" 2>&1; then
        tail -20 "$cache/$name.log" >&2
        rm -rf "$d"
        exit 1
    fi
    rm -rf "$d"/var/lib/apt/lists/* "$d"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$d" -cf "$out.tmp" . && mv "$out.tmp" "$out"
    rm -rf "$d"
fi
echo "$out"
