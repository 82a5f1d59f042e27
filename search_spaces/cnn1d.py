"""A 1-D convolutional macro space for sequences and time series, input ``(C, L)``.

The default context is MNIST-1D's shape, ``input_shape=(1, 40)`` and ``num_classes=10``; any
channel count and length work. The network is a stack of 2 to 6 blocks; each block (decisions
under ``block{i}.``) is one convolution that keeps the length ("same" padding) with its own

* ``channels`` (16/32/64/128), ``kernel`` (3/5/7/9) and ``dilation`` (1/2/4),
* ``norm`` after the convolution: ``none``, ``batch`` (BatchNorm1d) or ``layer`` (GroupNorm with
  one group: normalises each sample over channels and length),
* ``skip``: a residual add of the block's input, through a 1x1 projection where the channel
  count changes,
* ``activation`` (relu/gelu/silu), applied after the residual add,
* ``pool`` after the block: ``none``, ``max`` or ``avg``, both with window 2 and stride 2 (the
  length is halved, rounded down).

The head (decisions ``head`` and ``dropout``) is global average pooling or a flatten of the
last feature map, dropout, and a linear layer. Block decisions exist only up to the chosen depth,
so the space is conditional.

**The length never drops below 1.** ``block{i}.pool`` is asked only where the length reaching
it is at least 2; on a shorter input it is inactive (absent from the architecture, as if
``none``). Which pool decisions exist therefore depends on ``input_shape``: on MNIST-1D's 40
samples, 5 pools bring the length to 1 (40, 20, 10, 5, 2, 1), so a sixth block after 5 pools
has no pool decision. An architecture is validated under the context it is built with, and one
that pools more often than a shorter input allows is refused, naming the decision. Dilation
keeps the length whatever the input (the padding is ``dilation * (kernel - 1) / 2``); a dilated
kernel wider than the sequence is wasteful but valid.

>>> import torch
>>> from search_spaces.cnn1d import cnn1d
>>> [d.name for d in cnn1d.decisions][:4]
['depth', 'block0.channels', 'block0.kernel', 'block0.dilation']
>>> block = {"channels": 32, "kernel": 5, "dilation": 1, "norm": "batch", "skip": True,
...          "activation": "gelu", "pool": "none"}
>>> arch = {"depth": 2, **{f"block{i}.{k}": v for i in range(2) for k, v in block.items()},
...         "head": "avg", "dropout": 0.1}
>>> cnn1d.build(arch)(torch.zeros(4, 1, 40)).shape
torch.Size([4, 10])
>>> cnn1d.build(arch, input_shape=(3, 128), num_classes=5)(torch.zeros(4, 3, 128)).shape
torch.Size([4, 5])
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import nn

from search_spaces._dsl import Chooser, SpaceError, space

__all__ = ["cnn1d"]

CHANNELS = (16, 32, 64, 128)
KERNELS = (3, 5, 7, 9)  # odd: "same" padding is symmetric
DILATIONS = (1, 2, 4)
NORMS = ("none", "batch", "layer")
POOLS = ("none", "max", "avg")
HEADS = ("avg", "flatten")
DROPOUTS = (0.0, 0.1, 0.3, 0.5)
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@dataclass(frozen=True)
class _BlockSpec:
    channels: int  # output channels
    kernel: int  # odd
    dilation: int  # the convolution's dilation; the padding keeps the length
    norm: str  # "none", "batch" or "layer"
    skip: bool  # residual add of the input (1x1 projection where the channels change)
    activation: str  # a key of _ACTIVATIONS, applied after the residual add
    pool: str  # "none", "max" or "avg" (window 2, stride 2)


@space(input_shape=(1, 40), num_classes=10)
def cnn1d(a: Chooser, input_shape: tuple[int, ...] = (1, 40), num_classes: int = 10) -> nn.Module | None:
    """1-D CNN: 2-6 residual/dilated conv blocks with norm, activation and pooling choices."""
    in_channels, length = _check_shape(tuple(input_shape))  # before tracing returns: a wrong shape fails at once
    blocks = []
    for i in a.repeat("depth", 2, 6):
        with a.scope(f"block{i}"):
            spec = _BlockSpec(
                channels=a.choice("channels", CHANNELS),
                kernel=a.choice("kernel", KERNELS),
                dilation=a.choice("dilation", DILATIONS),
                norm=a.choice("norm", NORMS),
                skip=a.choice("skip", [False, True]),
                activation=a.choice("activation", list(_ACTIVATIONS)),
                # Inactive where pooling would leave no sample: the length stays >= 1.
                pool=a.choice("pool", POOLS) if length >= 2 else "none",
            )
        if spec.pool != "none":
            length //= 2
        blocks.append(spec)
    head = a.choice("head", HEADS)
    dropout = a.choice("dropout", DROPOUTS)
    if a.tracing:  # every decision is asked: sampling needs no modules
        return None
    return _Network(blocks, in_channels, length, head, dropout, num_classes)


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    ok = len(input_shape) == 2 and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in input_shape
    )
    if not ok:
        raise SpaceError(f"space 'cnn1d' takes input_shape (C, L) with C, L >= 1, got {input_shape!r}")
    return int(input_shape[0]), int(input_shape[1])


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # one group: over (C, L) of each sample
    return nn.Identity()


class _Block(nn.Module):
    def __init__(self, spec: _BlockSpec, c_in: int) -> None:
        super().__init__()
        pad = spec.dilation * (spec.kernel - 1) // 2  # "same": L_out == L_in
        # No bias before a norm: the norm's own shift replaces it.
        bias = spec.norm == "none"
        self.conv = nn.Conv1d(c_in, spec.channels, spec.kernel, padding=pad, dilation=spec.dilation, bias=bias)
        self.norm = _norm(spec.norm, spec.channels)
        self.shortcut: nn.Module | None = None
        if spec.skip:
            self.shortcut = nn.Identity() if c_in == spec.channels else nn.Conv1d(c_in, spec.channels, 1, bias=False)
        self.act = _ACTIVATIONS[spec.activation]()
        pools = {"none": nn.Identity, "max": lambda: nn.MaxPool1d(2), "avg": lambda: nn.AvgPool1d(2)}
        self.pool = pools[spec.pool]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, L) -> (B, channels, L or L // 2)
        y = self.norm(self.conv(x))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.pool(self.act(y))


class _Network(nn.Module):
    def __init__(
        self, blocks: list[_BlockSpec], in_channels: int, length: int, head: str, dropout: float, num_classes: int
    ) -> None:
        super().__init__()
        layers, c_in = [], in_channels
        for spec in blocks:
            layers.append(_Block(spec, c_in))
            c_in = spec.channels
        self.blocks = nn.Sequential(*layers)
        # length: the last feature map's length, as the pooling decisions left it
        self.pool = nn.AdaptiveAvgPool1d(1) if head == "avg" else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(c_in if head == "avg" else c_in * length, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, num_classes)
        return self.classifier(self.dropout(self.pool(self.blocks(x)).flatten(1)))
