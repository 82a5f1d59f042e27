"""A small convolutional macro space for small images (digits 1x8x8) and 1-D signals (C, L).

The network is a stack of 1 to 4 layers; each layer (decisions under ``layer{i}.``) picks its
width, kernel size, operation (a plain convolution or a depthwise-separable one), whether to add
a residual connection (with a 1x1 projection where the width changes), and whether to halve the
resolution with max pooling afterwards. Global average pooling and a linear layer end it. Layer
decisions exist only up to the chosen depth, so the space is conditional.

>>> import torch
>>> from search_spaces.cnn import cnn
>>> [d.name for d in cnn.decisions][:4]
['depth', 'layer0.width', 'layer0.kernel', 'layer0.op']
>>> arch = {"depth": 1, "layer0.width": 32, "layer0.kernel": 3, "layer0.op": "conv",
...         "layer0.skip": True, "layer0.pool": False}
>>> cnn.build(arch)(torch.zeros(4, 1, 8, 8)).shape
torch.Size([4, 10])
>>> cnn.build(arch, input_shape=(1, 40))(torch.zeros(4, 1, 40)).shape  # 1-D input: Conv1d
torch.Size([4, 10])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from search_spaces._dsl import Chooser, SpaceError, space

__all__ = ["cnn"]

WIDTHS = (16, 32, 64)
KERNELS = (3, 5)
OPERATIONS = ("conv", "sepconv")


@dataclass(frozen=True)
class _Layer:
    width: int  # output channels
    kernel: int  # odd, padded to keep the resolution
    op: str  # "conv" or "sepconv" (depthwise then pointwise)
    skip: bool  # residual add of the input (projected by a 1x1 conv if the width changes)
    pool: bool  # max pool with stride 2 after the layer


@space(input_shape=(1, 8, 8), num_classes=10)
def cnn(a: Chooser, input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10) -> nn.Module | None:
    """Small CNN: 1-4 layers of conv or separable conv, optional residuals and pooling."""
    nd = _nd(tuple(input_shape))  # checked before tracing returns, so a wrong shape fails at once
    layers = []
    for i in a.repeat("depth", 1, 4):
        with a.scope(f"layer{i}"):
            layers.append(
                _Layer(
                    width=a.choice("width", WIDTHS),
                    kernel=a.choice("kernel", KERNELS),
                    op=a.choice("op", OPERATIONS),
                    skip=a.choice("skip", [False, True]),
                    pool=a.choice("pool", [False, True]),
                )
            )
    if a.tracing:  # every decision is asked: sampling needs no modules
        return None
    return _Network(layers, input_shape[0], nd, num_classes)


def _nd(input_shape: tuple[int, ...]) -> int:
    # (C, H, W) -> 2-D layers, (C, L) -> 1-D layers.
    if len(input_shape) not in (2, 3):
        raise SpaceError(f"space 'cnn' takes input_shape (C, L) or (C, H, W), got {input_shape!r}")
    return len(input_shape) - 1


class _Block(nn.Module):
    def __init__(self, layer: _Layer, c_in: int, nd: int) -> None:
        super().__init__()
        conv = (nn.Conv1d, nn.Conv2d)[nd - 1]
        bn = (nn.BatchNorm1d, nn.BatchNorm2d)[nd - 1]
        pad = layer.kernel // 2
        if layer.op == "conv":
            # No bias: the BatchNorm that follows has its own shift.
            self.op: nn.Module = conv(c_in, layer.width, layer.kernel, padding=pad, bias=False)
        else:
            self.op = nn.Sequential(
                conv(c_in, c_in, layer.kernel, padding=pad, groups=c_in, bias=False),
                conv(c_in, layer.width, 1, bias=False),
            )
        self.bn = bn(layer.width)
        self.shortcut: nn.Module | None = None
        if layer.skip:
            self.shortcut = nn.Identity() if c_in == layer.width else conv(c_in, layer.width, 1, bias=False)
        # ceil_mode: a length-1 (or odd) resolution still pools to at least 1, so any depth fits.
        pool_cls = (nn.MaxPool1d, nn.MaxPool2d)[nd - 1]
        self.pool = pool_cls(2, ceil_mode=True) if layer.pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.op(x))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.pool(torch.relu(y))


class _Network(nn.Module):
    def __init__(self, layers: list[_Layer], in_channels: int, nd: int, num_classes: int) -> None:
        super().__init__()
        blocks, c_in = [], in_channels
        for layer in layers:
            blocks.append(_Block(layer, c_in, nd))
            c_in = layer.width
        self.blocks = nn.Sequential(*blocks)
        self.pool = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)[nd - 1](1)
        self.classifier = nn.Linear(c_in, num_classes)  # global pooling leaves c_in features

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W) or (B, C, L) -> (B, num_classes)
        return self.classifier(self.pool(self.blocks(x)).flatten(1))
