"""TrainingEvaluator: determinism, learning, reports, pruning, failures, cost measures, pickling."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces
from evaluators import (
    Dataset,
    DatasetError,
    Evaluator,
    FunctionEvaluator,
    Infeasible,
    Pruned,
    TrainConfig,
    TrainingEvaluator,
    TransientError,
    as_evaluator,
    datasets,
)
from search_spaces import Chooser, InvalidArchitecture

FAST = TrainConfig(epochs=2, threads=1)
METRICS = {"accuracy", "loss", "params", "flops", "train_seconds", "epochs", "device"}

# -- small spaces of our own (the built-in ones are tested once, at the end) --------------------


@search_spaces.space
def tiny_cnn(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two 3x3 convolutions with BatchNorm, then a linear classifier."""
    w = a.choice("width", [8, 16])
    return nn.Sequential(
        nn.Conv2d(input_shape[0], w, 3, padding=1),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.Conv2d(w, w, 3, padding=1),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * w, num_classes),
    )


@search_spaces.space
def mlp(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Flatten, one hidden layer (LazyLinear: its size is known only at the first forward)."""
    hidden = a.choice("hidden", [16, 32])
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@search_spaces.space
def conv_linear(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A 3x3 convolution to `c` channels at full 8x8 resolution, then one Linear."""
    c = a.choice("c", [4])
    return nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(c * 8 * 8, num_classes))


class _TimesNaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


@search_spaces.space
def nan_space(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    a.choice("x", [0])
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes), _TimesNaN())


class _RaisesOOM(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 1 GiB free)")


@search_spaces.space
def oom_space(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    a.choice("x", [0])
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes), _RaisesOOM())


@search_spaces.space
def no_params(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    a.choice("x", [0])
    return nn.Sequential(nn.Flatten(), nn.AdaptiveAvgPool1d(num_classes))  # (1, 64) -> (1, 10)


@search_spaces.space
def wrong_output(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    a.choice("x", [0])
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes + 1))


def _without_time(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "train_seconds"}


# -- construction ------------------------------------------------------------------------------


def test_context_comes_from_the_dataset() -> None:
    ev = TrainingEvaluator(tiny_cnn, "digits", FAST)
    assert isinstance(ev, Evaluator)
    assert ev.context == {"input_shape": (1, 8, 8), "num_classes": 10}
    assert TrainingEvaluator(tiny_cnn).context == ev.context  # digits is the default
    assert TrainingEvaluator(mlp, "mnist1d").context == {"input_shape": (1, 40), "num_classes": 10}
    described = json.loads(json.dumps(ev.describe()))
    assert described["evaluator"] == "TrainingEvaluator" and described["space"] == "tiny_cnn"
    assert described["dataset"] == "digits" and described["config"]["epochs"] == 2


def test_unknown_dataset() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'"):
        TrainingEvaluator(tiny_cnn, "cifar")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("epochs", 0, r"epochs must be an int >= 1, but got 0"),
        ("batch_size", 1.5, r"batch_size must be an int >= 1, but got 1\.5"),
        ("lr", 0.0, r"lr must be > 0, but got 0\.0"),
        ("optimizer", "rmsprop", r"optimizer must be 'adam' or 'sgd', but got 'rmsprop'"),
        ("momentum", 1.0, r"momentum must be in \[0, 1\), but got 1\.0"),
        ("weight_decay", -1.0, r"weight_decay must be >= 0, but got -1\.0"),
        ("label_smoothing", 1.0, r"label_smoothing must be in \[0, 1\), but got 1\.0"),
        ("device", "tpu", r"device must be 'auto', 'cpu' or 'cuda', but got 'tpu'"),
        ("threads", 0, r"threads must be None or an int >= 1, but got 0"),
        ("seed", "1", r"seed must be an int, but got '1'"),
        ("amp", 1, r"amp must be a bool, but got 1"),
        ("max_params", 0, r"max_params must be None or an int >= 1, but got 0"),
        ("measure_latency", "yes", r"measure_latency must be a bool, but got 'yes'"),
    ],
)
def test_train_config_refuses(field: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


# -- training ----------------------------------------------------------------------------------


def test_same_arch_and_seed_give_identical_metrics() -> None:
    ev = TrainingEvaluator(tiny_cnn, "digits", FAST)
    first, second = ev.evaluate({"width": 8}), ev.evaluate({"width": 8})
    assert set(first) == METRICS
    assert _without_time(first) == _without_time(second)  # bit for bit, floats included
    other_seed = TrainingEvaluator(tiny_cnn, "digits", TrainConfig(epochs=2, threads=1, seed=1))
    assert other_seed.evaluate({"width": 8})["loss"] != first["loss"]


def test_small_cnn_learns_digits() -> None:
    ev = TrainingEvaluator(tiny_cnn, "digits", TrainConfig(epochs=3, lr=1e-2, batch_size=64, threads=1))
    metrics = ev.evaluate({"width": 16})
    assert metrics["accuracy"] > 0.9, metrics
    assert metrics["epochs"] == 3 and metrics["device"] == "cpu" and metrics["train_seconds"] > 0


def test_report_once_per_epoch_with_increasing_step() -> None:
    calls: list[tuple[int, dict[str, float]]] = []
    metrics = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=4, threads=1)).evaluate(
        {"hidden": 16}, lambda step, m: calls.append((step, dict(m)))
    )
    assert [step for step, _ in calls] == [1, 2, 3, 4]
    for _, m in calls:
        assert set(m) == {"accuracy", "loss"} and 0.0 <= m["accuracy"] <= 1.0 and m["loss"] > 0
    assert calls[-1][1] == {"accuracy": metrics["accuracy"], "loss": metrics["loss"]}  # final epoch, not best


