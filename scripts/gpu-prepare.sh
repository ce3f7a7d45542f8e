#!/usr/bin/env bash
# Gathers what scripts/gpu-check.sh needs on a GPU machine that has no OpenCL loader, no
# CLBlast and no network (../shared/gpu.md): the runtime packages, the nincl binary built
# here, and the data set. .gpu/ is ignored by git.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .gpu/bin .gpu/data
(cd .gpu && apt-get download ocl-icd-libopencl1 libclblast1 libcjson1 clinfo)
# nincl and libnincl.so installed into .gpu itself (bin/nincl finds ../lib/libnincl.so through
# its RPATH), without MPI: the GPU machine has no Open MPI libraries
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DNINCL_MPI=OFF -DNINCL_TESTS=OFF >/dev/null
cmake --build build-gpu -j"$(nproc)"
cmake --install build-gpu --prefix .gpu >/dev/null
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/
du -sh .gpu
