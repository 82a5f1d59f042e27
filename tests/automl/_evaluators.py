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

from evaluators import Evaluator, Paused, Pruned, Report, TransientError


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


class PausableCurves(Evaluator):
    """:class:`Curves` that can pause: the checkpoint is the step reached and the curve's final
    value, and a resumed run reports the steps after it. The result says where it resumed from
    (``resumed_from``) and how many steps this run trained (``steps_run``).

    ``fade`` < 1 makes each new trial this object starts weaker than the one before (by that
    factor), so that trials stopped early against strong peers later rise into the top of
    their rung and are promoted, as they are when the first trials happen to be good.
    """

    def __init__(self, steps: int = 9, sleep: float = 0.0, fade: float = 1.0, flaky: bool = False) -> None:
        self.steps, self.sleep, self.fade, self._started = steps, sleep, fade, 0
        self.flaky = flaky  # each resume fails (transiently) once
        self._failed: set[bytes] = set()

    def evaluate(self, arch: Any, report: Report = lambda step, metrics: None) -> dict[str, Any]:
        return self.evaluate_pausable(arch, report)

    def evaluate_pausable(self, arch: Any, report: Report, checkpoint: bytes | None = None) -> dict[str, Any]:
        if checkpoint is None:
            start, final = 0, (_score(arch) + 3.0) * self.fade**self._started
            self._started += 1
        else:
            if self.flaky and checkpoint not in self._failed:
                self._failed.add(checkpoint)
                raise TransientError("worker lost while resuming")
            step, value = checkpoint.decode().split(":")
            start, final = int(step), float(value)
        for step in range(start + 1, self.steps + 1):
            time.sleep(self.sleep)
            try:
                report(step, {"accuracy": final * step / self.steps})
            except Pruned as e:
                raise Paused(str(e), f"{step}:{final}".encode(), step) from None
        return {"accuracy": final, "epochs": self.steps, "resumed_from": start, "steps_run": self.steps - start}


# -- the executor conformance suite ---------------------------------------------------------------------
def odd_metrics(what: str) -> Any:
    """What an evaluator returns, by name: numpy and torch scalars, values JSON cannot hold, a non-dict.

    Built where the evaluator runs (a worker process, a Ray actor), so that no test pickles them.
    """
    import datetime
    import pathlib

    import numpy as np
    import torch

    table: dict[str, Any] = {
        "np_float32": {"accuracy": np.float32(0.5), "loss": np.float64(0.25), "params": np.int64(7)},
        "torch_0d": {"accuracy": torch.tensor(0.75), "epochs": torch.tensor(3), "ok": np.bool_(True)},
        "nested": {"accuracy": 1, "curve": [np.float32(0.5), {"best": torch.tensor(2.5)}], "tags": ("a", None)},
        "path": {"accuracy": 0.5, "checkpoint": pathlib.Path("/tmp/ckpt.pt")},
        "set": {"accuracy": 0.5, "ops": {"conv"}},
        "datetime": {"accuracy": 0.5, "when": datetime.datetime(2024, 1, 2)},
        "object": {"accuracy": 0.5, "model": object()},
        "huge_int": {"accuracy": 0.5, "flops": 10**400},
        "inf_loss": {"accuracy": 0.5, "loss": float("inf")},
        "nan_nested": {"accuracy": 0.5, "curve": [0.1, float("nan")]},
        "bool_objective": {"accuracy": True},
        "str_objective": {"accuracy": "0.9"},
        "nan": {"accuracy": float("nan")},
        "list": [0.5],
    }
    return table[what]


class Scripted:
    """Does what the architecture says, for the executor conformance suite: ``arch["do"]`` is

    - ``steps``: ``n`` reports (numpy scores), then ``{"accuracy": 1.0, "pid": ...}``;
    - ``return``: :func:`odd_metrics` of ``arch["what"]``; ``raise``: a ValueError;
    - ``barrier``: wait (up to 30 s) until ``parties`` jobs have reached ``folder``;
    - ``stall``: write its pid to ``folder`` and sleep a minute; ``kill``: SIGKILL itself.
    """

    def __call__(self, arch: Mapping[str, Any], report: Report) -> Any:
        import numpy as np

        do = arch["do"]
        if do == "steps":
            for step in range(1, arch["n"] + 1):
                report(step, {"accuracy": np.float32(step / arch["n"])})
            return {"accuracy": 1.0, "pid": os.getpid()}
        if do == "return":
            return odd_metrics(arch["what"])
        if do == "raise":
            raise ValueError("evaluator exploded")
        if do == "barrier":
            return self._barrier(arch["folder"], arch["parties"], arch["id"])
        if do == "stall":
            with open(os.path.join(arch["folder"], str(os.getpid())), "w"):
                pass
            time.sleep(60)
        if do == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)
        raise ValueError(f"unknown instruction {do!r}")

    @staticmethod
    def _barrier(folder: str, parties: int, me: int) -> dict[str, Any]:
        with open(os.path.join(folder, str(me)), "w"):
            pass
        deadline = time.monotonic() + 30.0
        while len(os.listdir(folder)) < parties and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"accuracy": float(len(os.listdir(folder))), "pid": os.getpid()}
