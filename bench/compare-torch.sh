#!/usr/bin/env bash
# Compare `nincl bench` with the same model in PyTorch, side by side.
#
#   bench/compare-torch.sh [--model M] [--nincl PATH] [--batch B] [--resize R] [--steps N]
#                          [--warmup W] [--device cpu|cuda] [--threads T]
#                          [--log FILE] [-- extra nincl flags]
#
# Runs   $NINCL bench --model M --batch B --resize R --steps N --json [extra]
# and    bench/torch-bench.py --model M --batch B --resize R --steps N
#            --warmup W --device D   (twice: on cuda --tf32 off, then on; on cpu
#            --memory-format contiguous (PyTorch's default), then channels_last)
# then prints a table: figure | nincl | pytorch (each variant) | nincl/pytorch.
# Throughput ratios: higher is better for nincl.  Startup and memory ratios:
# lower is better for nincl.  On cpu the PyTorch memory figure is the growth
# of the process peak RSS, not device memory; on cuda it is
# torch.cuda.max_memory_allocated() over the timed training steps.
#
# Defaults: --model nin (any zoo model: the book's PyTorch module from scripts/d2l_zoo.py),
# --nincl $NINCL or build/nincl, --batch 128, --resize 224 (the model's size for the zoo),
# --steps 5, --warmup 1 (PyTorch only), --device cpu, --threads all cores.
#
# Environment:
#   NINCL                   nincl binary (same as --nincl).
#   PYTHON                  interpreter for torch-bench.py and JSON parsing.
#                           Default: /usr/bin/python3 if it imports torch
#                           (with CUDA, for --device cuda), else python3.
#   NINCL_BENCH_JSON_FILE   do not run nincl; take its JSON from this file (the
#                           last JSON line that is not a PyTorch one, so a
#                           --log file works).  For re-printing old runs.
#   TORCH_BENCH_JSON_FILE   do not run PyTorch; take its JSON lines
#                           ("framework": "pytorch") from this file, the last
#                           one per variant.  With both set, the table of
#                           an old --log file is re-printed without running
#                           anything:
#       NINCL_BENCH_JSON_FILE=run.jsonl TORCH_BENCH_JSON_FILE=run.jsonl \
#           bench/compare-torch.sh
#
# Exit status: 0 if every run that was asked for succeeded, 1 otherwise
# (the table is still printed with what there is).
set -u

here=$(cd "$(dirname "$0")" && pwd)
nincl=${NINCL:-build/nincl}
model=nin batch=128 resize='' steps=5 warmup=1 device=cpu threads='' log=''
extra=()

usage() { sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }
need() { [ $# -ge 2 ] || { echo "compare-torch: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --model)   need "$@"; model=$2; shift 2 ;;
    --nincl)   need "$@"; nincl=$2; shift 2 ;;
    --batch)   need "$@"; batch=$2; shift 2 ;;
    --resize)  need "$@"; resize=$2; shift 2 ;;
    --steps)   need "$@"; steps=$2; shift 2 ;;
    --warmup)  need "$@"; warmup=$2; shift 2 ;;
    --device)  need "$@"; device=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --log)     need "$@"; log=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "compare-torch: unknown argument $1" >&2; usage 2 ;;
  esac
done
case $device in cpu|cuda) ;; *) echo "compare-torch: --device cpu|cuda" >&2; exit 2 ;; esac
if [ -z "$resize" ]; then
  case $model in lenet|lenet-bn|nin-small) resize=28 ;; googlenet|resnet18|densenet) resize=96 ;; *) resize=224 ;; esac
fi

if [ -z "${PYTHON:-}" ]; then
  probe='import torch'
  [ "$device" = cuda ] && probe='import torch; assert torch.cuda.is_available()'
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "$probe" 2>/dev/null; then
    PYTHON=/usr/bin/python3
  else
    PYTHON=python3
  fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare-torch.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0

