#!/bin/sh
# Installs the Debian packages the project needs, only those that are missing (one dpkg-query
# when nothing is: a fraction of a second, so every target can call it).
# Usage: scripts/deps.sh [--check] [KIND...]   (default: build; --check lists what is missing,
# installs nothing, exits 1 when something is)
#   build   scripts/packages-build.txt: compile and run ratesd (make, make up)
#   test    build + scripts/packages-test.txt (make test, make ha-up)
#   deb     build + dpkg-dev and debhelper (make deb: debian/control's Build-Depends)
#   image   docker.io (make image, when there is no docker)
#   deploy  build + deploy/ci/packages.txt: docker, podman, iptables, debhelper, ansible...
#           (make deploy-check, make ha-deploy-check)
set -eu
here=$(dirname "$0")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
lists=""
extra=""
check=""
[ "${1:-}" != --check ] || { check=1; shift; }
[ $# -gt 0 ] || set -- build
for kind in "$@"; do
    case $kind in
    build) lists="$lists $here/packages-build.txt" ;;
    test) lists="$lists $here/packages-build.txt $here/packages-test.txt" ;;
    deb) lists="$lists $here/packages-build.txt" extra="$extra dpkg-dev debhelper" ;;
    image) extra="$extra docker.io" ;;
    deploy) lists="$lists $here/packages-build.txt $here/../deploy/ci/packages.txt" ;;
    *)
        echo "usage: $0 [--check] [build|test|deb|image|deploy]..." >&2
        exit 2
        ;;
    esac
done
# shellcheck disable=SC2086 # lists: file names without spaces
wanted=$({ [ -z "$lists" ] || sed 's/#.*//' $lists; echo "$extra"; } | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u)
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${Status}\n' $wanted 2>/dev/null |
    awk '$NF == "installed" && $(NF-1) == "ok" { print $1 }' | sort -u)
missing=$(echo "$wanted" | grep -vxF -e "$installed" | tr '\n' ' ' || true)
if [ -z "${missing% }" ]; then
    exit 0
fi
if [ -n "$check" ]; then
    echo "rates: missing Debian packages: $missing"
    exit 1
fi
echo "rates: installing Debian packages: $missing"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "rates: no apt-get here; install these packages yourself: $missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt (CI, a colleague's make) may hold the lock: wait for it instead of failing.
as_root apt-get update -qq -o DPkg::Lock::Timeout=300 ||
    echo "rates: apt-get update failed; trying the install with the lists there are" >&2
# shellcheck disable=SC2086
as_root apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends $missing >/dev/null
