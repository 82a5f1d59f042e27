"""Executors run evaluations; the search loop keeps ``workers`` of them in flight.

``inline`` (the driver's own thread), ``local`` (worker processes on this machine, one per GPU
when there are GPUs) and ``ray`` (actors on a Ray cluster). An executor never touches the
database: it hands :class:`Step` reports to the loop's ``on_step`` and returns :class:`Done`
events from :meth:`Executor.poll`.
"""

from __future__ import annotations

from automl.executors._base import Executor, InlineExecutor, executor_names, make_executor
from automl.executors._jobs import Done, Job, Step, run_job, worker_name

__all__ = [
    "Done",
    "Executor",
    "InlineExecutor",
    "Job",
    "Step",
    "executor_names",
    "make_executor",
    "run_job",
    "worker_name",
]
