"""Evaluators for the executor and fault tests, importable by worker processes (no pytest here).

Each is a small picklable class or module-level function: worker processes and Ray actors import
this module as ``tests.automl._evaluators``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from evaluators import Report, TransientError


def _score(arch: Mapping[str, Any]) -> float:
    ops = list(arch.values())
    return ops.count("nor_conv_3x3") - 0.5 * ops.count("none")


def score(arch: Mapping[str, Any]) -> dict[str, Any]:
    """Deterministic, instant."""
    return {"accuracy": _score(arch), "cost": 1.0}


class Probe:
    """Reports ``steps`` epochs (the score growing to its final value), sleeping ``sleep`` s each,
    and tells where it ran: pid, torch threads, CUDA_VISIBLE_DEVICES."""

    def __init__(self, steps: int = 3, sleep: float = 0.0) -> None:
        self.steps, self.sleep = steps, sleep

    def __call__(self, arch: Mapping[str, Any], report: Report) -> dict[str, Any]:
        import torch

        final = _score(arch)
        for step in range(1, self.steps + 1):
            time.sleep(self.sleep)
            report(step, {"accuracy": final * step / self.steps})
        return {
            "accuracy": final,
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }


class KillOnce:
    """Kills its own process with ``sig`` the first time it runs (across all workers: a marker file
    created atomically), then behaves like :func:`score`, after ``steps`` reports."""

    def __init__(self, marker: str, sig: int = signal.SIGKILL, sleep: float = 0.0, steps: int = 0) -> None:
        self.marker, self.sig, self.sleep, self.steps = marker, sig, sleep, steps

    def __call__(self, arch: Mapping[str, Any], report: Report) -> dict[str, Any]:
        time.sleep(self.sleep)
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            for step in range(1, self.steps + 1):
                report(step, {"accuracy": _score(arch) * step / self.steps})
            return score(arch)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), self.sig)
        time.sleep(60)  # never reached for SIGKILL
        return score(arch)


class Faulty:
    """Fails on some architectures, by the op on edge ``1<-0``: raises, returns NaN, runs out of
    CUDA memory (the message a real OOM gives); with ``folder``, raises a retryable
    :class:`evaluators.TransientError` the first time it sees a ``nor_conv_1x1`` architecture."""

    def __init__(self, folder: str | None = None) -> None:
        self.folder = folder

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        op = arch["1<-0"]
        if op == "none":
            raise ValueError("evaluator exploded")
        if op == "skip_connect":
            return {"accuracy": float("nan")}
        if op == "avg_pool_3x3":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity)")
        if op == "nor_conv_1x1" and self.folder:
            from search_spaces import Arch

            try:
                os.close(os.open(os.path.join(self.folder, Arch(arch).key), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return score(arch)
            raise TransientError("device busy, try again")
        return score(arch)


class Sleepy:
    """:func:`score` after ``seconds`` of sleep."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(self.seconds)
        return score(arch)


class Curves:
    """Learning curves for pruning: ``steps`` reports, each trial's curve proportional to its score,
    so that poor trials are poor at every rung."""

    def __init__(self, steps: int = 9, sleep: float = 0.0) -> None:
        self.steps, self.sleep = steps, sleep

    def __call__(self, arch: Mapping[str, Any], report: Report) -> dict[str, Any]:
        final = _score(arch) + 3.0  # > 0
        acc = 0.0
        for step in range(1, self.steps + 1):
            time.sleep(self.sleep)
            acc = final * step / self.steps
            report(step, {"accuracy": acc})
        return {"accuracy": acc, "epochs": self.steps}
