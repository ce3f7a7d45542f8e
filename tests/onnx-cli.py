#!/usr/bin/env python3
"""The nincl commands on ONNX models, end to end (Debian's python3-torch, python3-onnx and
libopencv-dnn):

  onnx-cli.py NINCL ONNX_RUN

1. `nincl train --model lenet.onnx --init xavier` (the book's LeNet exported from PyTorch)
   follows `nincl train --model lenet` with the same seed and recipe: the same losses, also
   after --resume to a second epoch; `nincl eval --checkpoint RUN` reads the run's model.onnx.
2. `nincl export` of runs of models with BatchNorm (2d and 1d), branches (Add, Concat),
   padded max pooling, Dropout and fused ReLUs writes files that onnx.checker accepts, that
   OpenCV's dnn runs with nincl's eval logits (<= 1e-4 of their largest), and that nincl
   reads back to the same logits; `nincl eval --model F.onnx` uses the file's weights.
3. A network written by hand (x.view(x.size(0), -1), x @ W.t() + b) imports with PyTorch's
   logits.
4. Each kind of bad file (unsupported operator, attribute value or data type, a truncated or
   mistyped protobuf, a missing initializer, a cycle, disagreeing shapes, absurd dimensions)
   and an export that cannot be written: exit 2 and one line naming the problem.
Exit 0 when all hold, 1 otherwise."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import d2l_zoo  # noqa: E402
import torch_models  # noqa: E402

NINCL, ONNX_RUN = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="nincl-onnx-cli-")
failures = []


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else ": " + detail.strip()[-400:]))
    if not ok:
        failures.append(what)


def nincl(*args):
    r = subprocess.run([NINCL, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def export(net, path, size, training=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(2, 1, size, size), path, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def losses(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return [float(line.split(",")[1]) for line in f.read().splitlines()[1:]]


def train_equivalence():
    lenet = os.path.join(TMP, "lenet.onnx")
    export(d2l_zoo.lenet(), lenet, 28)
    common = ["--epochs", "1", "--train-limit", "768", "--test-limit", "128", "--seed", "5", "--progress", "off"]
    a, b = os.path.join(TMP, "builtin"), os.path.join(TMP, "from-onnx")
    rc1, _, e1 = nincl("train", "--model", "lenet", "--out", a, *common)
    # the ONNX model's defaults are nin's recipe: lenet's lr and batch come from flags
    rc2, _, e2 = nincl("train", "--model", lenet, "--init", "xavier", "--lr", "0.9", "--batch", "256", "--out", b,
                       *common)
    check(rc1 == 0 and rc2 == 0, f"train lenet and lenet.onnx --init xavier (exit {rc1}, {rc2})", e1 + e2)
    if rc1 or rc2:
        return None
    check(os.path.exists(os.path.join(b, "model.onnx")), "the run folder keeps its model.onnx")
    rc1, _, e1 = nincl("train", "--resume", a, "--epochs", "2", "--progress", "off")
    rc2, _, e2 = nincl("train", "--resume", b, "--epochs", "2", "--progress", "off")
    check(rc1 == 0 and rc2 == 0, f"resume both to 2 epochs (exit {rc1}, {rc2})", e1 + e2)
    la, lb = losses(a), losses(b)
    same = len(la) == 2 and len(lb) == 2 and all(abs(x - y) <= 1e-5 * abs(x) for x, y in zip(la, lb))
    check(same, f"losses from ONNX {lb} follow the built-in model's {la}")
    rc, out, err = nincl("eval", "--checkpoint", b, "--test-limit", "128")
    check(rc == 0 and "test acc" in out, f"eval --checkpoint of an ONNX run (exit {rc})", err)
    return b


def run_opencv_binary():
    src, exe = os.path.join(HERE, "onnx", "run-opencv.cpp"), os.path.join(TMP, "run-opencv")
    r = subprocess.run(["g++", "-O1", "-o", exe, src, "-I/usr/include/opencv4", "-lopencv_dnn", "-lopencv_core"],
                       capture_output=True, text=True)
    check(r.returncode == 0, "build the OpenCV dnn runner", r.stderr)
    return exe if r.returncode == 0 else None


def scaled(a, b):
    return float(np.abs(a - b).max() / max(1e-30, np.abs(b).max()))


def export_round_trip(opencv, name, model_args, size, run=None):
    """Trains a few steps (BatchNorm running statistics move), exports, and compares."""
    if run is None:
        run = os.path.join(TMP, "run-" + name)
        rc, _, err = nincl("train", *model_args, "--epochs", "1", "--train-limit", "96", "--batch", "32",
                           "--test-limit", "32", "--resize", str(size), "--out", run, "--progress", "off")
        check(rc == 0, f"{name}: a short run (exit {rc})", err)
        if rc:
            return
    out = os.path.join(TMP, name + "-export.onnx")
    rc, _, err = nincl("export", "--checkpoint", run, "--onnx", out)
    check(rc == 0, f"{name}: nincl export (exit {rc})", err)
    if rc:
        return
    try:
        onnx.checker.check_model(onnx.load(out), full_check=True)
        check(True, f"{name}: onnx.checker accepts the export")
    except Exception as e:  # noqa: BLE001 - any checker complaint is the failure
        check(False, f"{name}: onnx.checker: {e}")
    n = 5
    x = np.random.default_rng(1).random((n, 1, size, size), dtype=np.float32)
    xf = os.path.join(TMP, name + "-x.f32")
    x.astype("<f4").tofile(xf)
    ckpt = os.path.join(run, "checkpoint.safetensors")
    # a built-in model by name; an ONNX model as the run's own copy
    model = model_args[-1] if model_args and not model_args[-1].endswith(".onnx") else os.path.join(run, "model.onnx")
    outs = {}
    for label, cmd in (("nincl", [ONNX_RUN, model, ckpt, str(size), xf, str(n)]),
                       ("nincl reading the export", [ONNX_RUN, out, "-", str(size), xf, str(n)]),
                       ("OpenCV dnn", [opencv, out, xf, str(n), "1", str(size), str(size)])):
        yf = os.path.join(TMP, f"{name}-{len(outs)}.f32")
        r = subprocess.run(cmd + [yf], capture_output=True, text=True)
        check(r.returncode == 0, f"{name}: {label} runs (exit {r.returncode})", r.stderr)
        if r.returncode:
            return
        outs[label] = np.fromfile(yf, dtype="<f4").reshape(n, -1)
    ref = outs["nincl"]
    for label in ("nincl reading the export", "OpenCV dnn"):
        d = scaled(outs[label], ref)
        check(d <= 1e-4, f"{name}: {label}: logits within {d:.2g} of nincl's checkpoint")


def exports(opencv, lenet_run):
    if lenet_run:
        export_round_trip(opencv, "lenet", [], 28, run=lenet_run)
    # BatchNorm 2d and 1d, Sigmoid, AvgPool; Dropout and fused ReLUs; Add and padded MaxPool;
    # Concat (the lenet run above is of an ONNX model: its own model.onnx is rebuilt)
    for name, size in (("lenet-bn", 28), ("nin-small", 28), ("resnet18", 32), ("densenet", 32)):
        export_round_trip(opencv, name, ["--model", name], size)
    # eval of a file's own weights: an inference export of nin-small, evaluated twice the same
    g = os.path.join(TMP, "nin-small-eval.onnx")
    export(torch_models.nin_small(init=True).eval(), g, 28, training=False)
    rc, out, err = nincl("eval", "--model", g, "--test-limit", "64")
    check(rc == 0 and "test acc" in out, f"eval --model F.onnx of an inference export (exit {rc})", err)


# ---- users' own networks -------------------------------------------------------------------

class ViewNet(torch.nn.Module):
    """x.view(x.size(0), -1) (Shape, Gather, Unsqueeze, Concat, Reshape) and x @ W.t() + b
    (Transpose, MatMul, Add): how hand-written forward() methods flatten and project."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(3)
        self.w = torch.nn.Parameter(torch.randn(10, 3 * 5 * 5) * 0.1)
        self.b = torch.nn.Parameter(torch.randn(10))

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return y.view(y.size(0), -1) @ self.w.t() + self.b


