"""The proposer interface: ask proposes, tell learns, state goes to and from a plain dict."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from search_spaces import Arch, Space

__all__ = ["Proposal", "Proposer", "Result"]

Status = Literal["completed", "failed", "pruned", "infeasible"]


@dataclass(frozen=True)
class Proposal:
    """What :meth:`Proposer.ask` returns.

    ``info`` is JSON-able and is stored with the trial; it comes back in :class:`Result`, so a
    proposer never has to remember what it asked (e.g. the RL policy's log-probabilities).
    """

    arch: Arch
    parent: int | None = None  # trial number this one was derived from (evolution)
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """A finished trial as a proposer hears of it.

    ``score`` is the objective oriented so that higher is better (``None`` unless completed or
    pruned); ``scores`` holds every objective, same orientation, for multi-objective proposers.
    """

    number: int
    arch: Arch
    status: Status
    score: float | None
    scores: tuple[float, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    parent: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


class Proposer(abc.ABC):
    """Base class of every search strategy.

    Contract:
      * :meth:`ask` proposes one architecture of ``space``. It does not change what must be
        saved, except the random generator, whose state is part of :meth:`state_dict`.
        It returns ``None`` for "nothing right now; ask again after the next tell".
      * :meth:`tell` learns from one finished trial; results arrive in the order they were
        stored, including trials proposed by an earlier driver of the same search.
      * ``load_state_dict(state_dict())`` on a new proposer of the same space and options
        gives the same next proposals. The dict is JSON-able: it is stored as a row.
      * No database, no training loop in here.

    A proposer whose ``replay`` is True rebuilds its model by hearing every stored result
    again on resume (``state_dict`` then only holds the generator).
    """

    #: Registry name (``strategy=`` in the API and CLI).
    name: ClassVar[str] = ""
    #: Rebuild on resume by re-telling all results rather than from a checkpoint.
    replay: ClassVar[bool] = False
    #: Number of objectives the proposer optimizes (NSGA-II takes several).
    objectives: ClassVar[int] = 1

    def __init__(self, space: Space, *, seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)

    @abc.abstractmethod
    def ask(self) -> Proposal | None:
        """Propose one architecture (``None``: nothing now)."""

    def tell(self, result: Result) -> None:  # noqa: B027 - a no-op is a valid default
        """Learn from one finished trial."""

    def checkpoint_due(self) -> bool:
        """True when the state must be stored now (after :meth:`tell`), e.g. after an RL update.

        The loop also saves :meth:`state_dict` every few dozen results and at exit, with the
        sequence number of the last result told; results stored after it are told again on
        resume, so a skipped save loses nothing.
        """
        return False

    def reseed(self, entropy: int) -> None:
        """Fold ``entropy`` into the generator (the loop does it on resume, with the trial count).

        A generator restored from a checkpoint would otherwise repeat the asks made after it.
        """
        self.rng = np.random.default_rng([int(self.rng.integers(2**32)), int(entropy)])

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state; subclasses extend ``super().state_dict()``."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = dict(state["rng"])