# Print the last JSON object line of a file, optionally only pytorch ones or
# only non-pytorch ones.
json_lines() {  # file mode(nincl|torch)
  "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
path, mode = sys.argv[1], sys.argv[2]
objs = []
for line in open(path, errors="replace"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if not isinstance(o, dict):
        continue
    is_torch = o.get("framework") == "pytorch"
    if (mode == "torch") == is_torch:
        objs.append(o)
if mode == "nincl":
    objs = objs[-1:]
else:  # last one per (tf32, memory format), in order of first appearance
    last = {}
    for o in objs:
        last[(o.get("tf32"), o.get("memory_format"))] = o
    objs = list(last.values())
for o in objs:
    print(json.dumps(o))
EOF
}

# ---- nincl
if [ -n "${NINCL_BENCH_JSON_FILE:-}" ]; then
  echo "compare-torch: nincl figures from $NINCL_BENCH_JSON_FILE" >&2
  json_lines "$NINCL_BENCH_JSON_FILE" nincl > "$tmp/nincl.json" || status=1
else
  cmd=("$nincl" bench --model "$model" --batch "$batch" --resize "$resize" --steps "$steps" --json
       ${extra[@]+"${extra[@]}"})
  echo "compare-torch: ${cmd[*]}" >&2
  if "${cmd[@]}" > "$tmp/nincl.out"; then
    json_lines "$tmp/nincl.out" nincl > "$tmp/nincl.json"
  else
    echo "compare-torch: nincl bench failed (exit $?)" >&2
    status=1
    json_lines "$tmp/nincl.out" nincl > "$tmp/nincl.json" 2>/dev/null
  fi
fi
[ -s "$tmp/nincl.json" ] || { echo "compare-torch: no nincl JSON" >&2; status=1; }

# ---- pytorch
: > "$tmp/torch.json"
if [ -n "${TORCH_BENCH_JSON_FILE:-}" ]; then
  echo "compare-torch: pytorch figures from $TORCH_BENCH_JSON_FILE" >&2
  json_lines "$TORCH_BENCH_JSON_FILE" torch > "$tmp/torch.json" || status=1
else
  # cuda: TF32 off (strict FP32) and on (PyTorch's default); cpu: the default NCHW layout
  # and channels_last (NHWC, oneDNN's fastest on CPUs)
  if [ "$device" = cuda ]; then variants=(off on); else variants=(contiguous channels_last); fi
  for v in "${variants[@]}"; do
    cmd=("$PYTHON" "$here/torch-bench.py" --model "$model" --batch "$batch" --resize "$resize"
         --steps "$steps" --warmup "$warmup" --device "$device")
    [ -n "$threads" ] && cmd+=(--threads "$threads")
    if [ "$device" = cuda ]; then cmd+=(--tf32 "$v"); else cmd+=(--memory-format "$v"); fi
    echo "compare-torch: ${cmd[*]}" >&2
    if "${cmd[@]}" > "$tmp/torch.out"; then
      json_lines "$tmp/torch.out" torch >> "$tmp/torch.json"
    else
      echo "compare-torch: torch-bench.py failed" >&2
      status=1
    fi
  done
fi
[ -s "$tmp/torch.json" ] || { echo "compare-torch: no pytorch JSON" >&2; status=1; }

if [ -n "$log" ]; then
  cat "$tmp/nincl.json" "$tmp/torch.json" >> "$log"
  echo "compare-torch: appended raw JSON to $log" >&2
fi

# ---- table
"$PYTHON" - "$tmp/nincl.json" "$tmp/torch.json" <<'EOF' || status=1
import json, sys

def load(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out

n = (load(sys.argv[1]) or [{}])[0]
ts = load(sys.argv[2])

def num(o, *keys):
    for k in keys:
        v = o.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None

def short(t):
    parts = []
    if t.get("tf32") is not None:
        parts.append("tf32 " + t["tf32"])
    if t.get("memory_format") == "channels_last":
        parts.append("ch-last")
    return " ".join(parts)

def variant(t):
    return ("pytorch " + short(t)).strip()

rows = [
    # label, nincl keys, torch keys, scale, format, better
    ("train images/s", ("train_images_per_sec",), ("train_images_per_sec",), 1, "%.1f", "higher"),
    ("infer images/s", ("infer_images_per_sec",), ("infer_images_per_sec",), 1, "%.1f", "higher"),
    ("startup to first step s", ("ready_seconds",), ("startup_seconds",), 1, "%.2f", "lower"),
    ("first training step s", ("first_step_seconds",), ("first_step_seconds",), 1, "%.2f", "lower"),
    ("peak memory MiB", ("peak_device_bytes", "peak_bytes"), ("peak_bytes",), 2**20, "%.1f", "lower"),
]

header = ["figure", "nincl"]
for t in ts:
    header += [variant(t), "nincl/" + (short(t) or "torch")]
table = [header]
for label, nk, tk, scale, fmt, better in rows:
    nv = num(n, *nk)
    row = [label + (" (%s better)" % better), fmt % (nv / scale) if nv is not None else "n/a"]
    for t in ts:
        tv = num(t, *tk)
        row.append(fmt % (tv / scale) if tv is not None else "n/a")
        row.append("%.2fx" % (nv / tv) if nv is not None and tv else "n/a")
    table.append(row)

b = n.get("batch", ts[0].get("batch") if ts else "?")
r = n.get("resize", ts[0].get("resize") if ts else "?")
m = n.get("model", ts[0].get("model") if ts else "nin")
print("%s, batch %s, input %sx%s" % ("NiN" if m == "nin" else m, b, r, r))
print("nincl:   %s" % (n.get("device") or "n/a"))
for t in ts:
    print("%-8s %s (torch %s%s)" % (variant(t).split()[0] + ":", t.get("device"),
                                   t.get("torch_version"),
                                   ", " + short(t) if short(t) else ""))
for name, o in [("nincl", n)] + [(variant(t), t) for t in ts]:
    if o and (o.get("batch") != b or o.get("resize") != r):
        print("WARNING: %s ran batch %s resize %s" % (name, o.get("batch"), o.get("resize")))
print()
w = [max(len(row[i]) for row in table) for i in range(len(header))]
for i, row in enumerate(table):
    print("  ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(row)))
    if i == 0:
        print("  ".join("-" * x for x in w))
print()
print("ratio = nincl / pytorch: above 1 is better for images/s; below 1 is better "
      "for startup and memory.")
if ts and ts[0].get("peak_kind") == "cpu_peak_rss_growth":
    print("pytorch memory on cpu = growth of the process peak RSS (not device memory).")
elif ts:
    print("pytorch memory = torch.cuda.max_memory_allocated() over the timed training "
          "steps; cudnn.benchmark=True.")
EOF
exit $status
