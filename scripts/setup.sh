#!/usr/bin/env bash
# Installs the Debian packages nincl needs (only those missing), then configures and builds.
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
# protobuf-c reads and writes ONNX files (the C code is generated from libonnx-dev's onnx.proto).
# g++ compiles the public header as C++ (tests/header-alone.sh); Open MPI builds in training
# across processes (tests/mpi-train.sh runs it under mpirun). clang-15 builds the fuzzers
# (tests/fuzz/run.sh; libFuzzer is in its libclang-common-15-dev); PoCL
# depends on it anyway, so it costs nothing extra.
packages="cmake gcc g++ pkg-config ocl-icd-opencl-dev opencl-c-headers libclblast-dev pocl-opencl-icd zlib1g-dev \
libcjson-dev librandom123-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev dataset-fashion-mnist clang-15 libopenmpi-dev openmpi-bin ${NINCL_EXTRA_PACKAGES:-}"
# Mesa's OpenCL (rusticl, and Clover) beside PoCL: scripts/test-rusticl.sh runs the kernel tests
# on rusticl's llvmpipe device, and every test then loads a second vendor's ICDs.
packages="$packages mesa-opencl-icd"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
