#!/usr/bin/env bash
# The main job of the README: installs what is missing, builds, and trains NiN on
# Fashion-MNIST with the d2l recipe on the best device (the first GPU, else the CPU through
# PoCL). Flags pass through to `nincl train`, e.g. --train-limit 2000 --test-limit 500 --epochs 1.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh build >/dev/null
exec build/nincl train "$@"
