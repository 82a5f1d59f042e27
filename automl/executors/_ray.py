"""``RayExecutor``: evaluations on a Ray cluster (or a local Ray), the proposers stay in charge.

This is Ray *core*, not Ray Tune: Tune's controller would own the trial loop, its own
experiment state and its own checkpoints, while ours is the store (every proposal stored before
it runs, every result before the proposer hears of it). So the search loop stays in the driver,
and Ray only runs evaluations:

- ``workers`` actors (``_RayWorker``), each holding ``num_cpus_per_trial`` CPUs and
  ``num_gpus_per_trial`` GPUs (fractional: ``0.5`` puts two trials on one GPU; Ray sets
  ``CUDA_VISIBLE_DEVICES`` for each actor). Each receives the pickled evaluator once and
  evaluates one job at a time, so a dataset is loaded once per actor, not per trial.
- Per-epoch reports go through a small asynchronous actor (``_StepBroker``): the worker blocks
  in ``report`` until the driver, which long-polls ``take``, has stored the step (the loop's
  ``on_step``, pruner included) and answered stop or go on.
- A job lost with its actor (the process killed, the node gone, Ray's memory monitor) becomes a
  *transient* failure that the loop retries, and a new actor takes the slot.

Early stopping is the loop's ``pruner`` (``automl.pruners.ASHAPruner``: the rule of Tune's
``ASHAScheduler``), which works the same under every executor.

``address=None`` starts a local Ray on this machine, on loopback only and without the dashboard;
``"auto"`` or ``"HOST:PORT"`` joins a running cluster (``ray start --head`` / ``ray start
--address``). Workers on other machines must be able to import the evaluator's module: install
the project there, or pass ``runtime_env={"working_dir": "."}``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions

from automl._errors import UsageError, first_line
from automl.executors._jobs import Done, Job, Step, worker_name
from automl.executors._shipping import ShippedEvaluator
from automl.executors._slots import Slot, SlotPool

__all__ = ["RayExecutor", "init_local_ray"]

_LOOPBACK = "127.0.0.1"


@contextmanager
def _loopback_only() -> Iterator[None]:
    # On Linux, Ray swaps a node address of 127.0.0.1 for the machine's outward address unless it
    # believes clusters are off (the Windows/macOS default); then every process binds loopback.
    from ray._private import ray_constants

    before_env = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    before = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"  # for the processes Ray starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # for this one, whose constants are already read
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = before_env


def init_local_ray(num_cpus: int | None = None, **options: Any) -> None:
    """Start a Ray instance on this machine only: loopback addresses, no dashboard.

    Workers import modules the way the driver does (its ``sys.path`` goes to them).
    """
    path = [p for p in sys.path if p and os.path.isdir(p)]
    env = {"PYTHONPATH": os.pathsep.join(path)}
    runtime_env = dict(options.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**env, **runtime_env.get("env_vars", {})}
    with _loopback_only():
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            _node_ip_address=_LOOPBACK,
            logging_level=logging.WARNING,
            runtime_env=runtime_env,
            **options,
        )


# -- actors -------------------------------------------------------------------------------------------
class _StepBroker:
    """Per-epoch reports from workers to the driver, and its stop/go answers back (async actor)."""

    def __init__(self) -> None:
        self._waiting: list[tuple[tuple[int, int], Step]] = []
        self._answers: dict[tuple[int, int], asyncio.Future[bool]] = {}
        self._arrived = asyncio.Event()

    async def report(self, key: tuple[int, int], step: Step) -> bool:
        """Called by a worker; returns once the driver has answered: True to stop the trial."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        self._waiting.append((key, step))
        self._arrived.set()
        return await future

    async def take(self) -> list[tuple[tuple[int, int], Step]]:
        """Called by the driver: the reports waiting, once there is at least one."""
        await self._arrived.wait()
        self._arrived.clear()
        out, self._waiting = self._waiting, []
        return out

    async def answer(self, decisions: list[tuple[tuple[int, int], bool]]) -> None:
        for key, stop in decisions:
            future = self._answers.pop(key, None)
            if future is not None and not future.done():
                future.set_result(stop)


