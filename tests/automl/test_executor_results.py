"""What an evaluator returns, as the store keeps it (issue 9, item 1).

Numpy and torch scalars are stored as Python numbers (and so rank); a value JSON cannot hold fails
its trial with an error naming the metric and its type, and the search goes on. The same checks
run under every executor in ``test_executors.py``; here, the checker itself and whole searches.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import automl
from automl.executors._jobs import Job, Step, check_metrics, run_job
from evaluators import as_evaluator
from search_spaces import Arch
from store import Store, TrialStatus


@pytest.mark.parametrize(
    ("metrics", "stored"),
    [
        ({"accuracy": np.float32(0.5)}, {"accuracy": 0.5}),
        (
            {"accuracy": np.float64(0.25), "params": np.int64(7), "flag": np.bool_(False)},
            {"accuracy": 0.25, "params": 7, "flag": False},
        ),
        ({"accuracy": torch.tensor(0.75), "epochs": torch.tensor(3)}, {"accuracy": 0.75, "epochs": 3}),
        (
            {"accuracy": 3, "curve": [0.5, {"best": np.float32(2.5)}, None], "name": "x"},
            {"accuracy": 3, "curve": [0.5, {"best": 2.5}, None], "name": "x"},
        ),
        (
            {"accuracy": 1.0, "shape": (2, 3), "hist": np.array([1, 2])},
            {"accuracy": 1.0, "shape": [2, 3], "hist": [1, 2]},
        ),
    ],
)
def test_numpy_and_torch_values_are_stored_as_python_numbers(metrics: dict[str, Any], stored: dict[str, Any]) -> None:
    done = check_metrics(3, metrics, "accuracy", "w")
    assert (done.status, done.error, done.metrics) == ("completed", None, stored)
    assert _types(done.metrics) == _types(stored)  # float, int, bool: not numpy's or torch's


def _types(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)


@pytest.mark.parametrize(
    ("metrics", "error"),
    [
        (
            {"accuracy": 0.5, "ckpt": Path("/tmp/m.pt")},
            "metric 'ckpt' = PosixPath('/tmp/m.pt') (pathlib.PosixPath), which cannot be stored as JSON",
        ),
        ({"accuracy": 0.5, "ops": {"conv"}}, "metric 'ops' = {'conv'} (set), which cannot"),
        ({"accuracy": 0.5, "at": datetime.date(2024, 1, 2)}, "metric 'at' = datetime.date(2024, 1, 2) (datetime.date)"),
        ({"accuracy": 0.5, "f": Fraction(1, 3)}, "metric 'f' = Fraction(1, 3) (fractions.Fraction)"),
        ({"accuracy": 0.5, "deep": {"a": [1, object()]}}, "metric 'deep'['a'][1] = <object object at"),
        ({"accuracy": 0.5, "flops": 2**1100}, "metric 'flops' = an int of 1101 bits, too large for a float"),
        ({"accuracy": 0.5, "loss": float("nan")}, "metric 'loss' = nan (float); JSON cannot hold NaN or infinities"),
        ({"accuracy": 0.5, "loss": np.float32("-inf")}, "metric 'loss' = -inf (float)"),
        ({"accuracy": 0.5, "by_edge": {1: 0.5}}, "metric 'by_edge' has key 1 (int); JSON keys are str"),
        ({"accuracy": 0.5, 7: 0.5}, "a metric named 7 (int); metric names are str"),
        ({"accuracy": True}, "metric 'accuracy' is not a number: True (bool)"),
        ({"accuracy": np.bool_(False)}, "metric 'accuracy' is not a number: np.False_ (numpy.bool)"),
        ({"accuracy": "0.9"}, "metric 'accuracy' is not a number: '0.9' (str)"),
        ({"accuracy": None}, "metric 'accuracy' is not a number: None (NoneType)"),
        ({"accuracy": [0.9]}, "metric 'accuracy' is not a number: [0.9] (list)"),
        ({"accuracy": Path("x")}, "metric 'accuracy' = PosixPath('x') (pathlib.PosixPath)"),
        ({"accuracy": 2**1100}, "metric 'accuracy' = an int of 1101 bits"),
        ({"accuracy": float("inf")}, "metric 'accuracy' is inf"),
        ({"accuracy": torch.tensor(float("nan"))}, "metric 'accuracy' is nan"),
        ({"loss": 0.5}, "evaluator returned no 'accuracy' metric (got: loss)"),
    ],
)
def test_a_value_that_cannot_be_stored_fails_the_trial_naming_the_metric(metrics: dict[Any, Any], error: str) -> None:
    done = check_metrics(3, metrics, "accuracy", "w")
    assert (done.number, done.status, done.transient, done.worker) == (3, "failed", False, "w")
    assert error in done.error, done.error


def test_a_failed_trial_keeps_what_can_be_stored_of_its_metrics() -> None:
    done = check_metrics(0, {"accuracy": np.float32("nan"), "loss": np.float32(1.5)}, "accuracy", None)
    assert done.status == "failed" and done.metrics == {"accuracy": None, "loss": 1.5}
    assert check_metrics(0, {"accuracy": 0.5, "p": Path("x")}, "accuracy", None).metrics == {}


def test_reports_are_plain_json_and_an_unstorable_one_fails_the_trial() -> None:
    steps: list[Step] = []

    def evaluator(arch: Arch, report: Any) -> dict[str, Any]:
        report(1, {"accuracy": torch.tensor(0.5), "lr": np.float64(0.1)})
        report(2, {"accuracy": 0.6, "when": datetime.datetime(2024, 1, 1)})
        return {"accuracy": 0.7}

    done = run_job(as_evaluator(evaluator), Job(4, Arch({})), "accuracy", lambda s: steps.append(s) or False)
    assert [(s.step, s.metrics) for s in steps] == [(1, {"accuracy": 0.5, "lr": 0.1})]
    assert type(steps[0].metrics["accuracy"]) is float
    assert done.status == "failed" and done.error.startswith(
        "evaluator reported metric 'when' = datetime.datetime(2024, 1, 1, 0, 0) (datetime.datetime), which"
    )


def test_a_failure_to_store_a_report_stops_the_search_not_the_trial() -> None:
    """The database going away under ``on_step`` is the driver's error: it passes through the
    evaluator (even one that catches Exception) instead of being stored as the trial's failure."""
    from store import StorageError

    def evaluator(arch: Arch, report: Any) -> dict[str, Any]:
        try:
            report(1, {"accuracy": 0.5})
        except Exception:  # a careless evaluator
            return {"accuracy": 0.0}
        return {"accuracy": 0.7}

    def on_step(step: Step) -> bool:
        raise StorageError("database gone")

    with pytest.raises(StorageError, match="database gone"):
        run_job(as_evaluator(evaluator), Job(1, Arch({})), "accuracy", on_step)


