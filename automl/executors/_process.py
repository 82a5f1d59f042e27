"""A ``local`` worker process: the environment it is born with, its main loop, its death.

The driver's side is :class:`automl.executors._local.LocalExecutor`. Messages over the pipe:
driver -> worker a :class:`Job` (``None``: exit), a bool answering a step (True: stop);
worker -> driver ``("ready", name, error)``, ``("step", Step)``, ``("done", Done)``.
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from multiprocessing.connection import Connection

from automl.executors._jobs import Step, worker_name
from automl.executors._shipping import ShippedEvaluator

__all__ = ["birth_lock", "born_with", "cores", "death_text", "visible_gpus", "worker_main"]

birth_lock = threading.Lock()  # os.environ and __main__ are process-wide: one spawn at a time edits them


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


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def death_text(code: int | None) -> str:
    if code is None:
        return "worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"worker process died (signal {-code}, {name})"
    return f"worker process exited with code {code}"


# -- birth --------------------------------------------------------------------------------------
@contextlib.contextmanager
def born_with(env: Mapping[str, str]) -> Iterator[None]:
    """Around ``process.start()``: the child is born with ``env`` (spawn = fork + exec), and
    without a main module it could not run. Hold :data:`birth_lock`."""
    with _environment(env), _unrunnable_main_hidden():
        yield


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


@contextlib.contextmanager
def _unrunnable_main_hidden() -> Iterator[None]:
    """Hide the driver's ``__main__`` from the child when it has no file the child could run.

    Spawn runs the driver's main module again in the child, by module name (``python -m``) or by
    its path. A program read from standard input has the path ``<stdin>``: the child cannot open
    it and exits with code 1 before it is ready. The worker needs no main module: what the
    evaluator uses from ``__main__`` travels by value (cloudpickle, :func:`dump_evaluator`).
    ``python -c`` and notebooks have no path, and so nothing to hide.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None or _runnable(path):
        yield
        return
    del main.__file__  # type: ignore[union-attr]
    try:
        yield
    finally:
        main.__file__ = path  # type: ignore[union-attr]


def _runnable(path: str) -> bool:
    # relative paths are taken from the directory the driver started in, as spawn does
    folder = getattr(multiprocessing.process, "ORIGINAL_DIR", None) or os.getcwd()
    return os.path.isfile(os.path.join(folder, path))


# -- life -------------------------------------------------------------------------------------------
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


def worker_main(
    conn: Connection,
    parent_pid: int,
    payload: bytes,
    modules: dict[str, str],
    objective: str,
    threads: int,
    label: str,
) -> None:
    """The worker process: load the evaluator, say ready, then run jobs until told to exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the driver puts trials back and stops us
    _die_with_parent(parent_pid)
    name = worker_name(label) if label else worker_name()
    shipped = ShippedEvaluator(payload, modules, threads, "worker process")

    def on_step(step: Step) -> bool:
        conn.send(("step", step))
        return bool(conn.recv())

    try:
        conn.send(("ready", name, shipped.error))
        while True:
            job = conn.recv()
            if job is None:  # done: skip the interpreter's slow teardown (torch)
                conn.close()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
            conn.send(("done", shipped.run(job, objective, on_step, name)))
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the driver went away
        return
