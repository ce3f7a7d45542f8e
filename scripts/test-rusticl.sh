#!/usr/bin/env bash
# The device tests that exercise kernels, once more on a second OpenCL implementation: Mesa's
# rusticl on llvmpipe (the CPU), from Debian's mesa-opencl-icd (scripts/setup.sh installs it).
#   scripts/test-rusticl.sh [BUILD_DIR]   (default build-test, as built by scripts/test.sh)
# test-layers runs every layer with every kernel variant and GEMM implementation itself (the
# CPU and GPU variants, the packed GEMM and CLBlast, Winograd and im2col): 130-230 s on
# rusticl on 2 shared cores; test-gemm every GEMM plan against the naive reference (50-100 s);
# test-loop-limit that llvmpipe still ends a work-item's loops where nincl assumes (65535
# iterations, ncl_device_loop_limit), which the packed GEMM's plans and the choice of kernel
# variants keep under; test-zoo-ops the zoo's layers and the branched graph (BatchNorm,
# pooling, add, concat) against references and finite differences (about 50 s); test-nin the
# whole NiN at 224x224 with one finite-difference entry per parameter tensor instead of four
# (NINCL_TEST_NIN_ENTRIES=1: 200 s, four would take over 10 minutes). Fails when rusticl is
# not there: CI must not pass by testing PoCL alone. OCL_ICD_VENDORS is left as found
# (/etc/OpenCL/vendors on CI; a folder holding Mesa's .icd files elsewhere).
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-test}
export RUSTICL_ENABLE=${RUSTICL_ENABLE:-llvmpipe}
export NINCL_PLATFORM=rusticl
unset NINCL_DEVICE NINCL_KERNELS NINCL_GEMM NINCL_CONV
export NINCL_TEST_NIN_ENTRIES=1
if ! "$build/nincl" devices | grep -q "^platform [0-9]*: rusticl"; then
    echo "test-rusticl: no rusticl platform with a device (install mesa-opencl-icd; RUSTICL_ENABLE=$RUSTICL_ENABLE)" >&2
    "$build/nincl" devices >&2 || true
    exit 1
fi
start=$(date +%s)
# a shader cache of this run's own, so that every kernel is compiled here and any warning Mesa
# gives about one shows (it warns once per process, at compile time)
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
export MESA_SHADER_CACHE_DIR="$log/mesa-cache"
if ! (cd "$build" && ctest -V -j2 -R '^(nin|layers|gemm|loop-limit|zoo-ops)$') >"$log/ctest.log" 2>&1; then
    tail -n 150 "$log/ctest.log"
    echo "test-rusticl: FAILED" >&2
    exit 1
fi
grep -E "^[0-9]+/[0-9]+ Test|tests passed" "$log/ctest.log"
# One warning is known and harmless: the Winograd kernels' transform matrices are initialised
# private arrays, which rusticl keeps in a constant buffer; its address is an argument that
# llvmpipe loads inside the (not unrolled) loops reading them, and warns "Treating
# load_kernel_arg in control flow as uniform" - that address is the same for every work-item,
# so uniform is right (test-layers checks Winograd's results here). Any other warning fails.
known="Treating load_kernel_arg in control flow as uniform, results may be incorrect."
if grep -q "MESA: warning: $known" "$log/ctest.log"; then
    echo "test-rusticl: note: Mesa's known warning about the Winograd kernels' constant matrices (harmless, see this script)"
fi
if grep -n "MESA: warning" "$log/ctest.log" | grep -vF "$known" >&2; then
    echo "test-rusticl: Mesa warned about a kernel (above); fix the kernel" >&2
    exit 1
fi
echo "test-rusticl: $(($(date +%s) - start)) s on rusticl"