# -- whole searches ----------------------------------------------------------------------------------
def odd(arch: Mapping[str, Any]) -> dict[str, Any]:
    """By the op on edge ``1<-0``: numpy, torch, a path, a bool objective, a diverged loss."""
    score = list(arch.values()).count("nor_conv_3x3")
    op = arch["1<-0"]
    if op == "nor_conv_3x3":
        return {"accuracy": np.float32(score), "params": np.int64(10)}
    if op == "nor_conv_1x1":
        return {"accuracy": torch.tensor(float(score)), "curve": [torch.tensor(0.5)]}
    if op == "none":
        return {"accuracy": float(score), "checkpoint": Path("/tmp/model.pt")}
    if op == "skip_connect":
        return {"accuracy": score > 1}
    return {"accuracy": float(score), "loss": math.inf}


def test_a_search_stores_numbers_and_goes_on_past_unstorable_metrics(sqlite_url: str) -> None:
    res = automl.search(
        "nb201", odd, strategy="random", trials=8, storage=sqlite_url, name="odd", executor="inline", seed=3,
        max_failures=1000, progress=False,
    )  # fmt: skip
    with Store(sqlite_url) as store:
        trials = store.trials(store.get_search("odd").id)
    completed = [t for t in trials if t.status is TrialStatus.COMPLETED]
    assert len(completed) == 8 and {t.arch["1<-0"] for t in completed} == {"nor_conv_3x3", "nor_conv_1x1"}
    for t in completed:  # the value is the number, so the trial ranks
        assert t.value == list(t.arch.values()).count("nor_conv_3x3") and type(t.value) is float
        assert t.metrics in (
            {"accuracy": t.value, "params": 10},
            {"accuracy": t.value, "curve": [0.5]},
        )
    expected = {
        "none": "metric 'checkpoint' = PosixPath('/tmp/model.pt') (pathlib.PosixPath), which cannot be stored",
        "skip_connect": "metric 'accuracy' is not a number: ",
        "avg_pool_3x3": "metric 'loss' = inf (float)",
    }
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    assert {t.arch["1<-0"] for t in failed} == set(expected)  # each kind happened, and the search went on
    for t in failed:
        assert expected[t.arch["1<-0"]] in t.error, t.error
    assert res.best.value == max(t.value for t in completed)
