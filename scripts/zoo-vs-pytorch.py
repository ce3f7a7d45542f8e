#!/usr/bin/env python3
"""Compares what tests/zoo-dump wrote (DIR) with the book's PyTorch model (scripts/d2l_zoo.py)
holding the same weights:

  zoo-vs-pytorch.py --model M --dir DIR --lr LR --steps N [--tol 1e-4] [--step-tol 1e-4]

loads DIR/weights.safetensors into the model with load_state_dict(strict=True) (so names,
shapes and the int64 num_batches_tracked must all be the book's), compares the logits of
DIR/batch.safetensors's x in eval and in train mode (Dropout p = 0 on both sides), then checks
each of N torch.optim.SGD steps (lr LR, mean cross-entropy) on that batch: from nincl's state
before it, every state_dict entry (parameters, running statistics, num_batches_tracked) against
DIR/after-K.safetensors. Differences are relative to the reference's largest magnitude (for the
steps: of its change from the weights); the reference is PyTorch in float64, and nincl must be within tolerance of it or no further
from it than 4x PyTorch's own float32 result is. Prints the figures; exit 0 if all are within tolerance, 1 if not, 2 on bad input."""
import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import d2l_zoo  # noqa: E402
import safetensors_io as st  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import torch_models  # noqa: E402

# the book's zoo, and NiN (d2l 8.3) with nin-small as nincl builds them
MODELS = dict(d2l_zoo.MODELS, nin=lambda: torch_models.nin(init=False),
              **{"nin-small": lambda: torch_models.nin_small(init=False)})


def scaled_diff(got, want, base=None):
    """max |got - want| relative to the reference's largest magnitude (of want - base: the
    update, when base is given), so that small logits and small steps are judged as strictly."""
    got, want = got.double(), want.double()
    scale = float(want.abs().max())
    if base is not None:   # a change that is rounding noise (a bias before a BatchNorm) against the values
        scale = max(float((want - base.double()).abs().max()), 1e-3 * scale)
    return float((got - want).abs().max()) / max(1e-30, scale)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(MODELS))
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--step-tol", type=float, default=1e-3)
    ap.add_argument("--expect-onnx", help="DIR's weights must equal this ONNX file's initializers")
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    weights = st.load(os.path.join(a.dir, "weights.safetensors"))
    batch = st.load(os.path.join(a.dir, "batch.safetensors"))
    if a.expect_onnx:   # nincl started from exactly the file's initializers, under the module's keys
        import onnx
        from onnx import numpy_helper
        inits = {t.name: t for t in onnx.load(a.expect_onnx).graph.initializer}
        keys = [k for k in weights if not k.endswith("num_batches_tracked")]   # not in ONNX files
        missing = [k for k in keys if k not in inits]
        def same(k):
            return torch.equal(torch.from_numpy(numpy_helper.to_array(inits[k]).copy()), weights[k])
        bad = [k for k in keys if k in inits and not same(k)]
        print(f"{a.model}: {len(keys)} initializers of the ONNX file read, {len(keys) - len(bad) - len(missing)} exactly")
        if missing or bad:
            print(f"  FAIL not in the file: {missing[:8]}; differ: {bad[:8]}")
            return 1

    def fresh():
        m = MODELS[a.model]()
        m.load_state_dict(weights, strict=True)
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        return m

    x, labels = batch["x"], batch["labels"]
    ok = True

    def logits(mode, dtype):
        m = fresh().to(dtype)
        m.train(mode == "train")
        with torch.no_grad():
            return m(x.to(dtype))

    # float32 rounding differs between any two implementations; on ill-conditioned cases
    # (BatchNorm over 3 values, lr 1.0) it grows. So both are measured against PyTorch in
    # float64, and nincl passes where it is within tol of it or no worse than 4x PyTorch's own
    # float32 error.
    for mode in ("eval", "train"):
        ref, t32 = logits(mode, torch.float64), logits(mode, torch.float32)
        d, d32, dt = scaled_diff(batch[mode], ref), scaled_diff(t32, ref), scaled_diff(batch[mode], t32)
        good = d <= max(a.tol, 4 * d32)
        ok &= good
        print(f"{a.model}: x {list(x.shape)}, {mode}: logits max abs diff vs PyTorch float32 {dt:.3g}; vs float64: "
              f"nincl {d:.3g}, PyTorch float32 {d32:.3g}{'' if good else '  FAIL'}")

    # The SGD steps one at a time: step k in PyTorch from nincl's state after step k - 1,
    # against nincl's state after step k (parameters, running statistics, num_batches_tracked).
    # A whole trajectory from the same start is chaotic wherever a BatchNorm normalises a few
    # values (float32 rounding grows by orders of magnitude in three steps, in PyTorch itself),
    # so it is printed for information only.
    def step(start, dtype, steps=1):
        m = MODELS[a.model]()
        m.load_state_dict(start, strict=True)
        m = m.to(dtype).train()
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        opt = torch.optim.SGD(m.parameters(), lr=a.lr)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(m(x.to(dtype)), labels).backward()
            opt.step()
        return m.state_dict()

    before = weights
    for k in range(1, a.steps + 1):
        after = st.load(os.path.join(a.dir, f"after-{k}.safetensors"))
        s64, s32 = step(before, torch.float64), step(before, torch.float32)
        if set(s64) != set(after):
            print(f"{a.model}: step {k}: state_dict keys differ: {sorted(set(s64) ^ set(after))}")
            return 1
        worst, worst32, worst_t, worst_key, bad = 0.0, 0.0, 0.0, "", []
        for key, v in s64.items():
            if v.dtype == torch.int64:
                if not torch.equal(v, after[key]):
                    bad.append(f"{key}: {after[key].tolist()} != {v.tolist()}")
                continue
            d, d32 = scaled_diff(after[key], v, before[key]), scaled_diff(s32[key], v, before[key])
            if d > worst:
                worst, worst_key = d, key
            worst32 = max(worst32, d32)
            worst_t = max(worst_t, scaled_diff(after[key], s32[key], before[key]))
            if d > max(a.step_tol, 4 * d32):
                bad.append(f"{key}: {d:.3g} (PyTorch float32: {d32:.3g})")
        print(f"{a.model}: SGD step {k} (lr {a.lr}), {len(s64)} state_dict entries: max diff of the update vs "
              f"PyTorch float32 {worst_t:.3g}; vs float64: nincl {worst:.3g} ({worst_key}), PyTorch float32 "
              f"{worst32:.3g}")
        for b in bad[:8]:
            print(f"  FAIL {b}")
        ok &= not bad
        before = after
    if a.steps:
        t32 = step(weights, torch.float32, a.steps)
        d = max(scaled_diff(before[k], v, weights[k]) for k, v in t32.items() if v.dtype != torch.int64)
        print(f"{a.model}: {a.steps} steps from the same weights, for information: max diff of the update vs "
              f"PyTorch float32 {d:.3g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
