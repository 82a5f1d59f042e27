"""Hyperband as brackets of asynchronous successive halving."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from automl.pruners._asha import ASHAPruner
from automl.pruners._base import PruneDecision, Pruner, check_int

__all__ = ["HyperbandPruner"]


class HyperbandPruner(Pruner):
    """Hyperband (Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
    Optimization", JMLR 2017), asynchronous: each bracket is an :class:`ASHAPruner`.

    Bracket ``s`` (``s = 0 .. s_max``, ``s_max`` the largest with ``min_resource * eta**s <=
    max_resource``) has its first rung at ``round(max_resource / eta**s)``: bracket ``s_max``
    judges early and often, bracket 0 runs every trial to the end. This hedges against curves
    that cross: only the trials of the aggressive brackets are judged early. A trial's bracket
    is a function of its number alone (round robin, ``s = s_max - number % (s_max + 1)``), so
    replaying the stored reports on resume puts every trial back in its bracket.

    Args:
        max_resource: steps of a full evaluation (the training epochs); required.
        min_resource: the first rung of the most aggressive bracket (Hyperband's ``r``).
        reduction_factor: ``eta``: each bracket keeps the top ``1/eta`` at each rung.
        min_trials: per bracket and rung, as in :class:`ASHAPruner` (default ``eta``).
        objective, maximize: see :class:`Pruner`.

    >>> hb = HyperbandPruner(max_resource=27, objective="accuracy")
    >>> [(s, b.min_resource, b.rungs()) for s, b in enumerate(hb.brackets)]
    [(0, 27, []), (1, 9, [9]), (2, 3, [3, 9]), (3, 1, [1, 3, 9])]
    >>> [hb.bracket_of(n) for n in range(6)]
    [3, 2, 1, 0, 3, 2]
    """

    name = "hyperband"
    options = ("max_resource", "min_resource", "reduction_factor", "min_trials")
    promotes = True

    def __init__(
        self,
        *,
        max_resource: int | None = None,
        min_resource: int = 1,
        reduction_factor: int = 3,
        min_trials: int | None = None,
        objective: str | None = None,
        maximize: bool | None = None,
    ) -> None:
        check_int(min_resource, "min_resource", 1)
        check_int(reduction_factor, "reduction_factor", 2)
        check_int(min_trials, "min_trials", 1, optional=True)
        if max_resource is None:
            raise ValueError("max_resource is required: the steps of a full evaluation (e.g. the training epochs)")
        check_int(max_resource, "max_resource", 1)
        if min_resource > max_resource:
            raise ValueError(f"min_resource must be <= max_resource, got {min_resource=}, {max_resource=}")
        eta = reduction_factor
        s_max = 0
        while min_resource * eta ** (s_max + 1) <= max_resource:
            s_max += 1
        self.max_resource, self.min_resource, self.reduction_factor = max_resource, min_resource, eta
        self.brackets: list[ASHAPruner] = []  # index s
        for s in range(s_max + 1):
            bracket = ASHAPruner(
                min_resource=max(1, round(max_resource / eta**s)), reduction_factor=eta,
                max_resource=max_resource, min_trials=min_trials,
            )  # fmt: skip
            bracket.bracket = s
            self.brackets.append(bracket)
        super().__init__(objective, maximize)

    def __repr__(self) -> str:
        sign = "" if self.maximize else "-"
        return (
            f"HyperbandPruner(max_resource={self.max_resource}, min_resource={self.min_resource}, "
            f"reduction_factor={self.reduction_factor}, brackets={len(self.brackets)}, objective={sign}{self.metric!r})"
        )

    def bind(self, objective: str, maximize: bool | None = None) -> None:
        super().bind(objective, maximize)
        for bracket in self.brackets:
            bracket.bind(objective, self.maximize)

    def bracket_of(self, number: int) -> int:
        """The bracket ``s`` of trial ``number``: round robin from the most aggressive."""
        s_max = len(self.brackets) - 1
        return s_max - number % (s_max + 1)

    def promotion(self, paused: Mapping[int, int]) -> int | None:
        """The best promotable trial of any bracket (each promotes among its own trials)."""
        by_bracket: dict[int, dict[int, int]] = {}
        for number, step in paused.items():
            by_bracket.setdefault(self.bracket_of(number), {})[number] = step
        found = [c for s, own in by_bracket.items() for c in self.brackets[s].promotable(own)]
        return max(found)[2] if found else None

    def _decide(self, number: int, step: int, value: float) -> PruneDecision:
        decision = self.brackets[self.bracket_of(number)]._decide(number, step, value)
        return replace(decision, pruner=self.name) if decision.pruner else decision  # judged: by Hyperband
