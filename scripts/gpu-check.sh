#!/usr/bin/env bash
# One GPU run, as ../shared/gpu.md describes: OpenCL from packages brought in .gpu/, then
# devices, nincl bench at batch 128 and 256 (again with CLBlast's split K, NINCL_GEMM_SPLITK=1,
# and with Winograd, NINCL_CONV=winograd: bench-splitk-bB.log, bench-winograd-bB.log), PyTorch
# on the same GPU (TF32 off and on), and the full d2l recipe with the faster variants. Every log
# goes into OUTDIR as it is written, so a run cut short still leaves what it did.
#
#   scripts/gpu-check.sh OUTDIR            the full check
#   GPU_CHECK_SHORT=1 scripts/gpu-check.sh OUTDIR   a few-minute rehearsal (PoCL here)
#   GPU_CHECK_RESUME=RUNDIR scripts/gpu-check.sh OUTDIR
#                                          a second call when the first one's time ran out:
#                                          no benches, the recipe continues from RUNDIR's
#                                          checkpoint (a copy of the first call's OUTDIR/run)
# Knobs: GPU_CHECK_SECONDS (time budget; training stops cleanly before it), GPU_CHECK_BATCHES
# ("128 256"), GPU_CHECK_TORCH (1: run PyTorch too), GPU_CHECK_TRAIN_ARGS (extra train flags).
#
# Expects: .gpu/*.deb (ocl-icd-libopencl1 libclblast1 libcjson1 clinfo), .gpu/bin/nincl (built
# here), .gpu/data/*.gz (Fashion-MNIST). Prepare them with scripts/gpu-prepare.sh.
set -u
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
log="$out/gpu.log"
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
say() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"; }
short=${GPU_CHECK_SHORT:-0}
nincl=${NINCL:-.gpu/bin/nincl}

