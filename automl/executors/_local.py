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
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from automl._checks import UsageError
from automl._executors import Executor, OnStep
from automl._jobs import Done, Job, Step, run_job, worker_name
from evaluators import Evaluator

__all__ = ["LocalExecutor", "dump_evaluator", "load_evaluator", "user_modules", "visible_gpus"]

_STARTUP_SECONDS = 300.0  # spawn + imports (torch) on a busy machine; a dead worker is seen at once
_USER_MODULE_PREFIX = "_automl_user_eval_"  # evaluators loaded from 'path/file.py:fn' (automl._evaluator_spec)
_env_lock = threading.Lock()  # os.environ is process-wide: one spawn at a time edits it


# -- shipping an evaluator to another process (shared with automl._ray) ---------------------------
def user_modules() -> dict[str, str]:
    """Modules loaded from the user's files (``path/file.py:fn``): name -> file.

    Pickle sends a function by module and name; these modules exist under a made-up name only, so
    a worker loads the same files under the same names before it unpickles the evaluator. (User
    *spaces* need none of this: a :class:`search_spaces.Space` pickles its own file path.)
    """
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(_USER_MODULE_PREFIX) and path:
            out[name] = path
    return out


def dump_evaluator(evaluator: Evaluator) -> bytes:
    """The evaluator as bytes for worker processes; :class:`UsageError` naming why if it cannot be.

    cloudpickle when installed (it comes with Ray): functions of importable modules go by
    reference, and what a worker could not import (the ``__main__`` script's functions, lambdas,
    closures) by value. Plain pickle otherwise: functions by reference only.
    """
    try:
        import cloudpickle as pickler
    except ImportError:
        pickler = pickle  # type: ignore[assignment]
    try:
        return pickler.dumps(evaluator, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        hint = "" if pickler is not pickle else ", or install cloudpickle"
        raise UsageError(
            f"the evaluator cannot be sent to worker processes ({type(e).__name__}: {e}); "
            f"define it at module level in an importable module or a .py file{hint}"
        ) from e


def load_evaluator(payload: bytes, modules: Mapping[str, str]) -> Evaluator:
    """In a worker: load the user's files under their names, then unpickle the evaluator."""
    for name, path in modules.items():
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} in the worker")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return pickle.loads(payload)


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else every CUDA device."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = []
        for item in env.split(","):
            item = item.strip()
            if not item or item.startswith("-"):  # CUDA stops at the first invalid id ("-1": none)
                break
            ids.append(item)
        return ids
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch, or a broken driver: no GPUs
        return []


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _death_text(code: int | None) -> str:
    if code is None:
        return "worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"worker process died (signal {-code}, {name})"
    return f"worker process exited with code {code}"


# -- the worker process ---------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the driver dies, so no orphan keeps training."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except Exception:  # best effort: the broken pipe stops the worker at its next message
            pass
    if os.getppid() != parent_pid:  # the driver died before prctl took effect
        os._exit(1)