def own_networks():
    net = ViewNet()
    f = os.path.join(TMP, "view.onnx")
    export(net, f, 10)
    n = 3
    x = torch.rand(n, 1, 10, 10)
    xf, yf = os.path.join(TMP, "view-x.f32"), os.path.join(TMP, "view-y.f32")
    x.numpy().astype("<f4").tofile(xf)
    r = subprocess.run([ONNX_RUN, f, "-", "10", xf, str(n), yf], capture_output=True, text=True)
    check(r.returncode == 0, "a network with x.view(x.size(0), -1) and x @ W.t() + b imports", r.stderr)
    if r.returncode == 0:
        with torch.no_grad():
            want = net.eval()(x).numpy()
        d = scaled(np.fromfile(yf, dtype="<f4").reshape(n, -1), want)
        check(d <= 1e-4, f"its eval logits are PyTorch's (within {d:.2g})")


# ---- bad files -----------------------------------------------------------------------------

def model_file(name, nodes, inits, in_shape=(None, 1, 8, 8), out_name="y", elem=TensorProto.FLOAT, raw=None):
    path = os.path.join(TMP, name + ".onnx")
    if raw is not None:
        with open(path, "wb") as f:
            f.write(raw)
        return path
    dims = ["batch" if d is None else d for d in in_shape]
    g = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", elem, dims)],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return path


