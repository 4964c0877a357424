#!/bin/sh
# build-deb.sh BUILD_DIR OUT_DIR VERSION COMMIT: builds rates_VERSION_ARCH.deb with dpkg-deb
# (no debhelper: one binary, a few files; `make deb` runs it after building BUILD_DIR/ratesd).
# Units come from deploy/systemd/ (the ops engineer's) when present, else deploy/debian/systemd/.
set -eu
build=$1
out=$2
version=$3
commit=$4
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
arch=$(dpkg --print-architecture)
pkg=$(mktemp -d "${TMPDIR:-/tmp}/rates-deb.XXXXXX")
trap 'rm -rf "$pkg"' EXIT
chmod 0755 "$pkg"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/rates" \
    "$pkg/etc/default" "$pkg/usr/share/doc/rates"
install -m 0755 -s "$build/ratesd" "$pkg/usr/bin/ratesd"
if [ -f "$build/rates-load" ]; then install -m 0755 -s "$build/rates-load" "$pkg/usr/bin/rates-load"; fi
for unit in ratesd.socket ratesd.service; do
    src=$here/systemd/$unit
    [ -f "$root/deploy/systemd/$unit" ] && src=$root/deploy/systemd/$unit
    # Whatever path the unit was written for, the package installs ratesd in /usr/bin.
    sed -e 's|^\(Exec[A-Za-z]*=[-+!@]*\)[^ ]*/ratesd|\1/usr/bin/ratesd|' "$src" >"$pkg/lib/systemd/system/$unit"
    chmod 0644 "$pkg/lib/systemd/system/$unit"
done
install -m 0644 "$here/ratesd.conf" "$pkg/etc/rates/ratesd.conf"
install -m 0640 "$here/ratesd.default" "$pkg/etc/default/ratesd"
[ -f "$root/docs/operations.md" ] && install -m 0644 "$root/docs/operations.md" "$pkg/usr/share/doc/rates/operations.md"
[ -f "$root/deploy/systemd/ratesd.env.example" ] && install -m 0644 "$root/deploy/systemd/ratesd.env.example" "$pkg/usr/share/doc/rates/ratesd.env.example"
[ -f "$root/deploy/README.md" ] && install -m 0644 "$root/deploy/README.md" "$pkg/usr/share/doc/rates/README.deploy.md"
printf 'rates %s (commit %s)\n' "$version" "$commit" >"$pkg/usr/share/doc/rates/VERSION"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$pkg/DEBIAN/$s"; done
printf '/etc/rates/ratesd.conf\n/etc/default/ratesd\n' >"$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
# Depends from the binaries' NEEDED libraries (dpkg-shlibdeps, from dpkg-dev), plus adduser.
depends="libc6 (>= 2.34), libmicrohttpd12, libpq5, libjansson4, libyajl2, libcurl4, libssl3"
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    shl=$(mktemp -d "${TMPDIR:-/tmp}/rates-shl.XXXXXX")
    mkdir -p "$shl/debian"
    printf 'Source: rates\n\nPackage: rates\nArchitecture: any\n' >"$shl/debian/control"
    bins=""
    for b in "$pkg"/usr/bin/*; do bins="$bins $b"; done
    # shellcheck disable=SC2086
    if shl_out=$(cd "$shl" && dpkg-shlibdeps -O $bins 2>/dev/null); then
        depends=${shl_out#shlibs:Depends=}
    fi
    rm -rf "$shl"
fi
cat >"$pkg/DEBIAN/control" <<EOC
Package: rates
Version: $version
Architecture: $arch
Maintainer: rates team <rates@example.invalid>
Section: net
Priority: optional
Installed-Size: $size
Depends: $depends, adduser
Recommends: postgresql-client
Suggests: postgresql (>= 13)
Description: freight-rates HTTP service (ratesd)
 ratesd serves average daily freight rates from PostgreSQL over HTTP and ingests
 price batches. Socket-activated systemd service (zero-downtime restarts),
 migrations compiled into the binary. Built from commit $commit.
EOC
mkdir -p "$out"
deb=$out/rates_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