def test_pruned_from_report_stops_training() -> None:
    steps: list[int] = []

    def report(step: int, metrics: Mapping[str, float]) -> None:
        steps.append(step)
        if step == 2:
            raise Pruned(f"pruned at step {step}")

    ev = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=10, threads=1))
    with pytest.raises(Pruned, match="pruned at step 2"):
        ev.evaluate({"hidden": 16}, report)
    assert steps == [1, 2]


def test_nan_loss_is_detected() -> None:
    ev = TrainingEvaluator(nan_space, "digits", FAST)
    with pytest.raises(FloatingPointError, match=r"^loss became nan at epoch 1$"):
        ev.evaluate({"x": 0})


def test_max_params_makes_it_infeasible() -> None:
    params = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1)).evaluate({"hidden": 16})["params"]
    at_limit = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1, max_params=params))
    assert at_limit.evaluate({"hidden": 16})["params"] == params
    ev = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1, max_params=params - 1))
    with pytest.raises(Infeasible, match=rf"{params:,} parameters > max_params {params - 1:,}"):
        ev.evaluate({"hidden": 16}, lambda step, m: pytest.fail("trained an infeasible model"))


def test_cuda_out_of_memory_is_a_plain_runtime_error() -> None:
    with pytest.raises(RuntimeError) as info:
        TrainingEvaluator(oom_space, "digits", FAST).evaluate({"x": 0})
    assert type(info.value) is RuntimeError and not isinstance(info.value, TransientError)
    expected = "CUDA out of memory (batch size 128 on cpu): Tried to allocate 2.00 GiB (GPU 0; 1 GiB free)"
    assert str(info.value) == expected
    assert info.value.__cause__ is None and info.value.__context__ is None  # its tensors are let go


def test_a_model_without_parameters_is_infeasible() -> None:
    with pytest.raises(Infeasible, match="no parameters"):
        TrainingEvaluator(no_params, "digits", FAST).evaluate({"x": 0})


def test_wrong_output_shape_names_the_space() -> None:
    with pytest.raises(ValueError, match=r"space 'wrong_output' .* is \(1, 11\), expected \(1, 10\)"):
        TrainingEvaluator(wrong_output, "digits", FAST).evaluate({"x": 0})


def test_invalid_architecture_names_the_decision() -> None:
    with pytest.raises(InvalidArchitecture, match="width"):
        TrainingEvaluator(tiny_cnn, "digits", FAST).evaluate({"width": 12})


# -- cost measures -----------------------------------------------------------------------------


def test_flops_and_params_of_an_mlp() -> None:
    # FlopCounterMode counts a matrix product (m x k) @ (k x n) as 2*m*n*k; bias and ReLU are free.
    # One digits sample: Linear 64 -> 32 is 2*64*32 = 4096, Linear 32 -> 10 is 2*32*10 = 640.
    ev = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1))
    metrics = ev.evaluate({"hidden": 32})
    assert metrics["flops"] == 4096 + 640
    model = mlp.build({"hidden": 32}, **ev.context)
    model(torch.zeros(1, 1, 8, 8))  # materialise the LazyLinear
    assert metrics["params"] == sum(p.numel() for p in model.parameters()) == (64 * 32 + 32) + (32 * 10 + 10)


def test_flops_and_params_of_a_conv() -> None:
    # Conv 1 -> 4 channels, 3x3, padding 1 on 8x8: each of the 4*8*8 outputs takes 1*3*3 multiply-adds,
    # 2*256*9 = 4608. Linear 256 -> 10: 2*256*10 = 5120.
    metrics = TrainingEvaluator(conv_linear, "digits", TrainConfig(epochs=1, threads=1)).evaluate({"c": 4})
    assert metrics["flops"] == 4608 + 5120
    model = conv_linear.build({"c": 4}, input_shape=(1, 8, 8), num_classes=10)
    assert metrics["params"] == sum(p.numel() for p in model.parameters()) == (4 * 9 + 4) + (256 * 10 + 10)


