"""One evaluation as every executor runs it: a job in, a :class:`Done` event out."""

from __future__ import annotations

import math
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluators import Evaluator, Infeasible, Paused, Pruned, TransientError
from search_spaces import Arch

__all__ = ["Done", "Job", "Step", "UnstorableMetric", "check_metrics", "plain_metrics", "run_job", "worker_name"]


@dataclass(frozen=True)
class Job:
    """A trial to evaluate.

    ``pause``: a prune pauses the trial (the evaluator's ``evaluate_pausable`` returns its
    training state in :attr:`Done.checkpoint`); ``checkpoint``: such a state to go on from (a
    promoted trial). Both travel with the job, so workers on other machines need no shared disk.
    """

    number: int
    arch: Arch
    attempt: int = 1
    pause: bool = False
    checkpoint: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Step:
    """An intermediate report from a running trial."""

    number: int
    step: int
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class Done:
    """A finished evaluation. ``status`` is completed, failed, pruned or infeasible."""

    number: int
    status: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    transient: bool = False  # a failure worth retrying
    worker: str | None = None
    checkpoint: bytes | None = field(default=None, repr=False)  # a paused trial's training state
    paused_at: int | None = None  # the step it was paused after


def worker_name(suffix: str = "") -> str:
    import os

    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}/{suffix}" if suffix else name


def _error_text(e: BaseException) -> str:
    # The last frame says where it happened; the full traceback would swamp the tables.
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


