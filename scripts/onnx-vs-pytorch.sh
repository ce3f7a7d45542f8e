#!/usr/bin/env bash
# A model exported from PyTorch as ONNX, trained by nincl, against the PyTorch module it came
# from: the import has the built-in model's parameter names and shapes, starts from exactly the
# file's weights, and gives PyTorch's logits (eval and train mode) and SGD steps.
#   scripts/onnx-vs-pytorch.sh MODEL SIZE BATCH [STEPS] [LR]    (ZOO_DUMP=path of zoo-dump)
set -eu
cd "$(dirname "$0")/.."
model=$1; size=$2; batch=$3; steps=${4:-3}; lr=${5:-0.1}
dump=${ZOO_DUMP:-build-test/tests/zoo-dump}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nincl-onnx-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" scripts/onnx-from-pytorch.py --model "$model" --size "$size" --out "$tmp"
"$dump" "$tmp/model.onnx" "$size" "$batch" "$steps" "$lr" "$tmp" "$model"
"$py" scripts/zoo-vs-pytorch.py --model "$model" --dir "$tmp" --lr "$lr" --steps "$steps" \
    --expect-onnx "$tmp/model.onnx" ${ZOO_TOL:+--tol $ZOO_TOL}
