"""A residual macro space for small images, input ``(C, H, W)`` (default ``(3, 32, 32)``, 10 classes).

A stem (3x3 convolution, BatchNorm, ReLU; its width is the decision ``stem``) is followed by 2
to 4 stages. Each stage (decisions under ``stage{i}.``) has

* ``blocks``: 1 to 3 residual blocks, all of one ``width`` (16/32/64/128);
* ``block``: ``basic`` (two kxk convolutions) or ``bottleneck`` (1x1 down to ``width // 4``,
  kxk, 1x1 back up to ``width``), each convolution followed by BatchNorm;
* ``kernel``: 3 or 5, the size k of the block's spatial convolutions;
* ``se``: squeeze-and-excitation on the block's output before the residual add (global average
  pool, 1x1 down to ``width // 4``, ReLU, 1x1 up, sigmoid gate).

The first block of every stage after the first downsamples with stride 2 (in its kxk
convolution); a block whose stride or width changes the shape adds its input through a 1x1
convolution with BatchNorm, any other adds it as is. Global average pooling and a linear layer
end the network. A stride-2 kxk convolution padded by ``k // 2`` maps a side ``n`` to
``ceil(n / 2)``, so any input size works (a side of 1 stays 1). Stage decisions exist only up to
the chosen number of stages, so the space is conditional.

>>> import torch
>>> from search_spaces.resnet import resnet
>>> [d.name for d in resnet.decisions][:4]
['stem', 'stages', 'stage0.blocks', 'stage0.width']
>>> stage = {"blocks": 1, "width": 32, "block": "basic", "kernel": 3, "se": False}
>>> arch = {"stem": 16, "stages": 2, **{f"stage{i}.{k}": v for i in range(2) for k, v in stage.items()}}
>>> resnet.build(arch)(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
>>> resnet.build(arch, input_shape=(1, 16, 16), num_classes=4)(torch.zeros(2, 1, 16, 16)).shape
torch.Size([2, 4])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from search_spaces._dsl import Chooser, SpaceError, space

__all__ = ["resnet"]

STEMS = (16, 32, 64)
WIDTHS = (16, 32, 64, 128)
BLOCKS = ("basic", "bottleneck")
KERNELS = (3, 5)
_REDUCTION = 4  # bottleneck and squeeze-and-excitation: inner width = width // 4


@dataclass(frozen=True)
class _StageSpec:
    blocks: int  # residual blocks in the stage
    width: int  # output channels of every block
    block: str  # "basic" or "bottleneck"
    kernel: int  # size of the spatial convolutions (odd)
    se: bool  # squeeze-and-excitation in every block


@space(input_shape=(3, 32, 32), num_classes=10)
def resnet(a: Chooser, input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10) -> nn.Module | None:
    """ResNet: stem, 2-4 stages of 1-3 basic/bottleneck blocks, 3x3/5x5 kernels, optional SE."""
    if len(input_shape) != 3:  # checked before tracing returns, so a wrong shape fails at once
        raise SpaceError(f"space 'resnet' takes input_shape (C, H, W), got {tuple(input_shape)!r}")
    stem = a.choice("stem", STEMS)
    stages = []
    for i in a.repeat("stages", 2, 4):
        with a.scope(f"stage{i}"):
            stages.append(
                _StageSpec(
                    blocks=a.integer("blocks", 1, 3),
                    width=a.choice("width", WIDTHS),
                    block=a.choice("block", BLOCKS),
                    kernel=a.choice("kernel", KERNELS),
                    se=a.choice("se", [False, True]),
                )
            )
    if a.tracing:  # every decision is asked: sampling needs no modules
        return None
    return _Network(stem, stages, input_shape[0], num_classes)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    # No conv bias: the BatchNorm's shift replaces it.
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // _REDUCTION
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # (B, C, H, W) -> (B, C, 1, 1)
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class _Block(nn.Module):
    def __init__(self, spec: _StageSpec, c_in: int, stride: int) -> None:
        super().__init__()
        w, k = spec.width, spec.kernel
        if spec.block == "basic":
            layers = [*_conv_bn(c_in, w, k, stride), nn.ReLU(), *_conv_bn(w, w, k)]
        else:
            mid = w // _REDUCTION
            layers = [*_conv_bn(c_in, mid, 1), nn.ReLU(), *_conv_bn(mid, mid, k, stride), nn.ReLU()]
            layers += _conv_bn(mid, w, 1)
        # The last BatchNorm starts at zero: each block starts as its shortcut (Goyal et al., 2017).
        nn.init.zeros_(layers[-1].weight)
        if spec.se:
            layers.append(_SqueezeExcite(w))
        self.body = nn.Sequential(*layers)
        same = stride == 1 and c_in == w
        self.shortcut = nn.Identity() if same else nn.Sequential(*_conv_bn(c_in, w, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, width, H / stride, W / stride)
        return torch.relu(self.body(x) + self.shortcut(x))


class _Network(nn.Module):
    def __init__(self, stem: int, stages: list[_StageSpec], in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, stem, 3), nn.ReLU())
        blocks, c_in = [], stem
        for i, spec in enumerate(stages):
            for j in range(spec.blocks):
                stride = 2 if i > 0 and j == 0 else 1  # stages after the first halve H and W
                blocks.append(_Block(spec, c_in, stride))
                c_in = spec.width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, num_classes)
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))