class _DriverFailed(BaseException):
    """``on_step`` raised: carried through the evaluator (whose ``except Exception`` cannot
    catch a BaseException) and raised again as it was, so the search stops instead of the
    trial being stored as failed."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def run_job(
    evaluator: Evaluator,
    job: Job,
    objective: str,
    on_step: Callable[[Step], bool],
    worker: str | None = None,
) -> Done:
    """Evaluate ``job``; ``on_step`` stores a report and returns True to stop (prune) the trial.

    A job that pauses or resumes (``job.pause``, ``job.checkpoint``) runs the evaluator's
    ``evaluate_pausable``; the loop sends such jobs only to evaluators that have it.

    Never raises for an evaluator's failure: it becomes a ``failed`` :class:`Done` with the
    error text. ``KeyboardInterrupt`` and ``SystemExit`` pass through. Metrics, reported or
    returned, reach ``on_step`` and the :class:`Done` as plain JSON (:func:`plain_metrics`).
    """
    last: dict[str, Any] = {}

    def report(step: int, metrics: Mapping[str, Any]) -> None:
        plain = plain_metrics(metrics)  # UnstorableMetric: fails the trial, naming the metric
        last.clear()
        last.update(plain)
        try:
            stop = on_step(Step(job.number, int(step), plain))
        except Exception as e:  # the driver's failure (the database went away), not the trial's
            raise _DriverFailed(e) from e
        if stop:
            raise Pruned(f"pruned at step {step}")

    try:
        if job.pause or job.checkpoint is not None:
            metrics = evaluator.evaluate_pausable(job.arch, report, job.checkpoint)  # type: ignore[attr-defined]
        else:
            metrics = evaluator.evaluate(job.arch, report)
    except _DriverFailed as e:
        raise e.error from None
    except Pruned as e:
        if job.pause and isinstance(e, Paused):  # a state is kept only where the loop asked for one
            return Done(job.number, "pruned", dict(last), worker=worker, checkpoint=e.checkpoint, paused_at=e.step)
        return Done(job.number, "pruned", dict(last), worker=worker)
    except Infeasible as e:
        return Done(job.number, "infeasible", error=_error_text(e), worker=worker)
    except TransientError as e:
        return Done(job.number, "failed", error=_error_text(e), transient=True, worker=worker)
    except UnstorableMetric as e:
        return Done(job.number, "failed", error=f"evaluator reported {e}", worker=worker)
    except Exception as e:
        return Done(job.number, "failed", error=_error_text(e), worker=worker)
    return check_metrics(job.number, metrics, objective, worker)


def check_metrics(number: int, metrics: Any, objective: str, worker: str | None) -> Done:
    """A completed Done with the metrics as plain JSON, or a failed one naming what is wrong.

    Numpy and torch scalars become Python numbers. A value JSON cannot hold (a ``Path``, a
    ``set``, a NaN, an integer beyond a float's range...) fails the trial, and so does an
    objective that is not a real number (``True`` is not an accuracy).
    """

    def failed(error: str, kept: Mapping[str, Any] | None = None) -> Done:
        return Done(number, "failed", dict(kept or {}), error=error, worker=worker)

    if not isinstance(metrics, Mapping):
        return failed(f"evaluator returned {type(metrics).__name__}, not a dict")
    if objective not in metrics:
        got = ", ".join(sorted(map(str, metrics))) or "nothing"
        return failed(f"evaluator returned no {objective!r} metric (got: {got})")
    raw = metrics[objective]
    try:
        value = _plain(raw, f"metric {objective!r}", finite=False)  # NaN, infinities: None
    except UnstorableMetric as e:
        return failed(f"evaluator returned {e}")
    if value is None and raw is not None:
        return failed(f"metric {objective!r} is {float(raw)}", _kept(metrics))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return failed(f"metric {objective!r} is not a number: {_shown(raw)}")
    try:
        return Done(number, "completed", plain_metrics(metrics), worker=worker)
    except UnstorableMetric as e:
        return failed(f"evaluator returned {e}")


def _kept(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What a failed trial keeps of its metrics: non-finite values as None, nothing if unstorable."""
    try:
        return plain_metrics(metrics, finite=False)
    except UnstorableMetric:
        return {}


# -- metrics as plain JSON ----------------------------------------------------------------------------------
class UnstorableMetric(TypeError):
    """A metric the store cannot hold as JSON; the message names the metric and its type."""


_SCALAR_MODULES = ("numpy", "torch")  # their scalars and arrays have .tolist(): Python numbers and lists


def plain_metrics(metrics: Mapping[str, Any], *, finite: bool = True) -> dict[str, Any]:
    """``metrics`` as plain JSON values; :class:`UnstorableMetric` naming the first that is not.

    With ``finite=False`` a NaN or an infinity becomes None (what the store keeps of it) instead.
    """
    if not isinstance(metrics, Mapping):
        raise UnstorableMetric(f"metrics as {type(metrics).__name__}, not a dict")
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise UnstorableMetric(f"a metric named {name!r} ({type(name).__name__}); metric names are str")
        out[name] = _plain(value, f"metric {name!r}", finite)
    return out


def _plain(value: Any, where: str, finite: bool) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        if abs(value) > sys.float_info.max:  # JSON readers (SQLite's, pandas) turn it into a float, or fail
            raise UnstorableMetric(f"{where} = an int of {value.bit_length()} bits, too large for a float")
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        if finite:
            raise UnstorableMetric(f"{where} = {value} (float); JSON cannot hold NaN or infinities")
        return None
    if isinstance(value, Mapping):
        return {_key(k, where): _plain(v, f"{where}[{k!r}]", finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]", finite) for i, v in enumerate(value)]
    if type(value).__module__.split(".")[0] in _SCALAR_MODULES and hasattr(value, "tolist"):
        converted = value.tolist()  # a 0-d tensor or a numpy scalar: a Python number
        if type(converted) is not type(value):
            return _plain(converted, where, finite)
    raise UnstorableMetric(
        f"{where} = {_shown(value)}, which cannot be stored as JSON; "
        "return numbers, strings, booleans, None, and lists or dicts of them"
    )


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise UnstorableMetric(f"{where} has key {key!r} ({type(key).__name__}); JSON keys are str")
    return str(key)


def _shown(value: Any) -> str:
    """``repr`` (cut short) and type of a value, for an error message."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__module__}.{type(value).__qualname__})".replace("(builtins.", "(")
