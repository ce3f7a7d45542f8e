#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds with warnings as errors,
# and runs every test under ctest on the OpenCL device present (PoCL on the CPU in CI).
#   scripts/test.sh [--sanitize] [ctest args...]
# --sanitize builds into build-san/ with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DNINCL_SANITIZE=ON; any report fails its test, see tests/sanitizers/lsan.supp).
set -eu
cd "$(dirname "$0")/.."
build=build-test
options="-DNINCL_WERROR=ON"
if [ "${1:-}" = --sanitize ]; then
    shift
    build=build-san
    options="$options -DNINCL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo"
fi
# the checkpoint test loads a nincl checkpoint into the reference model in Debian's PyTorch
export NINCL_EXTRA_PACKAGES="python3-torch python3-numpy"
# shellcheck disable=SC2086
scripts/setup.sh "$build" $options
cd "$build"
ctest --output-on-failure -j1 "$@"
