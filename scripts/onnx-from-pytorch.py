#!/usr/bin/env python3
"""Exports a PyTorch model as users do for `nincl train --model F.onnx`:

  onnx-from-pytorch.py --model M --size S --out DIR [--seed 3] [--eval]

builds the book's module M (scripts/d2l_zoo.py, or NiN / nin-small of bench/torch_models.py)
with PyTorch's own initialisation from --seed, and writes DIR/model.onnx with
torch.onnx.export(training=TRAINING, do_constant_folding=False, a symbolic batch; --eval: an
inference export)."""
import argparse
import os
import sys
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import d2l_zoo  # noqa: E402
import safetensors_io as st  # noqa: E402
import torch_models  # noqa: E402

MODELS = dict(d2l_zoo.MODELS, nin=lambda: torch_models.nin(init=False),
              **{"nin-small": lambda: torch_models.nin_small(init=False)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(MODELS))
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--eval", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    net = MODELS[a.model]()
    mode = torch.onnx.TrainingMode.EVAL if a.eval else torch.onnx.TrainingMode.TRAINING
    net.train(not a.eval)
    os.makedirs(a.out, exist_ok=True)
    with warnings.catch_warnings():   # "Removing mutation ... num_batches_tracked": as intended
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(2, 1, a.size, a.size), os.path.join(a.out, "model.onnx"),
                          training=mode, do_constant_folding=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
