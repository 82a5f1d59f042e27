"""Proposers: the strategies that choose which architecture to try next.

Every proposer has the same small interface (:class:`Proposer`): ``ask()`` proposes,
``tell(result)`` learns, state goes to and from a plain dict. ``make(name, space, ...)``
builds one by its strategy name.
"""

from __future__ import annotations

from controller._base import Proposal, Proposer, Result
from controller._random import RandomProposer
from controller._registry import UnknownStrategy, make, strategies

__all__ = ["Proposal", "Proposer", "RandomProposer", "Result", "UnknownStrategy", "make", "strategies"]
