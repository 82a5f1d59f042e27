"""The evaluator interface: architecture -> metrics, with per-step reports that may stop it."""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from search_spaces import Arch

__all__ = [
    "Evaluator",
    "FunctionEvaluator",
    "Infeasible",
    "Paused",
    "Pruned",
    "Report",
    "TransientError",
    "as_evaluator",
]


class Pruned(Exception):
    """Raised by a :class:`Report` callback: stop this trial now, it will not be the best.

    An evaluator lets it propagate; the trial is recorded as ``pruned`` with its last report.
    """


class Paused(Pruned):
    """Pruned, with what it takes to go on later: raised by an evaluator that can pause.

    An evaluator with ``evaluate_pausable(arch, report, checkpoint)`` (as
    :class:`~evaluators.TrainingEvaluator` has) raises it instead of letting a :class:`Pruned`
    through: ``checkpoint`` (bytes) holds the training state after report ``step``, and calling
    ``evaluate_pausable`` again with it goes on from the next step as if never stopped. The
    search loop keeps it on disk, so that a pruner that later promotes the trial (ASHA) resumes
    it instead of training it again from the start.
    """

    def __init__(self, message: str, checkpoint: bytes, step: int) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.step = step


class Infeasible(Exception):
    """The architecture cannot be evaluated at all (too large, no path to the output, ...).

    Not an error of the system: the trial is recorded as ``infeasible`` and never retried.
    """


class TransientError(Exception):
    """A failure worth retrying (a lost worker, a busy device); others fail the trial at once."""


class Report(Protocol):
    """Called by an evaluator after each step (epoch): ``report(step, {"accuracy": ...})``.

    May raise :class:`Pruned` to stop the evaluation early.
    """

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None: ...


def _no_report(step: int, metrics: Mapping[str, float]) -> None:
    return None


class Evaluator(abc.ABC):
    """Turns an architecture into metrics. Never touches the database.

    Subclasses implement :meth:`evaluate`. ``context`` tells the search loop the shape of the
    data (``input_shape``, ``num_classes``) so the space can be bound to it.
    """

    #: Keyword context for :meth:`search_spaces.Space.bind` (input_shape, num_classes, ...).
    context: Mapping[str, Any] = {}

    @abc.abstractmethod
    def evaluate(self, arch: Arch, report: Report = _no_report) -> dict[str, Any]:
        """Metrics of ``arch`` (JSON-able values). May raise Pruned, Infeasible, TransientError."""

    def describe(self) -> dict[str, Any]:
        """JSON-able configuration, stored with the search."""
        return {"evaluator": type(self).__name__}

    def __call__(self, arch: Arch, report: Report = _no_report) -> dict[str, Any]:
        return self.evaluate(arch, report)


class FunctionEvaluator(Evaluator):
    """Wraps any callable ``f(arch)`` or ``f(arch, report)`` returning a dict of metrics."""

    def __init__(self, fn: Callable[..., Mapping[str, Any]]) -> None:
        self.fn = fn
        try:
            params = inspect.signature(fn).parameters
            self._takes_report = len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params.values())
        except (TypeError, ValueError):
            self._takes_report = False

    def evaluate(self, arch: Arch, report: Report = _no_report) -> dict[str, Any]:
        out = self.fn(arch, report) if self._takes_report else self.fn(arch)
        if not isinstance(out, Mapping):
            raise TypeError(f"evaluator {getattr(self.fn, '__name__', self.fn)!r} must return a dict, got {out!r}")
        return dict(out)

    def describe(self) -> dict[str, Any]:
        return {"evaluator": getattr(self.fn, "__qualname__", repr(self.fn))}


def as_evaluator(obj: Evaluator | Callable[..., Mapping[str, Any]]) -> Evaluator:
    """An :class:`Evaluator` as is, any other callable wrapped in :class:`FunctionEvaluator`."""
    if isinstance(obj, Evaluator):
        return obj
    if callable(obj):
        return FunctionEvaluator(obj)
    raise TypeError(f"an evaluator must be an Evaluator or a callable, got {obj!r}")
