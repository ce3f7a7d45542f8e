#!/usr/bin/env bash
# Data parallel scaling on this machine, in one run: the same training (default NiN at 224,
# batch 128, the first TRAIN images of Fashion-MNIST, one epoch) by one process with every
# PoCL thread, by 2 MPI ranks of one PoCL thread each, and by 2 replicas in one process; each
# line gives examples/s, the ratio to the one process, and the per-step compute and gradient
# reduction times the run reports.
#   bench/scaling.sh [NINCL_BINARY] [TRAIN_IMAGES] [extra nincl train flags...]
set -eu
nincl=${1:-build/nincl}
images=${2:-768}
shift $(( $# > 2 ? 2 : $# ))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cores=$(nproc)
args="--train-limit $images --test-limit 128 --epochs 1 --progress off $*"
speed() { sed -n 's/^\([0-9.]*\) examples\/sec on .*/\1/p' "$1" | tail -n 1; }
parallel() { sed -n 's/^data parallel: \(.*\)/\1/p' "$1"; }
"$nincl" train $args --out "$tmp/one" >"$tmp/one.log"
base=$(speed "$tmp/one.log")
echo "1 process, $cores PoCL threads: $base examples/s"
POCL_MAX_PTHREAD_COUNT=$((cores / 2)) mpirun --oversubscribe -np 2 -x POCL_MAX_PTHREAD_COUNT \
    "$nincl" train $args --out "$tmp/ranks" >"$tmp/ranks.log" 2>&1
r=$(speed "$tmp/ranks.log")
echo "2 MPI ranks, $((cores / 2)) thread(s) each: $r examples/s, $(awk "BEGIN { printf \"%.2f\", $r / $base }")x; $(parallel "$tmp/ranks.log")"
"$nincl" train $args --devices 0:0,0:0 --out "$tmp/replicas" >"$tmp/replicas.log"
r=$(speed "$tmp/replicas.log")
echo "2 replicas in 1 process: $r examples/s, $(awk "BEGIN { printf \"%.2f\", $r / $base }")x; $(parallel "$tmp/replicas.log")"
