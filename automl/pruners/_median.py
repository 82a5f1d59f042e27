"""The median stopping rule."""

from __future__ import annotations

import numpy as np

from automl.pruners._asha import default_min_resource
from automl.pruners._base import PruneDecision, Pruner, check_int

__all__ = ["MedianPruner"]


class MedianPruner(Pruner):
    """Stop a trial whose best value so far is worse than the median of the other trials' values
    at the same step (Optuna's ``MedianPruner``; Golovin et al., "Google Vizier", KDD 2017).

    The loop is asynchronous and hears reports, not completions, so "the other trials" are all
    those that have reported that step, running ones included (Optuna counts completed trials
    only): nothing is stopped at a step until ``n_startup_trials`` other trials have reported it.
    No trial is stopped during its first ``n_warmup_steps`` steps (steps count from 1: it is first
    judged at step ``n_warmup_steps + 1``), nor at ``max_resource`` or later (it has finished).

    Args:
        n_startup_trials: other trials that must have reported a step before it stops any.
        n_warmup_steps: steps never judged; ``None``: those before the first rung ASHA would use
            (:func:`default_min_resource`: 2 of 10 epochs), 0 when ``max_resource`` is unknown.
        max_resource: steps of a full evaluation (the training epochs), or None.
        objective, maximize: see :class:`Pruner`.

    >>> from automl.executors import Step
    >>> median = MedianPruner(n_startup_trials=2, n_warmup_steps=0, objective="-loss")
    >>> [median(Step(n, 1, {"loss": v})) for n, v in enumerate([0.5, 0.3, 0.4, 0.6, 0.45])]
    [False, False, False, True, False]
    """

    name = "median"
    options = ("n_startup_trials", "n_warmup_steps", "max_resource")

    def __init__(
        self,
        *,
        n_startup_trials: int = 5,
        n_warmup_steps: int | None = None,
        max_resource: int | None = None,
        objective: str | None = None,
        maximize: bool | None = None,
    ) -> None:
        check_int(n_startup_trials, "n_startup_trials", 1)
        check_int(n_warmup_steps, "n_warmup_steps", 0, optional=True)
        check_int(max_resource, "max_resource", 1, optional=True)
        if n_warmup_steps is None:
            n_warmup_steps = default_min_resource(max_resource, 3) - 1 if max_resource is not None else 0
        self.n_startup_trials, self.n_warmup_steps, self.max_resource = n_startup_trials, n_warmup_steps, max_resource
        self._values: dict[int, dict[int, float]] = {}  # step -> trial number -> value there (maximized)
        self._best: dict[int, float] = {}  # trial number -> its best value so far (maximized)
        super().__init__(objective, maximize)

    def __repr__(self) -> str:
        sign = "" if self.maximize else "-"
        return (
            f"MedianPruner(n_startup_trials={self.n_startup_trials}, n_warmup_steps={self.n_warmup_steps}, "
            f"max_resource={self.max_resource}, objective={sign}{self.metric!r})"
        )

    def _decide(self, number: int, step: int, value: float) -> PruneDecision:
        score = self._score(value)
        best = max(score, self._best.get(number, score))
        self._best[number] = best
        at_step = self._values.setdefault(step, {})
        others = [v for n, v in at_step.items() if n != number]
        at_step[number] = score
        if step <= self.n_warmup_steps or (self.max_resource is not None and step >= self.max_resource):
            return PruneDecision(stop=False)
        if len(others) < self.n_startup_trials:
            return PruneDecision(stop=False)
        median = float(np.median(others))
        return self._decision(
            best < median, step=step, rung=step, value=self._unscore(best), threshold=self._unscore(median),
            peers=len(others), rule="median",
        )  # fmt: skip
