#!/usr/bin/env bash
# Builds the Debian package: a Release build for /usr in build-deb/, then cpack -G DEB.
# Depends is filled by dpkg-shlibdeps (dpkg-dev) from the libraries the binaries link.
#   scripts/package-deb.sh            prints the path of the .deb
set -eu
cd "$(dirname "$0")/.."
NINCL_EXTRA_PACKAGES="dpkg-dev ${NINCL_EXTRA_PACKAGES:-}" scripts/setup.sh build-deb \
    -DCMAKE_INSTALL_PREFIX=/usr -DNINCL_TESTS=OFF -DNINCL_WERROR=ON >/dev/null
(cd build-deb && cpack -G DEB >cpack.log) || { cat build-deb/cpack.log >&2; exit 1; }
ls "$PWD"/build-deb/nincl_*.deb
