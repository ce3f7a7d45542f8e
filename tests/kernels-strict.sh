#!/usr/bin/env bash
# Every kernel file compiled as strict OpenCL C 1.2 by clang (-Werror, pedantic, no silent
# float -> double promotion), with each packed-GEMM vector width and Winograd variant the
# runtime can choose.
# Why: PoCL accepts some OpenCL C that vendor compilers reject or run slowly (address-space
# mismatches, implicit vector conversions, double arithmetic from an unsuffixed literal);
# this catches them on a machine with no GPU. Exit 77 (ctest: skipped) without clang.
set -u
kernels=${1:?usage: tests/kernels-strict.sh KERNEL_DIR}
cc=
for c in clang-15 clang-14 clang; do command -v $c >/dev/null 2>&1 && { cc=$c; break; }; done
[ -n "$cc" ] || { echo "kernels-strict: no clang, skipped"; exit 77; }
fail=0
check() {  # file, extra options
    if ! "$cc" -x cl -cl-std=CL1.2 -Xclang -finclude-default-header -fsyntax-only -Werror -Wall -Wextra \
        -Wno-unused-parameter -Wdouble-promotion -pedantic "${@:2}" "$1"; then
        echo "kernels-strict: $1 ${*:2} does not compile as strict OpenCL C 1.2"
        fail=1
    fi
}
n=0
for f in "$kernels"/*.cl; do
    check "$f"
    n=$((n + 1))
done
for vw in 2 4 8 16; do check "$kernels/gemm-packed.cl" -DVW=$vw; done
check "$kernels/winograd.cl" -DWM=4 -DWR=3
[ $fail = 0 ] && echo "kernels-strict: $n kernel files compile as strict OpenCL C 1.2 with $cc"
exit $fail
