"""Small hand-made spaces and a synthetic objective for the proposer tests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import search_spaces
from search_spaces import Space, space


@space
def tiny(a: search_spaces.Chooser) -> None:
    """Three unconditional decisions: 3 x 4 x 5 = 60 architectures."""
    a.choice("op", ["conv", "pool", "id"])
    a.integer("width", 1, 4)
    a.choice("act", ["relu", "gelu", "tanh", "silu", "none"])


@space
def cond(a: search_spaces.Chooser) -> None:
    """Conditional: a variable depth, per-layer choices, a branch that asks more, inputs, a bool."""
    for i in a.repeat("depth", 1, 3):
        with a.scope(f"layer{i}"):
            if a.choice("kind", ["conv", "mlp"]) == "conv":
                a.choice("kernel", [3, 5, 7])
            else:
                a.integer("units", 16, 64, step=16)
    a.inputs("skip", [0, 1, 2], k=2)
    if a.choice("head", [True, False]):
        a.choice("dropout", [0.0, 0.1, None])


@space
def mixed(a: search_spaces.Chooser) -> None:
    """Architecture and training jointly: floats, log scales, and ranges that exist on one branch only."""
    a.choice("op", ["conv", "pool"])
    a.float("lr", 1e-4, 1e-1, log=True)
    a.float("dropout", 0.0, 0.5)
    if a.choice("optimizer", ["sgd", "adam"]) == "sgd":
        a.float("momentum", 0.5, 0.99)
        a.float("weight_decay", 1e-6, 1e-2, log=True)
    else:
        a.integer("warmup", 1, 1000, log=True)
    a.integer("batch", 2, 5, log=True)  # a log range with only four integers


SMALL = {"tiny": tiny, "cond": cond, "mixed": mixed}


def get_space(name: str) -> Space:
    """A hand-made space or a built-in one (skipping the test when it cannot be imported)."""
    import pytest

    if name in SMALL:
        return SMALL[name]
    try:
        return search_spaces.get(name)
    except (ImportError, search_spaces.SpaceError) as e:  # a colleague's space not there yet
        pytest.skip(f"space {name!r} is not available: {e}")


def objective(sp: Space, arch: Mapping[str, Any]) -> float:
    """A deterministic synthetic score: option (or range) positions weighted by decision, plus a hashed jitter."""
    total = 0.0
    for k, d in enumerate(sp.validate(arch).decisions):
        position = d.to_unit(arch[d.name]) if d.ranged else d.index(arch[d.name]) / max(len(d.options) - 1, 1)
        total += (k % 3 + 1) * position
    jitter = int(hashlib.sha1(search_spaces.arch_key(arch).encode()).hexdigest()[:6], 16) / 16**6
    return total + 0.1 * jitter
