"""Executors run evaluations; the search loop keeps ``workers`` of them in flight.

An executor never touches the database: it hands :class:`~automl.executors._jobs.Step` reports to the
loop's ``on_step`` (which stores them and may ask to stop the trial) and returns
:class:`~automl.executors._jobs.Done` events from :meth:`Executor.poll`.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable

from automl.executors._jobs import Done, Job, Step, run_job, worker_name
from evaluators import Evaluator

__all__ = ["Executor", "InlineExecutor", "make_executor"]

OnStep = Callable[[Step], bool]


class Executor(abc.ABC):
    """Runs jobs. ``capacity`` jobs may be submitted before a poll returns one as done."""

    name: str = ""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    @property
    def capacity(self) -> int:
        return self.workers

    @abc.abstractmethod
    def start(self, evaluator: Evaluator, objective: str, on_step: OnStep) -> None:
        """Prepare to run ``evaluator``; called once before the first submit."""

    def next_worker(self) -> str:
        """Who will run the next submitted job, as stored on its trial (``automl status``)."""
        return self.name

    @abc.abstractmethod
    def submit(self, job: Job) -> None:
        """Start evaluating ``job`` (returns at once for asynchronous executors)."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Done]:
        """Finished jobs, waiting up to ``timeout`` seconds for at least one."""

    def shutdown(self) -> None:  # noqa: B027 - nothing to release by default
        """Stop workers; jobs still running are abandoned (the loop re-queues them)."""


class InlineExecutor(Executor):
    """Evaluates in the driver's own thread, one job per poll: for debugging and tests."""

    name = "inline"

    def __init__(self, workers: int = 1) -> None:
        super().__init__(workers)
        self._queue: deque[Job] = deque()

    def start(self, evaluator: Evaluator, objective: str, on_step: OnStep) -> None:
        self._evaluator, self._objective, self._on_step = evaluator, objective, on_step
        self._worker = worker_name("inline")

    def next_worker(self) -> str:
        return self._worker

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def poll(self, timeout: float) -> list[Done]:
        if not self._queue:
            return []
        job = self._queue.popleft()
        return [run_job(self._evaluator, job, self._objective, self._on_step, self._worker)]

    def shutdown(self) -> None:
        """Jobs submitted and not yet polled are abandoned (none runs while the driver is elsewhere)."""
        self._queue.clear()


_EXECUTORS: dict[str, str] = {
    "inline": "automl.executors._base:InlineExecutor",
    "local": "automl.executors._local:LocalExecutor",
    "ray": "automl.executors._ray:RayExecutor",
}


def executor_names() -> list[str]:
    return list(_EXECUTORS)


def make_executor(name: str, workers: int, **options: object) -> Executor:
    """The executor called ``name`` (inline, local, ray) with ``workers`` in flight."""
    import importlib

    if name not in _EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(_EXECUTORS)}")
    module, attr = _EXECUTORS[name].split(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise ValueError(f"executor {name!r} is not available: {e}") from e
    return cls(workers, **options)
