"""Strategies by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller._base import Proposer
from controller._random import RandomProposer
from search_spaces import Space

__all__ = ["UnknownStrategy", "make", "strategies"]


class UnknownStrategy(ValueError):
    """No strategy of that name."""


def _registry() -> dict[str, Callable[..., Proposer]]:
    # Imported lazily: optional strategies pull heavier dependencies (optuna, torch).
    from controller._evolution import EvolutionProposer
    from controller._optuna import NSGA2Proposer, TPEProposer
    from controller._rl import ReinforceProposer, RLProposer

    reg: dict[str, Callable[..., Proposer]] = {
        "random": RandomProposer,
        "evolution": EvolutionProposer,
        "rl": RLProposer,
        "reinforce": ReinforceProposer,
        "tpe": TPEProposer,
        "nsga2": NSGA2Proposer,
    }
    return reg


def strategies() -> list[str]:
    """Names accepted by :func:`make`."""
    return sorted(_registry())


def make(name: str, space: Space, *, seed: int | None = None, **options: Any) -> Proposer:
    """The proposer called ``name`` over ``space``; ``options`` are its keyword options."""
    reg = _registry()
    if name not in reg:
        raise UnknownStrategy(f"unknown strategy {name!r}; choose one of {', '.join(sorted(reg))}")
    try:
        return reg[name](space, seed=seed, **options)
    except TypeError as e:
        raise UnknownStrategy(f"strategy {name!r}: {e}") from e
