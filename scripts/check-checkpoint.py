#!/usr/bin/env python3
"""Check nincl's logits against PyTorch running the same checkpoint.

  check-checkpoint.py --checkpoint DIR/checkpoint.safetensors --logits LOGITS.npy \
      --data /usr/share/datasets/fashion-mnist --limit N [--resize 224] \
      [--model nin|nin-small] [--tol 1e-4]

Loads the safetensors checkpoint into bench/torch_models.nin() (or nin_small())
with load_state_dict(strict=True), runs the first N test images
(t10k-images-idx3-ubyte.gz) through it in eval mode in float32, and compares
with LOGITS.npy (float32 [N,10], numpy.save format).  Prints the max abs
difference and argmax agreement; exit 0 if max abs diff <= tol, else 1
(2 for usage / input errors).

Self-test: --write-reference writes a checkpoint from a freshly initialised
torch model to --checkpoint and that model's own logits to --logits (so a
following check must give diff 0).  --perturb X adds X to one logit when
writing, to prove the check fails.

Interpreter: run with /usr/bin/python3 on the dev box (Debian's torch), or
any python with torch and numpy.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))
sys.path.insert(0, HERE)
import torch_models  # noqa: E402


# ---------------------------------------------------------------- safetensors
# Format: u64 little-endian header length, JSON header
# {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
#  "__metadata__": {...}?}, then the data block (offsets are relative to it).
def _st_load_builtin(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short for safetensors" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d past end of file" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError("%s: tensor %s has dtype %s, only F32 supported"
                             % (path, name, info["dtype"]))
        b, e = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        count = int(np.prod(shape)) if shape else 1
        if e - b != 4 * count or e > len(data):
            raise ValueError("%s: tensor %s: bad data_offsets %s for shape %s"
                             % (path, name, info["data_offsets"], shape))
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(shape).copy()
        out[name] = torch.from_numpy(arr)
    return out


def st_save(path, tensors, metadata=None):
    """Minimal F32 safetensors writer (for --write-reference)."""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # pad so the data block is 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def st_load(path):
    """Use scripts/safetensors_io.py if present, else the builtin reader."""
    try:
        import safetensors_io
        loader = safetensors_io.load
    except (ImportError, AttributeError):
        loader = _st_load_builtin
    return {k: torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v)
            for k, v in loader(path).items()}


# ---------------------------------------------------------------- data
def read_idx_images(path, limit):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError("%s: bad idx3 magic %#x" % (path, magic))
    imgs = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    return imgs[:limit]


def read_idx_labels(path, limit):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic != 2049:
        raise ValueError("%s: bad idx1 magic %#x" % (path, magic))
    return np.frombuffer(raw, dtype=np.uint8, offset=8)[:limit]


def make_inputs(images_u8, resize):
    x = torch.from_numpy(images_u8.astype(np.float32) / np.float32(255.0))
    x = x.unsqueeze(1)  # [N,1,28,28]
    if resize != x.shape[-1]:
        # nincl resizes on the device, bilinear with half-pixel centres on the
        # unrounded float image.  d2l's transforms.Resize works on the PIL
        # image and rounds the resized pixels back to uint8 before ToTensor;
        # this check deliberately uses the unrounded float path that nincl
        # implements, so the comparison is exact up to float arithmetic.
        x = F.interpolate(x, size=(resize, resize), mode="bilinear",
                          align_corners=False)
    return x.contiguous()


def build_model(name):
    fn = getattr(torch_models, name.replace("-", "_"), None)
    if fn is None:
        print("check-checkpoint: bench/torch_models.py has no %s() yet"
              % name.replace("-", "_"), file=sys.stderr)
        sys.exit(2)
    return fn()


def run_model(net, x, chunk):
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            outs.append(net(x[i:i + chunk]))
    out = torch.cat(outs) if outs else torch.empty(0, 10)
    assert out.dtype == torch.float32
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--logits", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit", type=int, default=None,
                    help="first N test images (default: rows of --logits)")
    ap.add_argument("--resize", type=int, default=None,
                    help="default 224 for nin, 28 for nin-small")
    ap.add_argument("--model", default="nin", choices=("nin", "nin-small"))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--chunk", type=int, default=64,
                    help="images per forward pass (memory only)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--write-reference", action="store_true",
                    help="self-test: write checkpoint + logits from a fresh "
                         "torch model instead of checking")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perturb", type=float, default=0.0,
                    help="with --write-reference: add this to logits[0,0]")
    args = ap.parse_args()
    if args.resize is None:
        args.resize = 28 if args.model == "nin-small" else 224
    torch.set_num_threads(max(1, args.threads))

    images_path = os.path.join(args.data, "t10k-images-idx3-ubyte.gz")
    labels_path = os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")

    if args.write_reference:
        if args.limit is None:
            sys.exit("check-checkpoint: --write-reference needs --limit")
        torch.manual_seed(args.seed)
        net = build_model(args.model).float().eval()
        x = make_inputs(read_idx_images(images_path, args.limit), args.resize)
        logits = run_model(net, x, args.chunk).numpy().astype(np.float32)
        if args.perturb:
            logits[0, 0] += np.float32(args.perturb)
        os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
        st_save(args.checkpoint, net.state_dict(),
                {"model": args.model, "writer": "check-checkpoint.py"})
        np.save(args.logits, logits)
        print("wrote %s (%d tensors) and %s %s (perturb %g)"
              % (args.checkpoint, len(net.state_dict()), args.logits,
                 list(logits.shape), args.perturb))
        return 0

    # ---- load and validate inputs
    try:
        state = st_load(args.checkpoint)
    except (OSError, ValueError, KeyError) as e:
        print("check-checkpoint: cannot read checkpoint: %s" % e, file=sys.stderr)
        return 2
    ref = np.load(args.logits)
    if ref.ndim != 2 or ref.shape[1] != 10:
        print("check-checkpoint: %s has shape %s, want [N,10]"
              % (args.logits, ref.shape), file=sys.stderr)
        return 2
    if ref.dtype != np.float32:
        print("check-checkpoint: note: %s is %s, not float32" % (args.logits, ref.dtype),
              file=sys.stderr)
    n = ref.shape[0] if args.limit is None else args.limit
    if ref.shape[0] < n:
        print("check-checkpoint: %s has %d rows, --limit %d"
              % (args.logits, ref.shape[0], n), file=sys.stderr)
        return 2
    if ref.shape[0] > n:
        print("check-checkpoint: note: comparing the first %d of %d rows"
              % (n, ref.shape[0]), file=sys.stderr)
    ref = ref[:n].astype(np.float32)

    net = build_model(args.model)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        print("check-checkpoint: checkpoint does not fit %s: %s" % (args.model, e),
              file=sys.stderr)
        return 2
    net = net.float().eval()
    for k, p in net.state_dict().items():
        assert p.dtype == torch.float32, (k, p.dtype)

    x = make_inputs(read_idx_images(images_path, n), args.resize)
    assert x.dtype == torch.float32
    out = run_model(net, x, args.chunk).numpy()

    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    max_diff = float(diff.max()) if diff.size else 0.0
    where = np.unravel_index(int(diff.argmax()), diff.shape) if diff.size else (0, 0)
    agree = int((out.argmax(1) == ref.argmax(1)).sum())
    scale = float(np.abs(out).max()) if out.size else 0.0
    print("model %s, %d images at %dx%d, checkpoint %s" % (
        args.model, n, args.resize, args.resize, args.checkpoint))
    print("max abs diff   %.3e  (at image %d, class %d: torch %.6f, nincl %.6f; "
          "max |logit| %.3f)" % (max_diff, where[0], where[1],
                                 out[where] if diff.size else 0,
                                 ref[where] if diff.size else 0, scale))
    print("mean abs diff  %.3e" % (float(diff.mean()) if diff.size else 0.0))
    print("argmax agree   %d / %d" % (agree, n))
    if os.path.exists(labels_path) and n:
        labels = read_idx_labels(labels_path, n)
        print("accuracy       torch %.4f, nincl %.4f" % (
            float((out.argmax(1) == labels).mean()),
            float((ref.argmax(1) == labels).mean())))
    ok = max_diff <= args.tol
    print("%s: max abs diff %.3e %s tol %.1e" % (
        "PASS" if ok else "FAIL", max_diff, "<=" if ok else ">", args.tol))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
