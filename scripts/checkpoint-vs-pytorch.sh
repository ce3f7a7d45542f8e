#!/usr/bin/env bash
# Proves that a nincl checkpoint is the PyTorch model: trains a short run (or takes RUN_DIR),
# writes the logits of the first N test images with `nincl eval --logits`, loads the checkpoint
# into the reference nn.Sequential in PyTorch (Debian's python3-torch) and compares the logits.
#   scripts/checkpoint-vs-pytorch.sh [nin|nin-small] [N] [RUN_DIR]
set -eu
cd "$(dirname "$0")/.."
model=${1:-nin}; n=${2:-300}; run=${3:-}
nincl=${NINCL:-build/nincl}
py=${PYTHON:-/usr/bin/python3}
resize=224; [ "$model" = nin-small ] && resize=28
if [ -z "$run" ]; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/nincl-ckpt-XXXXXX")
    trap 'rm -rf "$tmp"' EXIT   # the run made here is not kept
    run=$tmp/run
    "$nincl" train --model "$model" --epochs 1 --train-limit 512 --test-limit 128 --out "$run" --progress off >/dev/null
fi
"$nincl" eval --checkpoint "$run" --test-limit "$n" --logits "$run/logits.npy" | head -1
"$py" scripts/check-checkpoint.py --checkpoint "$run/checkpoint.safetensors" --logits "$run/logits.npy" \
    --model "$model" --resize "$resize" --limit "$n" --tol 1e-4
