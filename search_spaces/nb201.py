"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 5 operations on 6 edges, 15,625 cells.

A cell is a DAG on 4 nodes; node ``j`` sums ``op_{j<-i}(node_i)`` over ``i < j`` and node 3 is
the output. The decision ``"j<-i"`` picks the operation of edge ``i -> j``. The network is the
benchmark's fixed skeleton: stem, 3 stages of ``N`` cells (``C``, ``2C``, ``4C`` channels) joined
by residual reductions, then BN-ReLU, global pooling and a linear classifier. Its parameter count
matches the benchmark's ``params_m`` column.

>>> import torch
>>> from search_spaces.nb201 import from_arch_str, nb201, to_arch_str
>>> text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
>>> arch = from_arch_str(text)
>>> arch["3<-1"], to_arch_str(arch) == text
('nor_conv_3x3', True)
>>> model = nb201.build(arch)
>>> sum(p.numel() for p in model.parameters())  # the table's params_m, in millions (checked by the tests)
802426
>>> model(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
>>> nb201.build(arch, input_shape=(1, 8, 8))(torch.zeros(2, 1, 8, 8)).shape  # any image size
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from search_spaces._arch import Arch
from search_spaces._dsl import Chooser, SpaceError, space

__all__ = ["EDGES", "OPS", "from_arch_str", "nb201", "to_arch_str"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to, from) in the benchmark's order: node 1's inputs, then node 2's, then node 3's.
_EDGE_PAIRS = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
EDGES = tuple(f"{j}<-{i}" for j, i in _EDGE_PAIRS)
_NODES = 4


@space(input_shape=(3, 32, 32), num_classes=10)
def nb201(
    a: Chooser, input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10, C: int = 16, N: int = 5
) -> nn.Module | None:
    """NAS-Bench-201 cells: 6 edges, each one of 5 operations (15,625 cells)."""
    if len(input_shape) != 3:  # checked before tracing returns, so a wrong shape fails at once
        raise SpaceError(f"space 'nb201' takes input_shape (C, H, W), got {tuple(input_shape)!r}")
    ops = {edge: a.choice(edge, OPS) for edge in EDGES}
    if a.tracing:  # building costs ~20 ms; sampling and validation need only the decisions
        return None
    return _Network(ops, in_channels=input_shape[0], num_classes=num_classes, C=C, N=N)


def to_arch_str(arch: Mapping[str, Any]) -> str:
    """The benchmark's string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of a (validated) cell."""
    ops = nb201.validate(arch).arch
    groups = ("|" + "|".join(f"{ops[f'{j}<-{i}']}~{i}" for i in range(j)) + "|" for j in range(1, _NODES))
    return "+".join(groups)


def from_arch_str(text: str) -> Arch:
    """The cell of a benchmark string; raises ``ValueError`` naming what is malformed."""
    if not isinstance(text, str):
        raise ValueError(f"a NAS-Bench-201 cell string must be a str, got {text!r}")
    groups = text.strip().split("+")
    if len(groups) != _NODES - 1:
        raise ValueError(f"a NAS-Bench-201 cell string has 3 '+'-separated groups, got {len(groups)}: {text!r}")
    arch: dict[str, str] = {}
    for j, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise ValueError(f"group {j} of {text!r} must look like '|op~0|...|', got {group!r}")
        entries = group[1:-1].split("|")
        if len(entries) != j:
            raise ValueError(f"group {j} of {text!r} must list {j} edge(s) into node {j}, got {len(entries)}")
        for i, entry in enumerate(entries):
            op, sep, source = entry.partition("~")
            if not sep or source != str(i):
                raise ValueError(f"edge {i} of group {j} in {text!r} must be 'op~{i}', got {entry!r}")
            if op not in OPS:
                raise ValueError(f"unknown operation {op!r} on edge {j}<-{i} in {text!r}; operations: {list(OPS)}")
            arch[f"{j}<-{i}"] = op
    return Arch(arch)


# -- the network (mirrors xautodl's TinyNetwork/InferCell, so parameter counts agree) --------
def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    # The benchmark's ReLUConvBN with affine BN: the conv has no bias (the BN shift replaces it).
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


def _op(name: str, channels: int) -> nn.Module | None:
    # None stands for "none": the edge contributes zeros, so it is skipped in the sum.
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return _relu_conv_bn(channels, channels, kernel=int(name[-1]), stride=1)  # nor_conv_1x1 / nor_conv_3x3


class _Cell(nn.Module):
    """node_j = sum_{i<j} op_{j<-i}(node_i); the cell's output is node 3."""

    def __init__(self, ops: Mapping[str, str], channels: int) -> None:
        super().__init__()
        built = [_op(ops[edge], channels) for edge in EDGES]
        self.edges = nn.ModuleList([m if m is not None else nn.Identity() for m in built])  # in EDGES order
        self._live = tuple(m is not None for m in built)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, _NODES):
            terms = [self.edges[e](nodes[i]) for e, (to, i) in enumerate(_EDGE_PAIRS) if to == j and self._live[e]]
            # A node with only "none" inputs is all zeros (same shape: every op keeps C and H, W).
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[-1]


class _ResidualReduction(nn.Module):
    """The benchmark's ResNet basic block with stride 2 between stages (channels doubled)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, kernel=3, stride=2)
        self.conv_b = _relu_conv_bn(c_out, c_out, kernel=3, stride=1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class _Network(nn.Module):
    def __init__(self, ops: Mapping[str, str], in_channels: int, num_classes: int, C: int, N: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, channels in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(_ResidualReduction(channels // 2, channels))
            layers += [_Cell(ops, channels) for _ in range(N)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C_in, H, W) -> logits (B, num_classes)
        features = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.pool(features).flatten(1))
