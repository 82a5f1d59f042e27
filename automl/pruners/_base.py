"""What every pruner shares: the decision record, the objective's direction, replay on resume."""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from automl.executors._jobs import Step

__all__ = ["PRUNED_KEY", "PruneDecision", "Pruner", "ask_pruner"]

PRUNED_KEY = "_pruned"
"""The reserved key of a step's metrics that holds why the trial was stopped there (JSON)."""


@dataclass(frozen=True)
class PruneDecision:
    """A pruner's answer to one report, with what it was judged on.

    Values are in the metric's own units (a loss stays a loss): ``value`` missed ``threshold``
    when ``value < threshold`` for a maximized metric, ``value > threshold`` for a minimized one.
    A decision is truthy when it stops the trial.
    """

    stop: bool
    pruner: str = ""  # "asha", "hyperband", "median"
    step: int | None = None  # the report's step (epoch)
    rung: int | None = None  # the step it was judged at: the ASHA rung (a report past it) or the step
    metric: str | None = None
    maximize: bool = True
    value: float | None = None  # the trial's value there (median: its best so far)
    threshold: float | None = None  # what it had to reach; None: not judged (warm-up, too few trials)
    bracket: int | None = None  # Hyperband's bracket s (its first rung is max_resource / eta**s)
    peers: int = 0  # how many other trials' values set the threshold
    rule: str = ""  # "top 1/3" or "median"

    def __bool__(self) -> bool:
        return self.stop

    def to_json(self) -> dict[str, Any]:
        """The reason stored under :data:`PRUNED_KEY`: rung, value, threshold, bracket and the rest."""
        return {
            "pruner": self.pruner,
            "rung": self.rung,
            "step": self.step,
            "metric": self.metric,
            "maximize": self.maximize,
            "value": self.value,
            "threshold": self.threshold,
            "bracket": self.bracket,
            "peers": self.peers,
            "rule": self.rule,
        }


_GO_ON = PruneDecision(stop=False)


class Pruner(abc.ABC):
    """Stops poor trials early from their intermediate reports.

    The loop calls :meth:`decide` in the driver for every report of a running trial, one at a
    time, so a pruner needs no lock. State changes only through :meth:`decide`, so hearing the
    stored reports again (:meth:`restore`) rebuilds it on resume. Calling the pruner
    (``pruner(step, metrics) -> bool``) is :meth:`decide` without the reason.

    Args:
        objective: the metric to judge; ``"-loss"`` minimizes. ``None`` until :meth:`bind`
            (``automl.search`` binds it to the search's objective).
        maximize: ``False`` minimizes the metric too (``SearchConfig.maximize``).
    """

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]]  # the keyword settings ``make_pruner`` accepts
    promotes: ClassVar[bool] = False  # stopped trials may later go on (see :meth:`promotion`)

    def __init__(self, objective: str | None = None, maximize: bool | None = None) -> None:
        self.metric: str | None = None
        self.maximize = True
        if objective is not None:
            self.bind(objective, maximize)

    def bind(self, objective: str, maximize: bool | None = None) -> None:
        """Judge ``objective``; a leading ``-`` or ``maximize=False``: lower is better."""
        self.metric = objective.lstrip("-")
        self.maximize = not objective.startswith("-") and maximize is not False

    def decide(self, step: Step, metrics: Mapping[str, Any] | None = None) -> PruneDecision:
        """Judge the report ``step`` of trial ``step.number``; a stop carries its reason."""
        if self.metric is None:
            raise RuntimeError(f"{type(self).__name__} has no objective: pass objective= or call bind() first")
        value = step.metrics.get(self.metric, (metrics or {}).get(self.metric))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return _GO_ON  # nothing to judge (a failing trial fails on its own)
        return self._decide(step.number, int(step.step), float(value))

    def promotion(self, paused: Mapping[int, int]) -> int | None:
        """Which paused trial (``paused``: trial number -> the step it stopped after) should go on
        now, or None. Pruners that never take a stop back (the median rule) always say None."""
        return None

    def __call__(self, step: Step, metrics: Mapping[str, Any] | None = None) -> bool:
        """True to stop trial ``step.number`` now."""
        return self.decide(step, metrics).stop

    def restore(self, history: Iterable[tuple[int, int, float]]) -> None:
        """Hear again the reports ``(trial, step, value)`` of earlier trials, in order (on resume)."""
        if self.metric is None:
            raise RuntimeError(f"{type(self).__name__} has no objective: pass objective= or call bind() first")
        for number, step, value in history:
            if value is not None and not math.isnan(value):
                self._decide(number, int(step), float(value))

    @abc.abstractmethod
    def _decide(self, number: int, step: int, value: float) -> PruneDecision:
        """Record ``value`` (in the metric's units) of trial ``number`` at ``step`` and judge it."""

    # -- helpers for subclasses -------------------------------------------------------------
    def _score(self, value: float) -> float:
        """``value`` oriented so that higher is better."""
        return value if self.maximize else -value

    def _unscore(self, score: float) -> float:
        return float(score) if self.maximize else -float(score)

    def _decision(self, stop: bool, **fields: Any) -> PruneDecision:
        return PruneDecision(stop=stop, pruner=self.name, metric=self.metric, maximize=self.maximize, **fields)


def ask_pruner(pruner: Any, step: Step) -> dict[str, Any] | None:
    """Ask ``pruner`` (a :class:`Pruner`, any ``pruner(step, metrics) -> bool`` or None) about
    ``step``: None to go on, else the reason to store with the step under :data:`PRUNED_KEY`."""
    if pruner is None:
        return None
    decide = getattr(pruner, "decide", None)
    if decide is not None:
        decision = decide(step, step.metrics)
        return decision.to_json() if decision.stop else None
    if not pruner(step, step.metrics):
        return None
    # A user's callable says only "stop": the step is all there is to record.
    return {"pruner": "python", "rung": step.step, "step": step.step, "value": None, "threshold": None, "bracket": None}


def check_int(value: Any, name: str, low: int, *, optional: bool = False) -> None:
    """ValueError naming ``name`` unless ``value`` is an integer >= ``low`` (or None if ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        none = "None or " if optional else ""
        raise ValueError(f"{name} must be {none}an integer >= {low}, got {value!r}")
