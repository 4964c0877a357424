#!/bin/sh
# tests/pg13/chroot.sh: prints the path of a Debian 11 (bullseye) root with postgresql-13,
# unpacked once under /var/cache/rates-ci and reused (a rerun takes no time). The tarball is
# the deploy stage's (deploy/ci/rootfs.sh bullseye-pg13), so the two share one debootstrap.
# Bullseye's binaries need bullseye's libraries (libssl1.1, libicu67): the harness runs
# initdb/pg_ctl inside this root (chroot, as its postgres user; RATES_PG_CHROOT) and talks to
# the server over 127.0.0.1, which the chroot shares. Nothing is mounted: PostgreSQL 13 needs
# neither /proc nor /dev/shm (initdb picks System V shared memory when /dev/shm is absent).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=/var/cache/rates-ci
root=$cache/bullseye-pg13.root
if [ ! -f "$root/.rates-ready" ]; then
    tar=$(sh "$here/../../deploy/ci/rootfs.sh" bullseye-pg13 bullseye postgresql-13,postgresql-client-13)
    rm -rf "$root.tmp"
    mkdir -p "$root.tmp"
    tar --numeric-owner -C "$root.tmp" -xf "$tar"
    [ -x "$root.tmp/usr/lib/postgresql/13/bin/postgres" ] || { echo "chroot.sh: no postgres 13 in $tar" >&2; exit 1; }
    # The package's own cluster (13/main) is never started; clusters live in var/tmp.
    chmod 755 "$root.tmp"   # the tarball's top directory is mktemp's 0700
    chmod 1777 "$root.tmp/var/tmp"
    touch "$root.tmp/.rates-ready"
    rm -rf "$root"
    mv "$root.tmp" "$root"
fi
echo "$root"