class _RayWorker:
    """Holds the evaluator; evaluates one job at a time."""

    def __init__(self, payload: bytes, modules: dict[str, str], objective: str, broker: Any, threads: int) -> None:
        self.objective, self.broker = objective, broker
        gpus = ray.get_gpu_ids()
        self.name = worker_name(f"gpu{','.join(map(str, gpus))}" if gpus else "")
        self.shipped = ShippedEvaluator(payload, modules, threads, "Ray worker")

    def ready(self) -> tuple[str, str | None]:
        return self.name, self.shipped.error

    def evaluate(self, job: Job) -> Done:
        def on_step(step: Step) -> bool:
            return bool(ray.get(self.broker.report.remote((job.number, job.attempt), step)))

        return self.shipped.run(job, self.objective, on_step, self.name)


@dataclass(eq=False)
class _ActorSlot(Slot):
    actor: Any = None
    ready_ref: Any = None  # the actor's ready() call, until it has answered
    ref: Any = None  # the running evaluate() call


class RayExecutor(SlotPool[_ActorSlot]):
    """Evaluates on Ray: ``workers`` actors of ``num_cpus_per_trial`` CPUs and ``num_gpus_per_trial`` GPUs.

    Args:
        workers: actors (jobs in flight). ``None`` or ``0``: as many as the cluster's CPUs (and
            GPUs, when trials take GPUs) can hold at once.
        address: ``None`` starts a local Ray (loopback only, no dashboard, ``num_cpus`` CPUs);
            ``"auto"`` or ``"HOST:PORT"`` joins a running cluster. A Ray already initialized in
            this process is used as it is, and left running.
        num_cpus_per_trial: CPUs Ray reserves per actor (also its torch thread count).
        num_gpus_per_trial: GPUs per actor; fractions share a GPU between trials.
        num_cpus: CPUs of the local Ray (``address=None``); default: all of this machine's.
        runtime_env: Ray runtime environment for the job (e.g. ``{"working_dir": "."}``).
        startup_timeout: seconds to wait for the actors to start and load the evaluator.
    """

    name = "ray"
    kind = "Ray worker"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        num_cpus_per_trial: float = 1.0,
        num_gpus_per_trial: float = 0.0,
        num_cpus: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        for label, value in (("num_cpus_per_trial", num_cpus_per_trial), ("num_gpus_per_trial", num_gpus_per_trial)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{label} must be a number >= 0, got {value!r}")
        if address is not None and not isinstance(address, str):
            raise ValueError(f"address must be 'auto', 'HOST:PORT' or None, got {address!r}")
        super().__init__(workers)
        self.address = address
        self.num_cpus_per_trial = float(num_cpus_per_trial)
        self.num_gpus_per_trial = float(num_gpus_per_trial)
        self.num_cpus = num_cpus
        self.runtime_env = dict(runtime_env or {})
        self.startup_timeout = startup_timeout
        self._owns_ray = False
        self._fit = 1
        self._broker: Any = None
        self._take_ref: Any = None

    def __repr__(self) -> str:
        return (
            f"RayExecutor(workers={self.workers}, address={self.address!r}, "
            f"num_cpus_per_trial={self.num_cpus_per_trial}, num_gpus_per_trial={self.num_gpus_per_trial})"
        )

    # -- life cycle ---------------------------------------------------------------------------
    def _start(self, payload: bytes, modules: dict[str, str]) -> None:
        self._connect()
        self._check_resources()
        self._payload_ref = ray.put(payload)
        self._modules = modules
        self._worker_cls = ray.remote(_RayWorker)
        self._broker = ray.remote(num_cpus=0)(_StepBroker).remote()
        self._take_ref = self._broker.take.remote()
        self._slots = [self._new_slot(i) for i in range(self.workers)]
        self._wait_ready()

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        try:
            if self.address is None:
                init_local_ray(self.num_cpus, runtime_env=self.runtime_env or None)
            else:
                ray.init(address=self.address, logging_level=logging.WARNING, runtime_env=self.runtime_env or None)
        except ConnectionError as e:
            raise UsageError(f"cannot join the Ray cluster at {self.address!r}: {e}") from e
        self._owns_ray = True

    def _check_resources(self) -> None:
        """Refuse trials the cluster can never hold; size ``workers=0`` to what it holds at once."""
        total = ray.cluster_resources()
        cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        if self.num_gpus_per_trial > gpus:
            raise UsageError(
                f"each trial asks for {self.num_gpus_per_trial:g} GPU but the Ray cluster has {gpus:g} GPU(s)"
            )
        if self.num_cpus_per_trial > cpus:
            raise UsageError(
                f"each trial asks for {self.num_cpus_per_trial:g} CPU but the Ray cluster has {cpus:g} CPU(s)"
            )
        fits = [cpus / self.num_cpus_per_trial] if self.num_cpus_per_trial else [max(1.0, cpus)]
        if self.num_gpus_per_trial:
            fits.append(gpus / self.num_gpus_per_trial)
        self._fit = max(1, int(min(fits) + 1e-9))  # trials the cluster runs at once, as it is now
        if not self.workers:
            self.workers = self._fit

    def _new_slot(self, index: int) -> _ActorSlot:
        threads = max(1, int(self.num_cpus_per_trial))
        actor = self._worker_cls.options(
            num_cpus=self.num_cpus_per_trial, num_gpus=self.num_gpus_per_trial, max_restarts=0
        ).remote(self._payload_ref, self._modules, self._objective, self._broker, threads)
        return _ActorSlot(index, f"ray-worker-{index}", actor=actor, ready_ref=actor.ready.remote())

    def _wait_ready(self) -> None:
        """Wait for the actors to start; raise if the evaluator does not load, or none can start."""
        refs = {s.ready_ref: s for s in self._slots}
        # Actors beyond what the cluster holds now wait for resources (or for the autoscaler):
        # do not wait for them here, their jobs queue in Ray meanwhile.
        wanted = min(len(refs), self._fit)
        ready, _ = ray.wait(list(refs), num_returns=wanted, timeout=self.startup_timeout)
        if ready:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            self._take_ready(refs[ref])
        if not ready:
            raise RuntimeError(
                f"no Ray worker started within {self.startup_timeout:.0f} s "
                f"(each needs {self.num_cpus_per_trial:g} CPU, {self.num_gpus_per_trial:g} GPU; "
                f"the cluster has {ray.cluster_resources()})"
            )

    def _take_ready(self, slot: _ActorSlot) -> None:
        try:
            name, error = ray.get(slot.ready_ref)
        except ray.exceptions.RayError as e:
            raise RuntimeError(f"a Ray worker failed to start: {first_line(e, 300)}") from e
        if error:
            raise UsageError(error)
        slot.name, slot.ready_ref = name, None

    def shutdown(self) -> None:
        slots, self._slots = self._slots, []
        if not ray.is_initialized():
            return
        for s in slots:
            with suppress(Exception):
                ray.kill(s.actor, no_restart=True)
        if self._broker is not None:
            with suppress(Exception):
                ray.kill(self._broker, no_restart=True)
            self._broker = self._take_ref = None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    # -- jobs -----------------------------------------------------------------------------------
    def next_worker(self) -> str:
        slot = self._idle()
        if slot.ready_ref is not None:  # started since? (never blocks)
            done, _ = ray.wait([slot.ready_ref], timeout=0)
            if done:
                with suppress(RuntimeError, UsageError):  # the job fails with the reason when it runs
                    self._take_ready(slot)
        return slot.name

    def _send(self, slot: _ActorSlot, job: Job) -> None:
        slot.ref = slot.actor.evaluate.remote(job)

    def _wait(self, timeout: float, out: list[Done]) -> None:
        busy = {s.ref: s for s in self._slots if s.job is not None}
        refs = [*busy, self._take_ref]
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # and whatever else is ready by now
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref is self._take_ref:
                self._answer_steps()
            else:
                done = self._collect(busy[ref])
                if done is not None:
                    out.append(done)

    def _answer_steps(self) -> None:
        reports = ray.get(self._take_ref)
        self._take_ref = self._broker.take.remote()
        decisions = [(key, bool(self._on_step(step))) for key, step in reports]
        self._broker.answer.remote(decisions)

    def _collect(self, slot: _ActorSlot) -> Done | None:
        job: Job = slot.job  # type: ignore[assignment]  # only busy slots are collected
        ref, slot.ref = slot.ref, None
        try:
            done: Done = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # evaluate() itself raised: not the worker's death
            done = Done(job.number, "failed", error=f"Ray task failed: {first_line(e, 300)}", worker=slot.name)
        except ray.exceptions.RayError as e:  # the actor, its process or its node is gone
            return self._lost(slot, "Ray worker died", f": {type(e).__name__}: {first_line(e, 300)}")
        slot.job = None
        return done

    def _replace(self, slot: _ActorSlot) -> _ActorSlot:
        with suppress(Exception):
            ray.kill(slot.actor, no_restart=True)
        return self._new_slot(slot.index)
