"""Strategies by name."""

from __future__ import annotations

import importlib
from typing import Any

from controller._base import Proposer
from search_spaces import Space

__all__ = ["UnknownStrategy", "make", "strategies"]


class UnknownStrategy(ValueError):
    """No strategy of that name."""


# name -> "module:class"; imported on first use: some strategies pull heavier dependencies
# (PyTorch for rl/reinforce, Optuna for tpe/nsga2).
_STRATEGIES = {
    "random": "controller._random:RandomProposer",
    "evolution": "controller._evolution:EvolutionProposer",
    "rl": "controller._rl:RLProposer",
    "reinforce": "controller._rl:ReinforceProposer",
    "tpe": "controller._optuna:TPEProposer",
    "nsga2": "controller._optuna:NSGA2Proposer",
}


def strategies() -> list[str]:
    """Names accepted by :func:`make`."""
    return sorted(_STRATEGIES)


def _load(name: str) -> type[Proposer]:
    module, attr = _STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def make(name: str, space: Space, *, seed: int | None = None, **options: Any) -> Proposer:
    """The proposer called ``name`` over ``space``; ``options`` are its keyword options.

    Raises :class:`UnknownStrategy` for an unknown name or option (a ``TypeError`` of the
    constructor), ``ValueError`` for a bad option value.
    """
    if name not in _STRATEGIES:
        raise UnknownStrategy(f"unknown strategy {name!r}; choose one of {', '.join(strategies())}")
    try:
        return _load(name)(space, seed=seed, **options)
    except TypeError as e:
        raise UnknownStrategy(f"strategy {name!r}: {e}") from e
