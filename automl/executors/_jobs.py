"""One evaluation as every executor runs it: a job in, a :class:`Done` event out."""

from __future__ import annotations

import math
import socket
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluators import Evaluator, Infeasible, Pruned, TransientError
from search_spaces import Arch

__all__ = ["Done", "Job", "Step", "run_job", "worker_name"]


@dataclass(frozen=True)
class Job:
    """A trial to evaluate."""

    number: int
    arch: Arch
    attempt: int = 1


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


def worker_name(suffix: str = "") -> str:
    import os

    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}/{suffix}" if suffix else name


def _error_text(e: BaseException) -> str:
    # The last frame says where it happened; the full traceback would swamp the tables.
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def run_job(
    evaluator: Evaluator,
    job: Job,
    objective: str,
    on_step: Callable[[Step], bool],
    worker: str | None = None,
) -> Done:
    """Evaluate ``job``; ``on_step`` stores a report and returns True to stop (prune) the trial.

    Never raises for an evaluator's failure: it becomes a ``failed`` :class:`Done` with the
    error text. ``KeyboardInterrupt`` and ``SystemExit`` pass through.
    """
    last: dict[str, Any] = {}

    def report(step: int, metrics: Mapping[str, Any]) -> None:
        last.clear()
        last.update(metrics)
        if on_step(Step(job.number, int(step), dict(metrics))):
            raise Pruned(f"pruned at step {step}")

    try:
        metrics = evaluator.evaluate(job.arch, report)
    except Pruned:
        return Done(job.number, "pruned", dict(last), worker=worker)
    except Infeasible as e:
        return Done(job.number, "infeasible", error=_error_text(e), worker=worker)
    except TransientError as e:
        return Done(job.number, "failed", error=_error_text(e), transient=True, worker=worker)
    except Exception as e:
        return Done(job.number, "failed", error=_error_text(e), worker=worker)
    return check_metrics(job.number, metrics, objective, worker)


def check_metrics(number: int, metrics: Any, objective: str, worker: str | None) -> Done:
    """A completed Done, or a failed one naming what is wrong with the metrics."""
    if not isinstance(metrics, Mapping):
        return Done(number, "failed", error=f"evaluator returned {type(metrics).__name__}, not a dict", worker=worker)
    if objective not in metrics:
        got = ", ".join(sorted(map(str, metrics))) or "nothing"
        return Done(number, "failed", error=f"evaluator returned no {objective!r} metric (got: {got})", worker=worker)
    try:
        value = float(metrics[objective])
    except (TypeError, ValueError):
        error = f"metric {objective!r} is not a number: {metrics[objective]!r}"
        return Done(number, "failed", error=error, worker=worker)
    if math.isnan(value) or math.isinf(value):
        return Done(number, "failed", dict(metrics), error=f"metric {objective!r} is {value}", worker=worker)
    return Done(number, "completed", dict(metrics), worker=worker)
