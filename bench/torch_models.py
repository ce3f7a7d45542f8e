"""PyTorch reference models for comparison with nincl.

nin() is exactly the d2l "Network in Network" Sequential (see
/work/shared/nin-reference.md), so its state_dict keys are
0.0.weight 0.0.bias 0.2.* 0.4.* (block 0), 2.* (block 1), 4.* (block 2),
7.* (block 3), conv weights [out, in, kh, kw].

Init follows d2l train_ch6: xavier_uniform_ on every Conv2d/Linear weight,
biases keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
import os
import sys

from torch import nn


def nin_block(in_channels, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())


def init_weights(m):
    """d2l train_ch6 init: Xavier-uniform weights, default biases."""
    if type(m) == nn.Linear or type(m) == nn.Conv2d:
        nn.init.xavier_uniform_(m.weight)


def nin(num_classes=10, init=True):
    net = nn.Sequential(
        nin_block(1, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        # There are num_classes (10) label classes
        nin_block(384, num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        # Transform the four-dimensional output into two-dimensional output
        # with a shape of (batch size, num_classes)
        nn.Flatten())
    if init:
        net.apply(init_weights)
    return net


def nin_small(num_classes=10, init=True):
    """nincl's NiN for native 28x28 input (docs/models.md): the d2l layout, narrower, with a
    5x5 stride-1 first block, no ReLU on the class scores, Kaiming-uniform weights and zero
    biases (runtime/models/model.c builds the same)."""
    last = nin_block(192, num_classes, kernel_size=3, strides=1, padding=1)
    last[5] = nn.Identity()   # class scores may be negative
    net = nn.Sequential(
        nin_block(1, 48, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(48, 96, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 192, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        last,
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())
    if init:
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return net


MODELS = {"nin": nin, "nin-small": nin_small}


def build(name):
    """Build a model by name: "nin", or "nin-small" if nin_small() exists."""
    fn_name = name.replace("-", "_")
    fn = globals().get(fn_name)
    if fn is None and name != "nin-small":   # the rest of the book's zoo
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
        import d2l_zoo
        fn = d2l_zoo.MODELS.get(name)
    if fn is None or not callable(fn):
        raise SystemExit("torch_models: unknown model %r (have: %s)" % (
            name, ", ".join(n for n in ("nin", "nin_small") if n in globals())))
    return fn()


if __name__ == "__main__":
    import torch
    X = torch.rand(size=(1, 1, 224, 224), dtype=torch.float32)
    net = nin()
    for layer in net:
        X = layer(X)
        print(layer.__class__.__name__, 'output shape:\t', X.shape)
    print(" ".join(net.state_dict().keys()))
