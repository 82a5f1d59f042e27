"""Worker slots: what the ``local`` and ``ray`` executors share.

Such an executor keeps ``workers`` slots, each holding one worker (a process, an actor) that
holds the shipped evaluator and evaluates one job at a time. A job goes into a free slot; when
the worker in a slot dies, its job becomes a *transient* failure (the loop retries it, up to its
``retries``) and a new worker takes the slot. Subclasses say how workers start, receive a job,
and are watched (:meth:`SlotPool._start`, :meth:`SlotPool._send`, :meth:`SlotPool._wait`,
:meth:`SlotPool._replace`).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from automl.executors._base import Executor, OnStep
from automl.executors._jobs import Done, Job, Step
from automl.executors._shipping import dump_evaluator, user_modules
from evaluators import Evaluator

__all__ = ["Slot", "SlotPool"]


@dataclass(eq=False)
class Slot:
    """One worker's place; subclasses add the handle of the worker in it."""

    index: int
    name: str  # "host:pid[/gpuN]" as the worker reports it; a placeholder until then
    job: Job | None = None  # the job it runs, None when idle
    started: float = 0.0  # time.monotonic() when the job was submitted


S = TypeVar("S", bound=Slot)


def _no_step(step: Step) -> bool:
    return False


class SlotPool(Executor, Generic[S]):
    """An executor of ``workers`` slots, one job each (see the module's docstring)."""

    kind = "worker"  # how error messages name a worker

    def __init__(self, workers: int | None) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise ValueError(f"workers must be a non-negative integer (0: automatic), got {workers!r}")
        super().__init__(workers or 0)
        self._slots: list[S] = []
        self._objective = ""
        self._on_step: OnStep = _no_step

    # -- what a subclass provides ---------------------------------------------------------------
    @abc.abstractmethod
    def _start(self, payload: bytes, modules: dict[str, str]) -> None:
        """Fill ``self._slots`` with started workers; return once they hold the evaluator."""

    @abc.abstractmethod
    def _send(self, slot: S, job: Job) -> None:
        """Hand ``job`` to the worker in ``slot`` (its ``job`` and ``started`` are set)."""

    @abc.abstractmethod
    def _wait(self, timeout: float, out: list[Done]) -> None:
        """Wait up to ``timeout`` s for news from the workers: answer steps, add finished jobs to ``out``."""

    @abc.abstractmethod
    def _replace(self, slot: S) -> S:
        """A new worker for the slot of ``slot``, whose worker is gone."""

    # -- the executor ---------------------------------------------------------------------------
    def start(self, evaluator: Evaluator, objective: str, on_step: OnStep) -> None:
        """Ship the evaluator to the workers and wait until they have loaded it.

        Raises :class:`~automl.UsageError` when the evaluator cannot be pickled or does not load
        in a worker; every worker started is stopped again.
        """
        payload = dump_evaluator(evaluator)
        self._objective, self._on_step = objective, on_step
        try:
            self._start(payload, user_modules())
        except BaseException:
            self.shutdown()
            raise

    def _idle(self) -> S:
        for slot in self._slots:
            if slot.job is None:
                return slot
        raise RuntimeError(f"all {len(self._slots)} {self.kind}s are busy; poll before submitting more")

    def next_worker(self) -> str:
        return self._idle().name

    def submit(self, job: Job) -> None:
        slot = self._idle()
        slot.job, slot.started = job, time.monotonic()
        self._send(slot, job)

    def poll(self, timeout: float) -> list[Done]:
        deadline = time.monotonic() + timeout
        out: list[Done] = []
        while True:
            self._wait(max(0.0, deadline - time.monotonic()), out)
            if out or time.monotonic() >= deadline:
                return out

    def _lost(self, slot: S, why: str, detail: str = "") -> Done | None:
        """The worker in ``slot`` is gone: its job as a transient failure, and a new worker in its place.

        ``why`` starts the error ("worker process died (signal 9, SIGKILL)"), ``detail`` ends it.
        """
        done = None
        if slot.job is not None:
            seconds = time.monotonic() - slot.started
            error = f"{why} after {seconds:.1f} s on trial {slot.job.number} ({slot.name}){detail}"
            done = Done(slot.job.number, "failed", error=error, transient=True, worker=slot.name)
            slot.job = None
        self._slots[self._slots.index(slot)] = self._replace(slot)
        return done
