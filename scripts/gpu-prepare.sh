#!/usr/bin/env bash
# Gathers what scripts/gpu-check.sh needs on a GPU machine that has no OpenCL loader, no
# CLBlast and no network (../shared/gpu.md): the runtime packages, the nincl binary built
# here, and the data set. .gpu/ is ignored by git.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .gpu/bin .gpu/data
(cd .gpu && apt-get download ocl-icd-libopencl1 libclblast1 libcjson1 clinfo)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nincl-app
cp build/nincl .gpu/bin/nincl
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/
du -sh .gpu