def test_latency_is_measured_on_request() -> None:
    metrics = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1, measure_latency=True)).evaluate(
        {"hidden": 16}
    )
    assert set(metrics) == {*METRICS, "latency_ms"} and metrics["latency_ms"] > 0


# -- being a good guest in the caller's process ------------------------------------------------


def test_caller_random_state_and_threads_are_restored() -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    np.random.seed(123)
    expected = (torch.rand(1).item(), np.random.random())
    torch.manual_seed(123)
    np.random.seed(123)
    TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1, seed=5)).evaluate({"hidden": 16})
    assert (torch.rand(1).item(), np.random.random()) == expected
    assert torch.get_num_threads() == threads


def test_cuda_requested_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, device="cuda")).evaluate({"hidden": 16})


# -- pickling (evaluators are sent to worker processes) ----------------------------------------


def test_pickled_by_name_reloads_the_dataset() -> None:
    ev = TrainingEvaluator(mlp, "digits", FAST)
    blob = pickle.dumps(ev)
    assert len(blob) < 10_000  # the arrays stay behind
    copy = pickle.loads(blob)
    assert copy.context == ev.context and copy.describe() == ev.describe()
    assert _without_time(copy.evaluate({"hidden": 16})) == _without_time(ev.evaluate({"hidden": 16}))


def test_pickled_dataset_object_and_npz_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = datasets.load("digits")
    small = Dataset("small", d.x_train[:200], d.y_train[:200], d.x_val[:50], d.y_val[:50], d.input_shape, 10)
    by_object = pickle.loads(pickle.dumps(TrainingEvaluator(mlp, small, FAST)))
    assert by_object.dataset.x_train.shape == (200, 1, 8, 8)

    np.savez(tmp_path / "small.npz", x_train=small.x_train, y_train=small.y_train, x_val=small.x_val, y_val=small.y_val)
    monkeypatch.chdir(tmp_path)
    ev = TrainingEvaluator(mlp, "small.npz", FAST)  # relative: resolved before pickling
    monkeypatch.chdir(Path(__file__).parent)
    by_path = pickle.loads(pickle.dumps(ev))
    assert by_path.describe()["dataset"] == str(tmp_path / "small.npz")
    assert _without_time(by_path.evaluate({"hidden": 16})) == _without_time(by_object.evaluate({"hidden": 16}))


def _evaluate_in_worker(ev: TrainingEvaluator, arch: dict[str, Any]) -> dict[str, Any]:
    return ev.evaluate(arch)


@pytest.mark.slow  # a fresh interpreter imports torch: several seconds
def test_runs_in_a_spawned_worker_process() -> None:
    ev = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(_evaluate_in_worker, ev, {"hidden": 16}).result(timeout=120)
    assert _without_time(remote) == _without_time(ev.evaluate({"hidden": 16}))


# -- plain callables ---------------------------------------------------------------------------


def test_as_evaluator_wraps_plain_callables() -> None:
    def score(arch: Mapping[str, Any]) -> dict[str, float]:
        return {"accuracy": arch["width"] / 100}

    steps: list[int] = []

    def score_with_report(arch: Mapping[str, Any], report: Any) -> dict[str, float]:
        for step in (1, 2):
            report(step, {"accuracy": step / 10})
        return {"accuracy": 0.2}

    plain = as_evaluator(score)
    assert isinstance(plain, FunctionEvaluator) and plain({"width": 50}) == {"accuracy": 0.5}
    with_report = as_evaluator(score_with_report)
    assert with_report.evaluate({"width": 8}, lambda step, m: steps.append(step)) == {"accuracy": 0.2}
    assert steps == [1, 2]
    ev = TrainingEvaluator(mlp, "digits", FAST)
    assert as_evaluator(ev) is ev


# -- the built-in space, when it is there ------------------------------------------------------


def _builtin_cnn() -> search_spaces.Space:
    try:
        return search_spaces.get("cnn")
    except (ImportError, search_spaces.SpaceError) as e:
        pytest.skip(f"built-in space 'cnn' is not importable yet: {e}")


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_builtin_cnn_space(dataset: str) -> None:
    cnn = _builtin_cnn()
    ev = TrainingEvaluator(cnn, dataset, TrainConfig(epochs=1, threads=1))
    arch = {
        "depth": 1,
        "layer0.width": 16,
        "layer0.kernel": 3,
        "layer0.op": "conv",
        "layer0.skip": False,
        "layer0.pool": False,
    }
    steps: list[int] = []
    metrics = ev.evaluate(arch, lambda step, m: steps.append(step))
    assert steps == [1] and 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["params"] > 0 and metrics["flops"] > 0
