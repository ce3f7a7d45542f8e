#!/usr/bin/env bash
# The Debian package on this machine (CI: a clean one): build it, check that Depends names
# the runtime libraries, install it with apt (which pulls in what Depends lists), then run the
# installed command and build the installed example with pkg-config and with find_package
# against /usr, train a few steps with each, and remove the package. Needs root (or sudo).
#   tests/deb-install.sh
set -eu
cd "$(dirname "$0")/.."
deb=$(scripts/package-deb.sh)
depends=$(dpkg-deb -f "$deb" Depends)
echo "$deb: Depends: $depends"
for lib in libclblast1 ocl-icd-libopencl1 zlib1g libcjson1 libc6; do
    case "$depends" in *"$lib"*) ;; *) echo "deb-install: Depends lacks $lib" >&2; exit 1 ;; esac
done
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq "$deb" >/dev/null
tmp=$(mktemp -d)
trap '$sudo apt-get remove -y -qq nincl >/dev/null; rm -rf "$tmp"' EXIT
/usr/bin/nincl --version
/usr/bin/nincl train --model nin-small --train-limit 128 --test-limit 64 --epochs 1 --out "$tmp/cmd" --progress off |
    tail -n 3
examples=/usr/share/doc/nincl/examples
cc -Wall -Wextra -Werror $examples/train-nin-small.c -o "$tmp/example-pc" $(pkg-config --cflags --libs nincl)
"$tmp/example-pc" "$tmp/run-pc" 128 | tail -n 1
cmake -S $examples -B "$tmp/example-cmake" >/dev/null
cmake --build "$tmp/example-cmake" >/dev/null
"$tmp/example-cmake/train-nin-small" "$tmp/run-cmake" 128 | tail -n 1
echo "deb-install: ok"
