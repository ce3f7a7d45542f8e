#!/usr/bin/env bash
# The Debian package on a fresh Debian 12: debootstrap a minimal bookworm into a folder, install
# the .deb there with apt (only what its Depends pulls in, plus PoCL and the data set as the
# package recommends), run the command (devices, a short training run), then install a compiler
# and build the installed example with pkg-config and with find_package, and train with each.
# Needs root and the Debian mirror (CI has both); about two minutes.
#   tests/deb-fresh.sh [DEB]      (default: scripts/package-deb.sh builds it)
set -eu
cd "$(dirname "$0")/.."
deb=${1:-$(scripts/package-deb.sh)}
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
root=$(mktemp -d /var/tmp/nincl-deb-fresh-XXXXXX)
cleanup() {
    umount "$root/proc" "$root/sys" 2>/dev/null || true
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
    { tail -n 20 "$root.log"; exit 1; }
rm -f "$root.log"
cp "$deb" "$root/tmp/nincl.deb"
cp examples/train-nin-small.c "$root/tmp/"
mount --bind /proc "$root/proc"
mount --bind /sys "$root/sys"   # PoCL reads the CPU topology and memory size there
chroot "$root" /bin/bash -euc '
    export DEBIAN_FRONTEND=noninteractive
    echo "fresh Debian $(cat /etc/debian_version): $(dpkg-query -W | wc -l) packages"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends /tmp/nincl.deb pocl-opencl-icd dataset-fashion-mnist >/dev/null
    nincl --version
    nincl devices
    nincl train --model nin-small --train-limit 256 --test-limit 128 --epochs 1 --out /tmp/run --progress off | tail -n 3
    apt-get install -y -qq --no-install-recommends gcc libc6-dev pkg-config cmake make >/dev/null
    examples=/usr/share/doc/nincl/examples
    cmp $examples/train-nin-small.c /tmp/train-nin-small.c
    cc -Wall -Wextra -Werror $examples/train-nin-small.c -o /tmp/example-pc $(pkg-config --cflags --libs nincl)
    /tmp/example-pc /tmp/run-pc 128 | tail -n 1
    cmake -S $examples -B /tmp/example-cmake >/dev/null
    cmake --build /tmp/example-cmake >/dev/null
    /tmp/example-cmake/train-nin-small /tmp/run-cmake 128 | tail -n 1
'
echo "deb-fresh: ok"
