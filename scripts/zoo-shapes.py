#!/usr/bin/env python3
"""`nincl shapes --model M` at each zoo model's full input size against the table the book's
PyTorch model prints (scripts/d2l_zoo.py), line for line; and an input size a model cannot
take: exit 2 and a message naming the layer.
  zoo-shapes.py NINCL_BINARY"""
import subprocess
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import d2l_zoo  # noqa: E402

SIZES = {"lenet": 28, "lenet-bn": 28, "alexnet": 224, "vgg11": 224, "googlenet": 96, "resnet18": 96, "densenet": 96}
# (model, input, words the one-line message must hold)
BAD = [("lenet", "1x32x32", ["layer 7", "Linear(400, 120)", "576"]),
       ("alexnet", "1x64x64", ["layer", "MaxPool2d", "empty"]),
       ("vgg11", "1x96x96", ["layer 6", "Linear(6272, 4096)"])]


def main():
    nincl, failed = sys.argv[1], 0
    for model, size in SIZES.items():
        want = d2l_zoo.shapes(model, size)
        r = subprocess.run([nincl, "shapes", "--model", model], capture_output=True, text=True)
        got = r.stdout.rstrip("\n").split("\n")
        if r.returncode != 0 or got != want:
            failed += 1
            print(f"{model}: nincl shapes (exit {r.returncode}) differs from PyTorch:\n" + r.stderr)
            for g, w in zip(got + [""] * len(want), want + [""] * len(got)):
                print(f"  {'  ' if g == w else '!='} {g!r:60} {w!r}")
        else:
            print(f"{model} {size}x{size}: {len(want)} lines as PyTorch prints them")
    for model, shape, words in BAD:
        r = subprocess.run([nincl, "shapes", "--model", model, "--input", shape], capture_output=True, text=True)
        msg = r.stderr.strip()
        if r.returncode != 2 or "\n" in msg or not all(w in msg for w in words):
            failed += 1
            print(f"{model} {shape}: want exit 2 and one line naming {words}, got exit {r.returncode}: {msg!r}")
        else:
            print(f"{model} {shape}: exit 2: {msg}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