say "gpu-check: short=$short host=$(hostname) date=$(date -u +%F)"
# 1. OpenCL: the ICD loader and CLBlast from the brought packages, the vendor's driver found on disk
if ls .gpu/*.deb >/dev/null 2>&1; then
    rm -rf /tmp/gpu && mkdir -p /tmp/gpu
    for f in .gpu/*.deb; do dpkg -x "$f" /tmp/gpu; done
    export LD_LIBRARY_PATH=/tmp/gpu/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
dev=()
if command -v nvidia-smi >/dev/null 2>&1; then
    # The NVIDIA machine: its driver's OpenCL alone, so a CPU platform installed beside it
    # (PoCL) can never be measured by mistake, and every command insists on a GPU.
    lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl.so.1/ {print $NF; exit}')
    [ -n "$lib" ] || lib=$(find /usr/local/nvidia /usr/lib /usr/lib64 -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
    [ -n "$lib" ] || lib=$(timeout 60 find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
    say "nvidia opencl library: ${lib:-not found}"
    mkdir -p /tmp/gpu/vendors
    rm -f /tmp/gpu/vendors/*.icd
    [ -n "$lib" ] && echo "$lib" > /tmp/gpu/vendors/nvidia.icd
    # a CPU OpenCL the machine has of its own (PoCL and its LLVM do not fit what a call
    # carries) joins only the data parallel bench below, by name
    [ -f /etc/OpenCL/vendors/pocl.icd ] && cp /etc/OpenCL/vendors/pocl.icd /tmp/gpu/vendors/
    export OCL_ICD_VENDORS=/tmp/gpu/vendors
    dev=(--device gpu)
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$log"
[ -x /tmp/gpu/usr/bin/clinfo ] && /tmp/gpu/usr/bin/clinfo -l 2>&1 | tee -a "$log"

# 2. devices
say "nincl devices"
"$nincl" devices 2>&1 | tee -a "$log"
torch=${GPU_CHECK_TORCH:-1}

# 3. benchmarks: ours, then PyTorch on the same device (CUDA when there is one)
steps=5; resize=224; batches=${GPU_CHECK_BATCHES:-128 256}
[ "$short" = 1 ] && { steps=1; resize=96; batches="8"; }
resume=${GPU_CHECK_RESUME:-}
[ -n "$resume" ] && batches=""
py=${PYTHON:-python3}
torch_dev=cpu
"$py" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && torch_dev=cuda
# Opt-in variants, each benched beside the default in its own files (bench.jsonl keeps one nincl
# row a batch): split K on CLBlast's weight-gradient GEMMs (runtime/gemm/gemm-clblast.c) and
# Winograd for the 3x3 and 5x5 layers (runtime/ops/conv-winograd.c, the default on CPUs only).
bench_variant() {  # name, VAR=value, batch
    say "nincl bench batch $3, $2"
    env "$2" "$nincl" bench "${dev[@]}" --model nin --batch "$3" --resize $resize --steps $steps --warmup 1 2>&1 |
        tee "$out/bench-$1-b$3.log"
    env "$2" "$nincl" bench "${dev[@]}" --model nin --batch "$3" --resize $resize --steps $steps --warmup 1 --json \
        >> "$out/bench-$1.jsonl" 2>>"$log"
}
for b in $batches; do
    say "nincl bench batch $b"
    "$nincl" bench "${dev[@]}" --model nin --batch "$b" --resize $resize --steps $steps --warmup 1 2>&1 | tee -a "$log"
    "$nincl" bench "${dev[@]}" --model nin --batch "$b" --resize $resize --steps $steps --warmup 1 --json \
        >> "$out/bench.jsonl" 2>>"$log"
    bench_variant splitk NINCL_GEMM_SPLITK=1 "$b"
    bench_variant winograd NINCL_CONV=winograd "$b"
    for tf32 in off on; do
        [ "$torch" = 1 ] || continue
        [ "$torch_dev" = cpu ] && [ $tf32 = on ] && continue
        say "pytorch ($torch_dev, tf32 $tf32) batch $b"
        "$py" bench/torch-bench.py --model nin --batch "$b" --resize $resize --steps $steps --warmup 1 \
            --device $torch_dev --tf32 $tf32 >> "$out/bench.jsonl" 2>>"$log"
        tail -n 1 "$out/bench.jsonl" | tee -a "$log"
    done
done
"$py" - "$out/bench.jsonl" <<'PY' 2>&1 | tee -a "$log"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
ours = {r["batch"]: r for r in rows if r.get("framework") == "nincl"}
for r in rows:
    if r.get("framework") != "pytorch" or r["batch"] not in ours:
        continue
    o = ours[r["batch"]]
    print("batch %d, pytorch tf32 %s: train %.1f vs %.1f img/s (ratio %.2f), infer %.1f vs %.1f (ratio %.2f), "
          "memory %.0f vs %.0f MiB" % (r["batch"], r.get("tf32"), o["train_images_per_sec"], r["train_images_per_sec"],
          o["train_images_per_sec"] / r["train_images_per_sec"], o["infer_images_per_sec"],
          r["infer_images_per_sec"], o["infer_images_per_sec"] / r["infer_images_per_sec"],
          o["peak_device_bytes"] / 2**20, r["peak_bytes"] / 2**20))
PY

# 3b. data parallel: the GPU with the CPU beside it, --split auto (shares by measured speed; a
#     device under 5% of the total gets none, so this must not be slower than the GPU alone,
#     which bench runs beside it), when the machine has a CPU OpenCL device; the rehearsal
#     runs two replicas on its one device
pair=""
if [ -z "$resume" ] && [ "${#dev[@]}" -gt 0 ]; then
    "$nincl" devices 2>/dev/null | grep -q "type CPU" && pair=gpu,cpu ||
        say "data parallel bench skipped: no CPU OpenCL device on this machine"
elif [ -z "$resume" ]; then
    pair=0:0,0:0
fi
if [ -n "$pair" ]; then
    b=${batches%% *}
    say "nincl bench --devices $pair --split auto batch $b"
    "$nincl" bench --devices "$pair" --split auto --data .gpu/data --model nin --batch "$b" --resize $resize --steps $steps 2>&1 |
        tee "$out/bench-split-auto.log"
fi

# 4. the reference recipe: 10 epochs, lr 0.1, batch 128, 224x224, seed 1; bounded by
#    GPU_CHECK_SECONDS (from the script's start) so the script itself ends in time. SIGTERM
#    makes nincl save a checkpoint and stop cleanly; GPU_CHECK_RESUME continues it. Each variant
#    is on for the recipe when the first batch's bench above measured it more than 2% faster
#    (they change only the order of sums and the rounding).
train_images_per_sec() {  # the first nincl row's training speed in a bench JSON file
    sed -n 's/.*"framework": *"nincl".*"train_images_per_sec": *\([0-9.]*\).*/\1/p' "$1" 2>/dev/null | head -1
}
faster() {  # variant name: 1 when its first-batch training beat the default's by more than 2%, else 0
    local plain v
    plain=$(train_images_per_sec "$out/bench.jsonl"); v=$(train_images_per_sec "$out/bench-$1.jsonl")
    say "training ${plain:-?} img/s, with $1 ${v:-?} (first batch)" >&2
    awk -v a="${plain:-0}" -v b="${v:-0}" 'BEGIN { print (b > a * 1.02) ? 1 : 0 }'
}
split=${NINCL_GEMM_SPLITK:-}; conv=${NINCL_CONV:-}
# a resumed run keeps the first call's choices (OUTDIR/recipe.env beside the run folder)
if [ -n "$resume" ] && [ -f "$resume/../recipe.env" ]; then
    . "$resume/../recipe.env"
    split=${split:-$recipe_splitk}; conv=${conv:-$recipe_conv}
fi
[ -z "$split" ] && [ -s "$out/bench-splitk.jsonl" ] && split=$(faster splitk)
[ -z "$conv" ] && [ -s "$out/bench-winograd.jsonl" ] && { [ "$(faster winograd)" = 1 ] && conv=winograd || conv=auto; }
printf 'recipe_splitk=%s\nrecipe_conv=%s\n' "$split" "$conv" > "$out/recipe.env"
say "the recipe runs with NINCL_GEMM_SPLITK=${split:-unset} NINCL_CONV=${conv:-unset}"
[ -n "$split" ] && export NINCL_GEMM_SPLITK=$split
[ -n "$conv" ] && export NINCL_CONV=$conv
left=$(( ${GPU_CHECK_SECONDS:-100000} - SECONDS - 15 ))
[ $left -gt 30 ] || left=30
if [ -n "$resume" ]; then
    say "nincl train --resume (reference recipe, continued from $resume)"
    [ "$resume" -ef "$out/run" ] || { rm -rf "$out/run" && cp -r "$resume" "$out/run" && chmod -R u+w "$out/run"; }
    timeout -s TERM $left "$nincl" train "${dev[@]}" --resume "$out/run" --data .gpu/data --progress off \
        2>&1 | tee -a "$out/train.log"
else
    say "nincl train (reference recipe)"
    read -r -a extra <<< "${GPU_CHECK_TRAIN_ARGS:-}"
    [ "$short" = 1 ] && extra=(--epochs 2 --resize 96 --train-limit 512 --test-limit 256)
    timeout -s TERM $left "$nincl" train "${dev[@]}" --model nin --seed 1 --data .gpu/data --out "$out/run" \
        --progress off "${extra[@]}" 2>&1 | tee "$out/train.log"
fi
say "done"
