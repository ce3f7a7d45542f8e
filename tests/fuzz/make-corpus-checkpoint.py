#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-checkpoint (tests/fuzz/corpus-checkpoint/). Each seed is a
4-byte little-endian length L, L bytes of checkpoint, then the optimizer file (may be empty),
for the fuzzer's graph: 0.0.weight [2,1,3,3], 0.0.bias [2], 3.weight [3,2], 3.bias [3]."""
import json
import os
import struct

PARAMS = [("0.0.weight", [2, 1, 3, 3]), ("0.0.bias", [2]), ("3.weight", [3, 2]), ("3.bias", [3])]


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors(tensors, meta=None, poison=None):
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, shape, base in tensors:
        values = [base + 0.25 * i for i in range(count(shape))]
        if name == poison:
            values[-1] = float("nan")
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def seed(main, opt=b""):
    return struct.pack("<I", len(main)) + main + opt


def params(base=0.0, drop=None, reshape=None, extra=None):
    out = []
    for name, shape in PARAMS:
        if name == drop:
            continue
        out.append((name, reshape[1] if reshape and reshape[0] == name else shape, base))
    if extra:
        out.append((extra, [1], base))
    return out


# nincl's checkpoints: "step" ties the optimizer file to its checkpoint; "momentum_state" "1"
# says the run used momentum, so the optimizer file must be there (runtime/io/checkpoint.c).
plain = {"step": "7", "epoch": "1", "momentum_state": "0"}
with_m = {"step": "7", "epoch": "1", "momentum_state": "1"}
opt7, opt6 = {"step": "7"}, {"step": "6"}
seeds = {
    "valid": seed(safetensors(params(), plain)),
    "valid-no-meta": seed(safetensors(params())),
    "valid-momentum": seed(safetensors(params(), with_m), safetensors(params(-1.0), opt7)),
    "valid-momentum-unused": seed(safetensors(params(), plain), safetensors(params(-1.0), opt7)),
    "bad-momentum-other-step": seed(safetensors(params(), with_m), safetensors(params(-1.0), opt6)),
    "bad-momentum-absent": seed(safetensors(params(), with_m)),
    "bad-momentum-no-step": seed(safetensors(params(), {"momentum_state": "1"}), safetensors(params(-1.0))),
    "bad-missing-tensor": seed(safetensors(params(drop="0.0.bias"), plain)),
    "bad-shape": seed(safetensors(params(reshape=("3.weight", [2, 3])), plain)),
    "bad-extra-tensor": seed(safetensors(params(extra="4.weight"), plain)),
    "bad-nan": seed(safetensors(params(), plain, poison="3.weight")),
    "bad-momentum-nan": seed(safetensors(params(), with_m), safetensors(params(-1.0), opt7, poison="0.0.bias")),
    "bad-momentum-shape": seed(safetensors(params(), with_m),
                               safetensors(params(-1.0, reshape=("0.0.weight", [2, 9])), opt7)),
    "bad-momentum-missing": seed(safetensors(params(), with_m), safetensors(params(-1.0, drop="3.bias"), opt7)),
    "bad-momentum-garbage": seed(safetensors(params(), with_m), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"),
    "bad-truncated": seed(safetensors(params(), plain)[:-5]),
}
folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-checkpoint")
os.makedirs(folder, exist_ok=True)
for old in os.listdir(folder):
    os.remove(os.path.join(folder, old))
for name, data in seeds.items():
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), folder))
