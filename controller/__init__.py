"""Proposers: the strategies that choose which architecture to try next.

Every proposer has the same small interface (:class:`Proposer`): ``ask()`` proposes,
``tell(result)`` learns, state goes to and from a plain dict. ``make(name, space, ...)``
builds one by its strategy name: ``random``, ``evolution``, ``rl``, ``reinforce``, ``tpe``,
``nsga2`` (see ``strategies()``).

The strategy classes are imported on first use (``controller.EvolutionProposer``), so that
``import controller`` does not load PyTorch or Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from controller._base import Proposal, Proposer, Result
from controller._random import RandomProposer
from controller._registry import UnknownStrategy, make, strategies

if TYPE_CHECKING:
    from controller._evolution import EvolutionProposer
    from controller._optuna import NSGA2Proposer, OptunaProposer, TPEProposer
    from controller._rl import ReinforceProposer, RLProposer

__all__ = [
    "EvolutionProposer",
    "NSGA2Proposer",
    "OptunaProposer",
    "Proposal",
    "Proposer",
    "RLProposer",
    "RandomProposer",
    "ReinforceProposer",
    "Result",
    "TPEProposer",
    "UnknownStrategy",
    "make",
    "strategies",
]

_LAZY = {
    "EvolutionProposer": "controller._evolution",
    "NSGA2Proposer": "controller._optuna",
    "OptunaProposer": "controller._optuna",
    "RLProposer": "controller._rl",
    "ReinforceProposer": "controller._rl",
    "TPEProposer": "controller._optuna",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'controller' has no attribute {name!r}")
