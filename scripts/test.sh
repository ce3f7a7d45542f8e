#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds with warnings as errors,
# and runs every test under ctest on the OpenCL device present (PoCL on the CPU in CI).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh build-test -DNINCL_WERROR=ON
cd build-test
ctest --output-on-failure -j1 "$@"
