"""``LocalExecutor``: K worker processes on this machine, one per GPU when there are GPUs.

Each worker is a fresh interpreter (multiprocessing's *spawn* start method: no inherited CUDA
context, no inherited database connections). It receives the pickled evaluator once, then jobs
one at a time over its own pipe. A per-epoch report travels to the driver, which stores it
(the loop's ``on_step``) and answers "stop" or "go on" to that worker alone.

Placement. With GPUs (``CUDA_VISIBLE_DEVICES`` of the driver, else ``torch.cuda.device_count()``)
worker ``i`` sees only GPU ``i mod G``: its ``CUDA_VISIBLE_DEVICES`` is set in the environment it is
born with, so it holds before anything in the child imports torch. Every worker gets
``max(1, cores // K)`` torch threads (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` at birth and
``torch.set_num_threads`` once loaded), so K workers do not fight over the cores; an
evaluator's own ``TrainConfig.threads`` still wins while it runs.

Failures. A worker that dies (SIGKILL, the OOM killer, a segfault in a kernel) turns its job
into a *transient* failure, "worker process died (signal 9, SIGKILL) ...", which the loop retries
up to ``retries`` times, and a replacement worker starts in its slot. Workers ignore SIGINT
(Ctrl-C is the driver's to handle), die with the driver (``PR_SET_PDEATHSIG`` on Linux; elsewhere
at their next message to it) and are terminated by :meth:`LocalExecutor.shutdown`.

Main module. Spawn runs the driver's main module again in each worker; one with no file to run
(a program read from standard input) is hidden from it, and what the evaluator takes from
``__main__`` travels by value (see :mod:`automl.executors._process`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from automl._errors import UsageError
from automl.executors._jobs import Done, Job
from automl.executors._process import birth_lock, born_with, cores, death_text, visible_gpus, worker_main
from automl.executors._shipping import dump_evaluator, load_evaluator, user_modules
from automl.executors._slots import Slot, SlotPool

__all__ = ["LocalExecutor", "dump_evaluator", "load_evaluator", "user_modules", "visible_gpus"]

_STARTUP_SECONDS = 300.0  # spawn + imports (torch) on a busy machine; a dead worker is seen at once


@dataclass(eq=False)
class _Worker(Slot):
    gpu: str | None = None
    process: BaseProcess = None  # type: ignore[assignment]  # always given
    conn: Connection = None  # type: ignore[assignment]  # always given
    ready: bool = False
    error: str | None = None  # the evaluator did not load there
    failed_starts: int = 0  # replacements in this slot that died before they were ready


class LocalExecutor(SlotPool[_Worker]):
    """Evaluates in ``workers`` processes on this machine.

    Args:
        workers: processes (jobs in flight). ``None`` or ``0``: one per visible GPU, or one per
            CPU core when there is no GPU.
        gpus: GPU ids to use (a list, or text such as ``"0,2"``); ``None``: every visible GPU;
            ``[]``: none (CPU only, even on a GPU machine).
        threads: torch CPU threads per worker; ``None``: ``max(1, cores // workers)``.
        startup_timeout: seconds to wait for the workers to load the evaluator.
    """

    name = "local"
    kind = "worker process"

    def __init__(
        self,
        workers: int | None = None,
        *,
        gpus: Sequence[int | str] | str | None = None,
        threads: int | None = None,
        startup_timeout: float = _STARTUP_SECONDS,
    ) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
        if isinstance(gpus, str):
            gpus = [g.strip() for g in gpus.split(",") if g.strip()]
        super().__init__(workers)
        self._gpus = visible_gpus() if gpus is None else [str(g) for g in gpus]
        self._hide_gpus = gpus is not None and not self._gpus  # gpus=[]: CPU only, even where there are GPUs
        self.workers = self.workers or len(self._gpus) or cores()
        self.threads = threads or max(1, cores() // self.workers)
        self.startup_timeout = startup_timeout
        self._ctx = multiprocessing.get_context("spawn")

    def __repr__(self) -> str:
        gpus = f", gpus={self._gpus}" if self._gpus else ""
        return f"LocalExecutor(workers={self.workers}{gpus}, threads={self.threads})"

    # -- life cycle ---------------------------------------------------------------------------
    def _start(self, payload: bytes, modules: dict[str, str]) -> None:
        self._payload, self._modules = payload, modules
        self._slots = [self._spawn(slot) for slot in range(self.workers)]
        self._wait_ready()

    def _gpu(self, slot: int) -> str | None:
        """The GPU worker ``slot`` sees: GPUs in turn, so K > G workers share them evenly."""
        return self._gpus[slot % len(self._gpus)] if self._gpus else None

    def _spawn(self, slot: int) -> _Worker:
        gpu = self._gpu(slot)
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child, os.getpid(), self._payload, self._modules, self._objective, self.threads,
                  f"gpu{gpu}" if gpu is not None else ""),
            name=f"automl-worker-{slot}",
            daemon=False,  # an evaluator may start processes of its own (a DataLoader's workers)
        )  # fmt: skip
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if gpu is not None or self._hide_gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpu or ""
        with birth_lock, born_with(env):  # set before anything in the child imports torch
            process.start()
        child.close()
        label = f"/gpu{gpu}" if gpu is not None else ""
        name = f"{socket.gethostname()}:{process.pid}{label}"
        return _Worker(slot, name, gpu=gpu, process=process, conn=parent)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not all(w.ready for w in self._slots):
            waiting = [w for w in self._slots if not w.ready]
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"{len(waiting)} worker process(es) did not start within {self.startup_timeout:.0f} s"
                )
            multiprocessing.connection.wait([w.conn for w in waiting] + [w.process.sentinel for w in waiting], left)
            for w in waiting:
                try:
                    if w.conn.poll():
                        self._handle(w, w.conn.recv(), [])
                        continue
                except (EOFError, OSError):
                    pass
                if not w.process.is_alive():
                    w.process.join(1)
                    raise RuntimeError(f"{death_text(w.process.exitcode)} while starting (slot {w.index})")
        errors = [w.error for w in self._slots if w.error]
        if errors:
            raise UsageError(errors[0])

    def shutdown(self) -> None:
        """Stop every worker: idle ones are told to exit, busy ones are terminated."""
        workers, self._slots = self._slots, []
        for w in workers:
            if w.job is None and w.process.is_alive():
                with contextlib.suppress(OSError):
                    w.conn.send(None)
            else:
                w.process.terminate()
        deadline = time.monotonic() + 5.0
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5.0)
            w.conn.close()

    # -- jobs -----------------------------------------------------------------------------------
    def _send(self, slot: _Worker, job: Job) -> None:
        with contextlib.suppress(OSError):  # it died since the last poll: the next poll reports the job lost
            slot.conn.send(job)

    def _wait(self, timeout: float, out: list[Done]) -> None:
        waitables = [w.conn for w in self._slots] + [w.process.sentinel for w in self._slots]
        multiprocessing.connection.wait(waitables, timeout)
        for w in list(self._slots):
            self._drain(w, out)

    def _drain(self, w: _Worker, out: list[Done]) -> None:
        """Handle what ``w`` sent; if it died, fail its job (transient) and start a new worker."""
        try:
            while w.conn.poll():
                self._handle(w, w.conn.recv(), out)
        except (EOFError, OSError):
            pass
        else:
            if w.process.is_alive():
                return
        w.process.join(1.0)
        if w.process.is_alive():  # its pipe broke but it lives on: make sure it is gone
            w.process.kill()
            w.process.join(5.0)
        w.conn.close()
        done = self._lost(w, death_text(w.process.exitcode))
        if done is not None:
            out.append(done)

    def _replace(self, slot: _Worker) -> _Worker:
        failed_starts = 0 if slot.ready else slot.failed_starts + 1
        if failed_starts >= 3:
            raise RuntimeError(f"worker processes keep dying before they start: {death_text(slot.process.exitcode)}")
        replacement = self._spawn(slot.index)
        replacement.failed_starts = failed_starts
        return replacement

    def _handle(self, w: _Worker, msg: tuple[Any, ...], out: list[Done]) -> None:
        kind = msg[0]
        if kind == "ready":
            w.ready, w.name, w.error = True, msg[1], msg[2]
        elif kind == "step":
            stop = self._on_step(msg[1])
            with contextlib.suppress(OSError):
                w.conn.send(bool(stop))
        elif kind == "done":
            done: Done = msg[1]
            if w.job is not None and done.number == w.job.number:
                w.job = None
                out.append(done)
