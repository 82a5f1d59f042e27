"""Asynchronous successive halving (ASHA)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from automl.pruners._base import PruneDecision, Pruner, check_int

__all__ = ["ASHAPruner", "default_min_resource"]


def default_min_resource(max_resource: int | None, reduction_factor: int) -> int:
    """The first rung for a training of ``max_resource`` steps (epochs): ``max(ceil(R / eta**2),
    min(R // eta, eta))``, at least 1 (1 when ``R`` is unknown).

    ``R / eta**2`` leaves two reductions before the end, as Hyperband's most aggressive useful
    bracket, and keeps rungs proportional on long trainings (100 epochs: rungs 12, 36). On short
    trainings that rule would judge after one or two epochs, which are mostly warm-up and
    learning-rate schedule: learning curves cross there (on the 10-epoch CNN demo, trials were
    stopped at chance after epoch 1, and the architecture that ends best, 0.9944, was behind at
    epoch 4). So the first rung is at least epoch ``eta``, or a third of the training when that is
    earlier: 10 epochs give rungs 3, 9; 27 give 3, 9; 6 give 2. No first rung makes stopping safe
    on curves that cross late; Hyperband hedges by judging only some of the trials early.

    >>> [default_min_resource(r, 3) for r in (1, 2, 6, 10, 27, 100)]
    [1, 1, 2, 3, 3, 12]
    """
    if max_resource is None:
        return 1
    two_reductions = math.ceil(max_resource / reduction_factor**2)
    return max(1, two_reductions, min(max_resource // reduction_factor, reduction_factor))


class ASHAPruner(Pruner):
    """Asynchronous successive halving (Li et al., "A System for Massively Parallel
    Hyperparameter Tuning", MLSys 2020), with the decision rule of Ray Tune's ``ASHAScheduler``.

    Rungs sit at ``min_resource * reduction_factor**k`` steps (epochs), for every ``k`` whose rung
    is below ``max_resource``. The first time a trial reports at or past a rung, its value is
    compared with those that earlier trials recorded at that rung: it goes on if it is at least
    their ``1 - 1/reduction_factor`` quantile (it is in their top ``1/reduction_factor``),
    otherwise it is stopped; either way its value is recorded there. No generation barrier: a
    trial is judged against the trials that reached the rung before it. A report that skips rungs
    is judged at the highest rung it passed. Nothing is decided at a rung until ``min_trials``
    trials (the judged one included) have reached it.

    **Promotion.** A stop is not final: as more trials reach a rung, a trial stopped there may
    rise into the top ``floor(n / reduction_factor)`` of the ``n`` values recorded at the rung, as
    in the paper's promotion rule. :meth:`promotion` names such a trial (the highest rung first,
    then the best value), and the search loop resumes it from the checkpoint it paused with, so
    an early judgement against few peers is corrected once there are more.

    Args:
        min_resource: the first rung (Tune's ``grace_period``): no trial stops before it.
            ``None``: :func:`default_min_resource` of ``max_resource``.
        reduction_factor: keep the top ``1/reduction_factor`` at each rung.
        max_resource: steps of a full evaluation (the training epochs); no rung at or past it, so
            a trial that runs to the end completes. ``None``: no limit.
        min_trials: trials that must have reached a rung before it stops any; ``None``:
            ``reduction_factor`` (no decision from one or two values). 1 or 2: Ray Tune's rule,
            where the second trial at a rung can already be stopped.
        objective, maximize: see :class:`Pruner`.

    >>> from automl.executors import Step
    >>> asha = ASHAPruner(max_resource=10, objective="accuracy")
    >>> asha.rungs()
    [3, 9]
    >>> [asha(Step(n, 3, {"accuracy": a})) for n, a in enumerate([0.5, 0.9, 0.4, 0.95])]
    [False, False, True, False]
    >>> reason = asha.decide(Step(4, 3, {"accuracy": 0.6}))
    >>> reason.stop, reason.rung, reason.value, round(reason.threshold, 3), reason.peers
    (True, 3, 0.6, 0.9, 4)
    """

    name = "asha"
    options = ("min_resource", "reduction_factor", "max_resource", "min_trials")
    promotes = True

    def __init__(
        self,
        *,
        min_resource: int | None = None,
        reduction_factor: int = 3,
        max_resource: int | None = None,
        min_trials: int | None = None,
        objective: str | None = None,
        maximize: bool | None = None,
    ) -> None:
        check_int(min_resource, "min_resource", 1, optional=True)
        check_int(reduction_factor, "reduction_factor", 2)
        check_int(max_resource, "max_resource", 1, optional=True)
        check_int(min_trials, "min_trials", 1, optional=True)
        self.reduction_factor = reduction_factor
        self.max_resource = max_resource
        if min_resource is None:
            min_resource = default_min_resource(max_resource, reduction_factor)
        self.min_resource = min_resource
        self.min_trials = min_trials if min_trials is not None else reduction_factor
        self.bracket: int | None = None  # set when it is one of Hyperband's brackets
        self._rungs: dict[int, dict[int, float]] = {}  # rung (step) -> trial number -> value (maximized)
        super().__init__(objective, maximize)

    def __repr__(self) -> str:
        sign = "" if self.maximize else "-"
        return (
            f"ASHAPruner(min_resource={self.min_resource}, reduction_factor={self.reduction_factor}, "
            f"max_resource={self.max_resource}, min_trials={self.min_trials}, objective={sign}{self.metric!r})"
        )

    def rungs(self, upto: int | None = None) -> list[int]:
        """The rungs at or below step ``upto`` (default: all; needs ``max_resource``), lowest first."""
        if upto is None and self.max_resource is None:
            raise ValueError("rungs() without upto needs max_resource")
        out, r = [], self.min_resource
        while (upto is None or r <= upto) and (self.max_resource is None or r < self.max_resource):
            out.append(r)
            r *= self.reduction_factor
        return out

    def _decide(self, number: int, step: int, value: float) -> PruneDecision:
        score = self._score(value)
        for rung in reversed(self.rungs(step)):
            recorded = self._rungs.setdefault(rung, {})
            if number in recorded:
                break  # judged at this rung (or a higher one) already
            peers = len(recorded)
            cutoff = self._cutoff(recorded) if peers >= max(1, self.min_trials - 1) else None
            recorded[number] = score
            if cutoff is None:
                break
            return self._decision(
                score < cutoff, step=step, rung=rung, value=value, threshold=self._unscore(cutoff),
                bracket=self.bracket, peers=peers, rule=f"top 1/{self.reduction_factor}",
            )  # fmt: skip
        return PruneDecision(stop=False)

    def promotion(self, paused: Mapping[int, int]) -> int | None:
        best = max(self.promotable(paused), default=None)
        return None if best is None else best[2]

    def promotable(self, paused: Mapping[int, int]) -> list[tuple[int, float, int]]:
        """``(rung, score, number)`` of each paused trial now in the top ``1/reduction_factor``
        of the rung it stopped at (scores oriented so that higher is better)."""
        out = []
        for number, step in paused.items():
            reached = self.rungs(step)
            recorded = self._rungs.get(reached[-1], {}) if reached else {}
            if number not in recorded:
                continue
            score = recorded[number]
            better = sum(1 for s in recorded.values() if s > score)
            if better < len(recorded) // self.reduction_factor:
                out.append((reached[-1], score, number))
        return out

    def _cutoff(self, recorded: Mapping[int, float]) -> float:
        return float(np.percentile(list(recorded.values()), (1 - 1 / self.reduction_factor) * 100))
