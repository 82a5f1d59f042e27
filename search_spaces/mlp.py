"""An MLP space for tabular and 1-D data (any input shape is flattened).

1 to 4 hidden layers; each layer (decisions under ``layer{i}.``) picks its width, activation,
dropout and whether to put batch normalisation before the activation. A linear layer gives
the logits. Layer decisions exist only up to the chosen depth, so the space is conditional.

>>> import torch
>>> from search_spaces.mlp import mlp
>>> [d.name for d in mlp.decisions][:5]
['depth', 'layer0.width', 'layer0.activation', 'layer0.dropout', 'layer0.batchnorm']
>>> arch = {"depth": 1, "layer0.width": 64, "layer0.activation": "relu", "layer0.dropout": 0.1,
...         "layer0.batchnorm": True}
>>> mlp.build(arch)(torch.zeros(4, 40)).shape
torch.Size([4, 10])
>>> mlp.build(arch, input_shape=(1, 8, 8))(torch.zeros(4, 1, 8, 8)).shape  # images are flattened
torch.Size([4, 10])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from search_spaces._dsl import Chooser, space

__all__ = ["mlp"]

WIDTHS = (32, 64, 128, 256)
DROPOUTS = (0.0, 0.1, 0.3)
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class _Hidden:
    width: int
    activation: str  # a key of _ACTIVATIONS
    dropout: float  # probability; 0 adds no Dropout module
    batchnorm: bool  # BatchNorm1d between the linear layer and the activation


@space(input_shape=(40,), num_classes=10)
def mlp(a: Chooser, input_shape: tuple[int, ...] = (40,), num_classes: int = 10) -> nn.Module | None:
    """MLP: 1-4 hidden layers of width 32-256, relu/gelu/tanh, dropout, optional batchnorm."""
    hidden = []
    for i in a.repeat("depth", 1, 4):
        with a.scope(f"layer{i}"):
            hidden.append(
                _Hidden(
                    width=a.choice("width", WIDTHS),
                    activation=a.choice("activation", list(_ACTIVATIONS)),
                    dropout=a.choice("dropout", DROPOUTS),
                    batchnorm=a.choice("batchnorm", [False, True]),
                )
            )
    if a.tracing:  # every decision is asked: sampling needs no modules
        return None
    layers: list[nn.Module] = [nn.Flatten()]  # (B, *input_shape) -> (B, features)
    features = math.prod(input_shape)
    for h in hidden:
        # With batchnorm right after it, the linear layer's bias would be cancelled: drop it.
        layers.append(nn.Linear(features, h.width, bias=not h.batchnorm))
        if h.batchnorm:
            layers.append(nn.BatchNorm1d(h.width))
        layers.append(_ACTIVATIONS[h.activation]())
        if h.dropout > 0:
            layers.append(nn.Dropout(h.dropout))
        features = h.width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
