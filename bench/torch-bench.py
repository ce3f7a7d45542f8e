#!/usr/bin/env python3
"""PyTorch side of the nincl benchmark: measures what `nincl bench` measures.

  torch-bench.py --model nin --batch 128 --resize 224 --steps 5 --warmup 1 \
                 --device cpu|cuda [--threads T] [--tf32 on|off] [--seed S]

Training step  = forward (train mode, dropout on) + CrossEntropyLoss (mean)
                 + backward + SGD(lr=0.1) step (no momentum, no weight decay),
                 on one random input [B,1,R,R] in [0,1) and random labels,
                 generated once on the device (so no host->device copy is
                 timed).
Inference step = forward in eval mode under torch.no_grad().
Each phase runs --warmup untimed steps, then --steps timed steps; the clock
is read after torch.cuda.synchronize() on cuda.

Peak memory:
  cuda: torch.cuda.max_memory_allocated() over the timed training steps
        (stats reset after warmup, so cudnn.benchmark's algorithm search is
        not counted; parameters, gradients, input and activations are).
        peak_kind = "cuda_max_memory_allocated".
  cpu:  growth of the process peak RSS (getrusage ru_maxrss, KiB on Linux,
        reported in bytes) from just before the model is built to the end of
        the timed training steps.  peak_kind = "cpu_peak_rss_growth".

On cuda, cudnn.benchmark = True (autotuned convolution algorithms, as a
tuned PyTorch run would use) and --tf32 sets both
torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32.
Note PyTorch's own default is cudnn.allow_tf32=True (matmul False); NiN has
no matmuls, so "--tf32 on" is what a default PyTorch run does; "--tf32 off"
is strict FP32.  The default here is off.

startup_seconds = script start (before `import torch`) until model and data
are on the device (before warmup): import + device init + model build.
first_step_seconds = the first (warmup) training step, one-time costs included.

stdout: exactly one JSON object.  stderr: human-readable progress.
Debian's torch defaults to 1 thread here, so --threads defaults to
os.cpu_count() and is applied with torch.set_num_threads.
"""
import time

T_START = time.perf_counter()

import argparse
import json
import os
import resource
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rss_peak_bytes():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="nin")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--resize", type=int, default=None,
                    help="input side R (default 224; 28 for nin-small)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tf32", choices=("on", "off"), default="off",
                    help="cuda only (default off = strict FP32)")
    ap.add_argument("--memory-format", choices=("contiguous", "channels_last"), default="contiguous",
                    help="channels_last: NHWC activations and weights, oneDNN's fastest layout on CPUs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    if args.resize is None:
        args.resize = {"nin-small": 28, "lenet": 28, "lenet-bn": 28, "googlenet": 96, "resnet18": 96,
                       "densenet": 96}.get(args.model, 224)
    if args.steps < 1 or args.batch < 1 or args.warmup < 0:
        ap.error("need --steps >= 1, --batch >= 1, --warmup >= 0")

    torch.set_num_threads(max(1, args.threads))
    threads = torch.get_num_threads()
    torch.manual_seed(args.seed)

    cuda = args.device == "cuda"
    if cuda:
        if not torch.cuda.is_available():
            sys.exit("torch-bench: --device cuda but torch.cuda.is_available() "
                     "is False (torch %s)" % torch.__version__)
        dev = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        tf32 = args.tf32 == "on"
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.cuda.init()
        dev_name = torch.cuda.get_device_name(dev)
        log("torch-bench: %s, cudnn.benchmark=True, tf32 %s (cudnn %s, matmul %s)"
            % (dev_name, args.tf32, torch.backends.cudnn.allow_tf32,
               torch.backends.cuda.matmul.allow_tf32))
        tf32_field = args.tf32
    else:
        dev = torch.device("cpu")
        dev_name = "cpu, %d threads" % threads
        log("torch-bench: %s (tf32 n/a on cpu)" % dev_name)
        tf32_field = None

    def sync():
        if cuda:
            torch.cuda.synchronize()

    rss0 = rss_peak_bytes()
    net = torch_models.build(args.model).to(dev, dtype=torch.float32)
    B, R = args.batch, args.resize
    X = torch.rand((B, 1, R, R), dtype=torch.float32, device=dev)
    if args.memory_format == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (B,), device=dev)
    loss_fn = nn.CrossEntropyLoss()  # reduction="mean"
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    sync()
    startup = time.perf_counter() - T_START
    nparams = sum(p.numel() for p in net.parameters())
    log("torch-bench: torch %s, model %s (%d params), batch %d, input %dx%d, "
        "startup %.2f s" % (torch.__version__, args.model, nparams, B, R, R, startup))

    def train_step():
        opt.zero_grad()
        loss = loss_fn(net(X), y)
        loss.backward()
        opt.step()
        return loss

    # ---- training
    net.train()
    first_step = None
    for i in range(args.warmup):
        t = time.perf_counter()
        loss = train_step()
        sync()
        if first_step is None:
            first_step = time.perf_counter() - t
        log("  train warmup %d/%d: %.3f s, loss %.4f"
            % (i + 1, args.warmup, time.perf_counter() - t, loss.item()))
    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats(dev)
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = train_step()
        if not cuda:
            log("  train step %d/%d: %.3f s cumulative" % (
                i + 1, args.steps, time.perf_counter() - t0))
    sync()
    train_s = time.perf_counter() - t0
    last_loss = loss.item()
    if cuda:
        peak = torch.cuda.max_memory_allocated(dev)
        peak_kind = "cuda_max_memory_allocated"
    else:
        peak = rss_peak_bytes() - rss0
        peak_kind = "cpu_peak_rss_growth"
    train_ips = B * args.steps / train_s
    log("torch-bench: train %d steps in %.3f s = %.1f images/s (%.1f ms/step), "
        "last loss %.4f, peak %.1f MiB (%s)"
        % (args.steps, train_s, train_ips, 1e3 * train_s / args.steps,
           last_loss, peak / 2**20, peak_kind))

    # ---- inference
    net.eval()
    with torch.no_grad():
        for i in range(args.warmup):
            t = time.perf_counter()
            net(X)
            sync()
            log("  infer warmup %d/%d: %.3f s"
                % (i + 1, args.warmup, time.perf_counter() - t))
        sync()
        t0 = time.perf_counter()
        for i in range(args.steps):
            out = net(X)
        sync()
        infer_s = time.perf_counter() - t0
    assert out.dtype == torch.float32 and tuple(out.shape) == (B, 10)
    infer_ips = B * args.steps / infer_s
    log("torch-bench: infer %d steps in %.3f s = %.1f images/s (%.1f ms/step)"
        % (args.steps, infer_s, infer_ips, 1e3 * infer_s / args.steps))

    print(json.dumps({
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "device": dev_name,
        "tf32": tf32_field,
        "memory_format": args.memory_format,
        "model": args.model,
        "batch": B,
        "resize": R,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": threads,
        "cudnn_benchmark": True if cuda else None,
        "train_images_per_sec": round(train_ips, 3),
        "infer_images_per_sec": round(infer_ips, 3),
        "train_step_seconds": round(train_s / args.steps, 6),
        "infer_step_seconds": round(infer_s / args.steps, 6),
        "startup_seconds": round(startup, 3),
        "first_step_seconds": round(first_step, 3) if first_step is not None else None,
        "last_loss": round(last_loss, 6),
        "peak_bytes": int(peak),
        "peak_kind": peak_kind,
    }), flush=True)


if __name__ == "__main__":
    main()