def _worker_main(
    conn: Connection,
    parent_pid: int,
    payload: bytes,
    modules: dict[str, str],
    objective: str,
    threads: int,
    label: str,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the driver puts trials back and stops us
    _die_with_parent(parent_pid)
    name = worker_name(label) if label else worker_name()
    error: str | None = None
    evaluator: Evaluator | None = None
    try:
        evaluator = load_evaluator(payload, modules)
    except BaseException as e:
        error = f"worker process could not load the evaluator: {type(e).__name__}: {e}"
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:
        pass
    try:
        conn.send(("ready", name, error))
        while True:
            job = conn.recv()
            if job is None:  # done: skip the interpreter's slow teardown (torch)
                conn.close()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
            if evaluator is None:
                conn.send(("done", Done(job.number, "failed", error=error, worker=name)))
                continue

            def on_step(step: Step) -> bool:
                conn.send(("step", step))
                return bool(conn.recv())

            conn.send(("done", run_job(evaluator, job, objective, on_step, name)))
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the driver went away
        return


# -- the driver's side --------------------------------------------------------------------------------
@dataclass
class _Worker:
    slot: int
    gpu: str | None
    process: BaseProcess
    conn: Connection
    name: str  # host:pid[/gpuN], as the worker itself reports it
    ready: bool = False
    error: str | None = None  # the evaluator did not load there
    job: Job | None = None
    job_started: float = 0.0
    failed_starts: int = 0  # replacements in this slot that died before they were ready


class LocalExecutor(Executor):
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

    def __init__(
        self,
        workers: int | None = None,
        *,
        gpus: Sequence[int | str] | str | None = None,
        threads: int | None = None,
        startup_timeout: float = _STARTUP_SECONDS,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise ValueError(f"workers must be a non-negative integer (0: automatic), got {workers!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
        if isinstance(gpus, str):
            gpus = [g.strip() for g in gpus.split(",") if g.strip()]
        self._gpus = visible_gpus() if gpus is None else [str(g) for g in gpus]
        self._hide_gpus = gpus is not None and not self._gpus  # gpus=[]: CPU only, even where there are GPUs
        auto = len(self._gpus) or _cores()
        super().__init__(workers or auto)
        self.threads = threads or max(1, _cores() // self.workers)
        self.startup_timeout = startup_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._on_step: OnStep = lambda step: False

    def __repr__(self) -> str:
        gpus = f", gpus={self._gpus}" if self._gpus else ""
        return f"LocalExecutor(workers={self.workers}{gpus}, threads={self.threads})"

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, evaluator: Evaluator, objective: str, on_step: OnStep) -> None:
        """Start the workers and wait until each has loaded the evaluator.

        Raises :class:`UsageError` when the evaluator cannot be pickled or does not load in a worker.
        """
        self._payload = dump_evaluator(evaluator)
        self._modules = user_modules()
        self._objective, self._on_step = objective, on_step
        try:
            self._workers = [self._spawn(slot) for slot in range(self.workers)]
            self._wait_ready()
        except BaseException:
            self.shutdown()
            raise

    def _gpu(self, slot: int) -> str | None:
        """The GPU worker ``slot`` sees: GPUs in turn, so K > G workers share them evenly."""
        return self._gpus[slot % len(self._gpus)] if self._gpus else None

    def _spawn(self, slot: int) -> _Worker:
        gpu = self._gpu(slot)
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, os.getpid(), self._payload, self._modules, self._objective, self.threads,
                  f"gpu{gpu}" if gpu is not None else ""),
            name=f"automl-worker-{slot}",
            daemon=False,  # an evaluator may start processes of its own (a DataLoader's workers)
        )  # fmt: skip
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if gpu is not None or self._hide_gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpu or ""
        with _env_lock, _environment(env):  # the child is born with these (spawn = fork + exec)
            process.start()
        child.close()
        label = f"/gpu{gpu}" if gpu is not None else ""
        return _Worker(slot, gpu, process, parent, f"{socket.gethostname()}:{process.pid}{label}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not all(w.ready for w in self._workers):
            waiting = [w for w in self._workers if not w.ready]
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
                    raise RuntimeError(f"{_death_text(w.process.exitcode)} while starting (slot {w.slot})")
        errors = [w.error for w in self._workers if w.error]
        if errors:
            raise UsageError(errors[0])

    def shutdown(self) -> None:
        """Stop every worker: idle ones are told to exit, busy ones are terminated."""
        workers, self._workers = self._workers, []
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
    def _idle(self) -> _Worker:
        for w in self._workers:
            if w.job is None:
                return w
        raise RuntimeError(f"all {len(self._workers)} workers are busy; poll before submitting more")

    def next_worker(self) -> str:
        return self._idle().name

    def submit(self, job: Job) -> None:
        w = self._idle()
        w.job, w.job_started = job, time.monotonic()
        with contextlib.suppress(OSError):  # it died since the last poll: the next poll reports the job lost
            w.conn.send(job)

    def poll(self, timeout: float) -> list[Done]:
        deadline = time.monotonic() + timeout
        out: list[Done] = []
        while True:
            waitables = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
            multiprocessing.connection.wait(waitables, max(0.0, deadline - time.monotonic()))
            for w in list(self._workers):
                self._drain(w, out)
            if out or time.monotonic() >= deadline:
                return out

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
        if w.job is not None:
            seconds = time.monotonic() - w.job_started
            error = f"{_death_text(w.process.exitcode)} after {seconds:.1f} s on trial {w.job.number} ({w.name})"
            out.append(Done(w.job.number, "failed", error=error, transient=True, worker=w.name))
        w.conn.close()
        failed_starts = 0 if w.ready else w.failed_starts + 1
        if failed_starts >= 3:
            raise RuntimeError(f"worker processes keep dying before they start: {_death_text(w.process.exitcode)}")
        replacement = self._spawn(w.slot)
        replacement.failed_starts = failed_starts
        self._workers[self._workers.index(w)] = replacement

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


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