def weight(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.zeros(shape, dtype=dtype), name)


def absurd_weight():
    """c.weight claiming 2^40 x 1 x 3 x 3 floats with none behind them."""
    t = TensorProto()
    t.name, t.data_type = "c.weight", TensorProto.FLOAT
    t.dims.extend([1 << 40, 1, 3, 3])
    return t


def head(inp="h"):
    """GlobalAveragePool, Flatten, Gemm to 10 classes: a valid tail after a 4-channel tensor."""
    return ([helper.make_node("GlobalAveragePool", [inp], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1)],
            [weight("fc.weight", (10, 4)), weight("fc.bias", (10,))])


def conv(name="c", inp="x", out="h", channels_in=1, **attrs):
    return (helper.make_node("Conv", [inp, name + ".weight", name + ".bias"], [out], name=name, **attrs),
            [weight(name + ".weight", (4, channels_in, 3, 3)), weight(name + ".bias", (4,))])


def rejections(good):
    tail_nodes, tail_inits = head()
    c, ci = conv(pads=[1, 1, 1, 1])
    ok = model_file("ok", [c] + tail_nodes, ci + tail_inits)
    rc, out, err = nincl("shapes", "--model", ok)
    check(rc == 0, f"a small hand-made model is read (exit {rc})", err)
    with open(good, "rb") as f:
        real = f.read()
    cases = [
        ("unsupported operator", model_file("op", [helper.make_node("LeakyRelu", ["x"], ["h0"], name="leaky"),
                                                  conv(inp="h0")[0]] + tail_nodes, ci + tail_inits),
         r"node 'leaky' \(LeakyRelu\): operator not supported"),
        ("unsupported attribute value", model_file("group", [conv(group=2)[0]] + tail_nodes, ci + tail_inits),
         r"node 'c' \(Conv\): attribute 'group' is 2"),
        ("unsupported attribute", model_file("ceil", [c, helper.make_node("MaxPool", ["h"], ["m"], name="mp",
                                                                          kernel_shape=[2, 2], ceil_mode=1)]
                                             + head("m")[0], ci + tail_inits),
         r"node 'mp' \(MaxPool\): attribute 'ceil_mode' is 1"),
        ("unsupported input data type", model_file("double-in", [c] + tail_nodes, ci + tail_inits,
                                                   elem=TensorProto.DOUBLE),
         r"input 'x' has element type 11"),
        ("unsupported initializer data type",
         model_file("double-w", [c] + tail_nodes, [weight("c.weight", (4, 1, 3, 3), np.float64), ci[1]] + tail_inits),
         r"node 'c' \(Conv\): initializer 'c.weight' has data type 11"),
        ("truncated protobuf", model_file("truncated", [], [], raw=real[: len(real) // 2]), r"truncated or corrupt"),
        ("a field of the wrong type", model_file("wiretype", [], [], raw=b"\x3a\x02\x08"),
         r"truncated or corrupt|wrong type"),
        ("a field of the wrong type (varint for the graph)", model_file("wiretype2", [], [], raw=b"\x08\x07\x38\x01"),
         r"wrong type|without a graph"),
        ("a missing initializer", model_file("noinit", [c] + tail_nodes, [ci[1]] + tail_inits),
         r"node 'c' \(Conv\): input 'c.weight' is not produced by any node, initializer or graph input"),
        ("a cycle", model_file("cycle", [helper.make_node("Relu", ["h2"], ["h1"], name="r1"),
                                         helper.make_node("Relu", ["h1"], ["h2"], name="r2")], []),
         r"node 'r1' \(Relu\): input 'h2' is produced by a later node \('r2'\)"),
        ("shapes that disagree", model_file("chans", [conv(channels_in=3)[0]] + tail_nodes,
                                            conv(channels_in=3)[1] + tail_inits),
         r"node 'c' \(Conv\): weight 'c.weight' takes 3 input channels, its input has 1"),
        ("an absurd dimension", model_file("absurd", [c] + tail_nodes, [absurd_weight()] + ci[1:] + tail_inits),
         r"tensor 'c.weight' has an absurd dimension 0"),
        ("an absurd input size", model_file("bigin", [c] + tail_nodes, ci + tail_inits,
                                            in_shape=(None, 1, 10**9, 8)), r"input 'x' has shape"),
        ("an empty file", model_file("empty", [], [], raw=b""), r"empty file"),
    ]
    for what, path, pattern in cases:
        rc, out, err = nincl("shapes", "--model", path)
        lines = err.strip().splitlines()
        good_msg = len(lines) == 1 and re.search(pattern, lines[0]) and path in lines[0]
        check(rc == 2 and good_msg, f"{what}: exit {rc}, '{err.strip()[:300]}'")
    rc, _, err = nincl("train", "--model", os.path.join(TMP, "group.onnx"), "--epochs", "1", "--progress", "off")
    check(rc == 2 and "attribute 'group'" in err, f"train refuses it too: exit {rc}, '{err.strip()[:200]}'")


def export_refusals(run):
    if not run:
        return
    broken = os.path.join(TMP, "no-model")
    shutil.copytree(run, broken)
    os.remove(os.path.join(broken, "model.onnx"))
    rc, _, err = nincl("export", "--checkpoint", broken, "--onnx", os.path.join(TMP, "x.onnx"))
    lines = err.strip().splitlines()
    check(rc == 2 and len(lines) == 1 and "model.onnx" in lines[0],
          f"export of a run whose model.onnx is gone: exit {rc}, '{err.strip()[:200]}'")
    rc, _, err = nincl("export", "--checkpoint", run, "--onnx", os.path.join(TMP, "no-such-dir", "x.onnx"))
    check(rc == 2 and len(err.strip().splitlines()) == 1, f"export to a folder that does not exist: exit {rc}, "
          f"'{err.strip()[:200]}'")


def main():
    torch.manual_seed(0)
    try:
        run = train_equivalence()
        opencv = run_opencv_binary()
        if opencv:
            exports(opencv, run)
        own_networks()
        rejections(os.path.join(TMP, "lenet.onnx"))
        export_refusals(run)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
