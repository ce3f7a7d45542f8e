#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-onnx (tests/fuzz/corpus-onnx/): real exports of Debian's
PyTorch, small enough to fuzz quickly (a few channels at 8x8), covering every operator the
reader takes: a training export of a tiny LeNet with BatchNorm (Conv, BatchNormalization with
three outputs, Sigmoid, Pad + AveragePool, Flatten, Gemm), a residual block (Add, padded
MaxPool, GlobalAveragePool), a GoogLeNet-like block (Concat of four, fused Relu), a NiN-like
net with Dropout, a Reshape to [batch, features] and MatMul + Add, x.view(x.size(0), -1), and an inference export (Identity of
initializers). Run with /usr/bin/python3 (Debian's torch); the files are committed."""
import os
import sys
import warnings

import torch
from torch import nn
from torch.nn import functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-onnx")


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2, self.b2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + x)


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.ModuleList([nn.Conv2d(2, 1, k, padding=k // 2) for k in (1, 3, 5)])
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.p4 = nn.Conv2d(2, 1, 1)

    def forward(self, x):
        return torch.cat([F.relu(c(x)) for c in self.p] + [F.relu(self.p4(self.pool(x)))], dim=1)


class ViewMatMul(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)
        self.w = nn.Parameter(torch.randn(10, 2 * 3 * 3) * 0.1)
        self.b = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.c(x)), 2)
        y = F.dropout(y.reshape(-1, 2 * 3 * 3), 0.3, self.training)   # a Reshape to [batch, features]
        return y @ self.w.t() + self.b


class View(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 6 * 6, 10)

    def forward(self, x):
        y = torch.sigmoid(self.c(x))
        return self.fc(y.view(y.size(0), -1))   # Shape, Gather, Unsqueeze, Concat, Reshape


MODELS = {
    "lenet-bn": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
                                       nn.Flatten(), nn.Linear(2 * 3 * 3, 6), nn.BatchNorm1d(6), nn.Sigmoid(),
                                       nn.Linear(6, 10)), True),
    "residual": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(3, 2, 1), Residual(),
                                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(4, 10)), True),
    "inception": (lambda: nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), Branches(), nn.AdaptiveAvgPool2d((1, 1)),
                                        nn.Flatten(), nn.Linear(4, 10)), True),
    "nin-dropout": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 1), nn.ReLU(),
                                          nn.Dropout(0.5), nn.Conv2d(3, 10, 1), nn.AdaptiveAvgPool2d((1, 1)),
                                          nn.Flatten()), True),
    "matmul": (ViewMatMul, True),
    "view": (View, True),
    "inference": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU(),
                                        nn.Flatten(), nn.Linear(2 * 4 * 4, 10)), False),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for name, (make, training) in MODELS.items():
        net = make()
        if not training:
            for m in net.modules():   # equal biases: the export shares them through Identity nodes
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.zeros_(m.bias)
        net.train(training)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.zeros(2, 1, 8, 8), os.path.join(OUT, name + ".onnx"),
                              training=torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL,
                              do_constant_folding=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
