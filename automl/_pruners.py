"""Pruners: stop poor trials early from their per-epoch reports, under every executor.

A pruner is any callable ``pruner(step, metrics) -> bool`` (True: stop the trial). The search
loop calls it in the driver for each report a running trial makes, after the report is stored,
so the same pruner works with the inline, local and Ray executors, and its decision reaches the
worker as the answer to that report.

:class:`ASHAPruner` is asynchronous successive halving (Li et al., "A System for Massively
Parallel Hyperparameter Tuning", MLSys 2020) with the decision rule of Ray Tune's
``ASHAScheduler``: no generation barrier, a trial is judged against the trials that reached the
same rung before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from automl._errors import UsageError
from automl.executors._jobs import Step
from store import Store, TrialStatus

__all__ = ["ASHAPruner", "make_pruner", "pruner_names", "restore_pruner"]


class ASHAPruner:
    """Asynchronous successive halving.

    Rungs sit at ``min_resource * reduction_factor**k`` steps (epochs), for every ``k`` whose rung
    is below ``max_resource``. The first time a trial reports at or past a rung, its objective is
    compared with the values that earlier trials recorded at that rung: it goes on if it is at
    least the ``1 - 1/reduction_factor`` quantile of them (it is in the top ``1/reduction_factor``),
    otherwise it is stopped; either way its value is recorded there. The first trial to reach a
    rung always goes on. A report that skips rungs is judged at the highest rung it passed.

    Args:
        min_resource: the first rung (Tune's ``grace_period``): no trial stops before it.
        reduction_factor: keep the top ``1/reduction_factor`` at each rung (Tune's default, 4).
        max_resource: steps of a full evaluation (e.g. the training epochs); no rung at or past it,
            so a trial that runs to the end completes. ``None``: no limit.
        objective: the metric to judge, ``"-name"`` to minimize; ``None`` until :meth:`bind`
            (``automl.search`` binds it to the search's objective).

    >>> asha = ASHAPruner(reduction_factor=2, objective="accuracy")
    >>> [asha(Step(n, 1, {"accuracy": a}), {}) for n, a in enumerate([0.5, 0.9, 0.4, 0.95])]
    [False, False, True, False]
    """

    def __init__(
        self,
        *,
        min_resource: int = 1,
        reduction_factor: int = 4,
        max_resource: int | None = None,
        objective: str | None = None,
    ) -> None:
        if isinstance(min_resource, bool) or not isinstance(min_resource, int) or min_resource < 1:
            raise ValueError(f"min_resource must be an integer >= 1, got {min_resource!r}")
        if isinstance(reduction_factor, bool) or not isinstance(reduction_factor, int) or reduction_factor < 2:
            raise ValueError(f"reduction_factor must be an integer >= 2, got {reduction_factor!r}")
        if max_resource is not None and (
            isinstance(max_resource, bool) or not isinstance(max_resource, int) or max_resource < 1
        ):
            raise ValueError(f"max_resource must be None or an integer >= 1, got {max_resource!r}")
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.max_resource = max_resource
        self.metric: str | None = None
        self.maximize = True
        self._rungs: dict[int, dict[int, float]] = {}  # rung (step) -> trial number -> value (maximized)
        if objective is not None:
            self.bind(objective)

    def __repr__(self) -> str:
        sign = "" if self.maximize else "-"
        return (
            f"ASHAPruner(min_resource={self.min_resource}, reduction_factor={self.reduction_factor}, "
            f"max_resource={self.max_resource}, objective={sign}{self.metric!r})"
        )

    def bind(self, objective: str) -> None:
        """Judge ``objective`` (``"-loss"``: lower is better)."""
        self.maximize = not objective.startswith("-")
        self.metric = objective.lstrip("-")

    def rungs(self, upto: int) -> list[int]:
        """The rungs at or below step ``upto``, lowest first."""
        out, r = [], self.min_resource
        while r <= upto and (self.max_resource is None or r < self.max_resource):
            out.append(r)
            r *= self.reduction_factor
        return out

    def __call__(self, step: Step, metrics: Mapping[str, Any]) -> bool:
        """True to stop trial ``step.number`` now."""
        if self.metric is None:
            raise RuntimeError("ASHAPruner has no objective: pass objective= or call bind() first")
        value = step.metrics.get(self.metric, metrics.get(self.metric))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False  # nothing to judge (a failing trial fails on its own)
        value = float(value) if self.maximize else -float(value)
        for rung in reversed(self.rungs(step.step)):
            recorded = self._rungs.setdefault(rung, {})
            if step.number in recorded:
                return False  # judged at this rung (or a higher one) already
            cutoff = self._cutoff(recorded)
            recorded[step.number] = value
            return cutoff is not None and value < cutoff
        return False

    def _cutoff(self, recorded: Mapping[int, float]) -> float | None:
        if not recorded:
            return None
        return float(np.percentile(list(recorded.values()), (1 - 1 / self.reduction_factor) * 100))

    def restore(self, history: Iterable[tuple[int, int, float]]) -> None:
        """Hear again the reports ``(trial, step, value)`` of earlier trials, in order (on resume)."""
        if self.metric is None:
            raise RuntimeError("ASHAPruner has no objective: pass objective= or call bind() first")
        for number, step, value in history:
            self(Step(number, step, {self.metric: value}), {})


def pruner_names() -> list[str]:
    return ["asha"]


def make_pruner(pruner: Any, evaluator: Any, objective: str) -> Any:
    """A pruner from ``automl.search(pruner=...)``: None, ``"asha"``, or any callable.

    ``"asha"`` stops at the evaluator's ``config.epochs`` when it has one (training evaluators).
    An :class:`ASHAPruner` without an objective is bound to the search's.
    """
    if pruner is None or pruner == "none":
        return None
    if isinstance(pruner, str):
        if pruner != "asha":
            raise UsageError(f"unknown pruner {pruner!r}; choose one of none, {', '.join(pruner_names())}")
        epochs = getattr(getattr(evaluator, "config", None), "epochs", None)
        pruner = ASHAPruner(max_resource=epochs if isinstance(epochs, int) and epochs > 0 else None)
    if not callable(pruner):
        raise UsageError(f"pruner must be None, 'asha' or a callable (step, metrics) -> bool, got {pruner!r}")
    if isinstance(pruner, ASHAPruner) and pruner.metric is None:
        pruner.bind(objective)
    return pruner


def restore_pruner(pruner: Any, store: Store, search_id: int) -> None:
    """Rebuild a pruner's rungs from the stored reports of finished trials (a resumed search)."""
    restore = getattr(pruner, "restore", None)
    if restore is None:
        return
    finished = [TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.FAILED]
    history = []
    for t in store.trials(search_id, statuses=finished, order="result_seq"):
        history += [(t.number, s.step, s.value) for s in store.steps(search_id, t.number) if s.value is not None]
    restore(history)
