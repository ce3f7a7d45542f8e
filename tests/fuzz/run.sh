#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ (-DNINCL_FUZZ=ON: ASan + UBSan +
# coverage) and runs each for SECONDS (default 60) from its seed corpus in the repository
# (tests/fuzz/corpus-<target>/). New inputs go to a scratch folder first, so the repository's
# corpus is never written. Any crash, sanitizer report, leak or hang (> 30 s on one input)
# fails the script and leaves the input in build-fuzz/artifacts/.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      targets: idx safetensors checkpoint onnx tune
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
targets=${*:-idx safetensors checkpoint onnx tune}

CC=${NINCL_FUZZ_CC:-clang-15} scripts/setup.sh build-fuzz -DNINCL_FUZZ=ON -DNINCL_TESTS=OFF

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:print_suppressions=0
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# the checkpoint and ONNX targets load the OpenCL ICDs: all but Clover (the script says why)
tests/sanitizers/icd-vendors-without-clover.sh "$scratch/vendors"
export OCL_ICD_VENDORS=$scratch/vendors
mkdir -p build-fuzz/artifacts
status=0
for t in $targets; do
    mkdir -p "$scratch/$t"
    log=build-fuzz/fuzz-$t.log
    echo "fuzz-$t: ${secs} s from tests/fuzz/corpus-$t (log: $log)"
    if TMPDIR=$scratch build-fuzz/fuzz-$t -max_total_time="$secs" -print_final_stats=1 -timeout=30 \
        -artifact_prefix="build-fuzz/artifacts/$t-" "$scratch/$t" "tests/fuzz/corpus-$t" >"$log" 2>&1; then
        # the last progress line (coverage, corpus) and the final counts
        grep -E '^#[0-9]+' "$log" | tail -1 | sed 's/^/  /'
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
            sed 's/^/  /'
    else
        status=1
        echo "fuzz-$t FAILED; the end of its log:"
        tail -60 "$log"
        ls build-fuzz/artifacts/
    fi
done
exit $status
