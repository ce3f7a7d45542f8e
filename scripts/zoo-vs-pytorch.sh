#!/usr/bin/env bash
# One zoo model against the book's PyTorch model with the same weights: logits in eval and
# train mode and STEPS SGD steps (tests/zoo-dump writes, scripts/zoo-vs-pytorch.py compares).
#   scripts/zoo-vs-pytorch.sh MODEL SIZE BATCH [STEPS] [LR]    (ZOO_DUMP=path of zoo-dump)
set -eu
cd "$(dirname "$0")/.."
model=$1; size=$2; batch=$3; steps=${4:-3}; lr=${5:-0.1}
dump=${ZOO_DUMP:-build-test/tests/zoo-dump}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nincl-zoo-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$dump" "$model" "$size" "$batch" "$steps" "$lr" "$tmp"
"$py" scripts/zoo-vs-pytorch.py --model "$model" --dir "$tmp" --lr "$lr" --steps "$steps" ${ZOO_TOL:+--tol $ZOO_TOL}
