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
# the checkpoint and zoo tests run the reference models in Debian's PyTorch; the ONNX tests export
# from it, read the files with python3-onnx and run nincl's exports in OpenCV's dnn
export NINCL_EXTRA_PACKAGES="python3-torch python3-numpy python3-onnx libopencv-dnn-dev"
# shellcheck disable=SC2086
scripts/setup.sh "$build" $options
cd "$build"
# two tests at a time: each spends much of its time in one thread (PoCL compiling kernels,
# Python, process start), so on 2 cores the suite takes 366 s instead of 427 (PoCL's kernel cache
# empty, as in CI); no test shares files or ports with another (mkdtemp folders throughout)
ctest --output-on-failure -j2 "$@"
