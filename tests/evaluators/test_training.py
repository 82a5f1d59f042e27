"""TrainingEvaluator: determinism, learning, reports, pruning, failures, cost measures, pickling,
final training on train+val measured on test, and the CUDA paths (where a GPU is present)."""

from __future__ import annotations

import dataclasses
import json
import math
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
        ("optimizer", "rmsprop", r"^TrainConfig: optimizer must be one of adam, adamw, sgd, but got 'rmsprop'$"),
        ("schedule", "linear", r"^TrainConfig: schedule must be one of constant, cosine, onecycle, but got 'linear'$"),
        ("warmup_epochs", -1, r"warmup_epochs must be >= 0, but got -1"),
        ("pct_start", 1.0, r"pct_start must be in \(0, 1\), but got 1\.0"),
        ("nesterov", "no", r"nesterov must be a bool, but got 'no'"),
        ("grad_clip", 0.0, r"grad_clip must be None or > 0, but got 0\.0"),
        (
            "augment",
            "rot",
            r"augment must be 'none', 'auto' or a list of crop, flip, cutout, shift, but got 'rot'",
        ),
        ("augment", "none,flip", r"augment must be .* but got 'none,flip'"),
        ("compile", 1, r"compile must be a bool, but got 1"),
        ("data_on_device", "yes", r"data_on_device must be 'auto', True or False, but got 'yes'"),
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
    small = Dataset(
        "small", d.x_train[:200], d.y_train[:200], d.x_val[:50], d.y_val[:50], d.input_shape, 10,
        x_test=d.x_test[:50], y_test=d.y_test[:50],
    )  # fmt: skip
    by_object = pickle.loads(pickle.dumps(TrainingEvaluator(mlp, small, FAST)))
    assert by_object.dataset.x_train.shape == (200, 1, 8, 8)

    arrays = {f"{xy}_{split}": getattr(small, f"{xy}_{split}") for xy in "xy" for split in ("train", "val", "test")}
    np.savez(tmp_path / "small.npz", **arrays)
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


# -- the recipe in training runs (unit tests of its parts: test_recipe.py) ----------------------

RECIPE = TrainConfig(
    epochs=2, batch_size=64, lr=3e-3, optimizer="adamw", weight_decay=0.05, schedule="cosine", warmup_epochs=0.5,
    grad_clip=1.0, label_smoothing=0.1, augment="crop,flip,cutout", threads=1,
)  # fmt: skip


def test_full_recipe_is_repeatable_on_cpu() -> None:
    ev = TrainingEvaluator(tiny_cnn, "digits", RECIPE)
    first, second = ev.evaluate({"width": 8}), ev.evaluate({"width": 8})
    assert _without_time(first) == _without_time(second)  # augmentation included, bit for bit
    plain = TrainingEvaluator(tiny_cnn, "digits", dataclasses.replace(RECIPE, augment="none"))
    assert plain.evaluate({"width": 8})["loss"] != first["loss"]  # the augmentation did something


def test_compile_and_data_on_device_change_nothing_on_cpu() -> None:
    # torch.compile is used on CUDA only (see evaluators._recipe_runtime.compiled); on the CPU
    # compile=True trains the eager model, bit for bit as without it.
    base = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1)).evaluate({"hidden": 16})
    for options in ({"compile": True}, {"data_on_device": False}, {"amp": True}):
        ev = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, threads=1, **options))
        assert _without_time(ev.evaluate({"hidden": 16})) == _without_time(base), options


def test_sgd_onecycle_learns_digits() -> None:
    cfg = TrainConfig(epochs=3, batch_size=64, lr=0.1, optimizer="sgd", schedule="onecycle", threads=1)
    assert TrainingEvaluator(tiny_cnn, "digits", cfg).evaluate({"width": 16})["accuracy"] > 0.9


def _sequences() -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2, 40)).astype(np.float32)
    y = (x[:, 0].mean(1) > 0).astype(np.int64)
    return Dataset("seq", x[:200], y[:200], x[200:250], y[200:250], (2, 40), 2, x_test=x[250:], y_test=y[250:])


def test_auto_augment_shifts_sequences_and_refuses_image_ops() -> None:
    ev = TrainingEvaluator(mlp, _sequences(), TrainConfig(epochs=2, threads=1, augment="auto"))
    first = ev.evaluate({"hidden": 16})
    assert _without_time(first) == _without_time(ev.evaluate({"hidden": 16}))
    plain = TrainingEvaluator(mlp, _sequences(), TrainConfig(epochs=2, threads=1))
    assert plain.evaluate({"hidden": 16})["loss"] != first["loss"]
    with pytest.raises(ValueError, match=r"augment 'crop' needs image batches"):
        TrainingEvaluator(mlp, _sequences(), TrainConfig(epochs=1, threads=1, augment="crop")).evaluate({"hidden": 16})


@search_spaces.space
def tuned_batch(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    a.choice("train.batch_size", [0, 32])  # 0: a value TrainConfig refuses
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def test_a_refused_train_decision_names_the_field_before_training() -> None:
    ev = TrainingEvaluator(tuned_batch, "digits", FAST)
    refused = r"decision 'train\.batch_size': TrainConfig: batch_size must be an int >= 1, but got 0"
    with pytest.raises(ValueError, match=refused):
        ev.evaluate({"train.batch_size": 0}, lambda step, m: pytest.fail("trained with a refused recipe"))
    with pytest.raises(InvalidArchitecture, match=r"train\.batch_size"):
        ev.evaluate({"train.batch_size": 64})  # outside the space: refused by the space first
    assert ev.evaluate({"train.batch_size": 32})["epochs"] == 2


# -- final training: train+val, then the test split once ----------------------------------------

FINAL = TrainConfig(epochs=3, lr=1e-2, batch_size=64, threads=1)
FINAL_METRICS = {"test_accuracy", "test_loss", "params", "flops", "train_seconds", "epochs", "seed"}


class _Spy:
    """A dataset that records which of its parts were read, and when."""

    def __init__(self, data: Dataset) -> None:
        self._data = data
        self.read: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.read.append(name)
        return getattr(self._data, name)


def test_final_trains_on_train_val_and_measures_test_once_training_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    ev = TrainingEvaluator(tiny_cnn, "digits", FINAL)
    spy = _Spy(ev.dataset)
    monkeypatch.setattr(ev, "_dataset", spy)
    calls: list[tuple[int, dict[str, float]]] = []

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        assert "x_test" not in spy.read and "y_test" not in spy.read  # not during training
        calls.append((epoch, dict(metrics)))

    out = ev.final({"width": 16}, seed=0, report=report)
    assert set(out) == FINAL_METRICS and out["epochs"] == 3 and out["seed"] == 0
    assert out["test_accuracy"] > 0.85 and out["test_loss"] > 0, out
    assert "train_val" in spy.read and {"x_test", "y_test"} <= set(spy.read)
    assert "x_val" not in spy.read and "x_train" not in spy.read  # train+val come from train_val()
    assert [e for e, _ in calls] == [1, 2, 3] and all(set(m) == {"train_loss"} for _, m in calls)


def test_final_is_repeatable_for_a_seed_and_differs_between_seeds() -> None:
    ev = TrainingEvaluator(tiny_cnn, "digits", FINAL)
    first, again = ev.final({"width": 8}, seed=0), ev.final({"width": 8}, seed=0)
    assert _without_time(first) == _without_time(again)
    other = ev.final({"width": 8}, seed=1)
    assert other["seed"] == 1 and other["test_loss"] != first["test_loss"]
    assert ev.final({"width": 8}, seed=0, epochs=1)["epochs"] == 1
    evaluated = ev.evaluate({"width": 8})  # the search's evaluation: a different training set
    assert evaluated["loss"] != first["test_loss"] and evaluated["params"] == first["params"]


def test_final_keeps_weights_under_final(tmp_path: Path) -> None:
    cfg = dataclasses.replace(FINAL, epochs=1, weights_dir=str(tmp_path))
    out = TrainingEvaluator(tiny_cnn, "digits", cfg).final({"width": 8}, seed=3)
    key = search_spaces.arch_key({"width": 8})
    assert out["weights"] == str(tmp_path / "final" / f"{key}-s3.pt")
    model = tiny_cnn.build({"width": 8}, input_shape=(1, 8, 8), num_classes=10)
    model.load_state_dict(torch.load(out["weights"]))


def test_final_refuses_bad_arguments_and_stops_when_pruned() -> None:
    ev = TrainingEvaluator(mlp, "digits", FINAL)
    with pytest.raises(ValueError, match=r"seed must be an int, but got '1'"):
        ev.final({"hidden": 16}, seed="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"epochs must be an int >= 1, but got 0"):
        ev.final({"hidden": 16}, seed=0, epochs=0)

    def report(epoch: int, metrics: Mapping[str, float]) -> None:
        raise Pruned("enough")

    with pytest.raises(Pruned, match="enough"):
        ev.final({"hidden": 16}, seed=0, report=report)


# -- CUDA paths (skipped without a GPU) ----------------------------------------------------------

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _RecordsLayout(nn.Module):
    seen: list[bool] = []  # one run at a time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:  # training batches (not the one-sample FLOP count)
            _RecordsLayout.seen.append(x.is_contiguous(memory_format=torch.channels_last))
        return x


def _rgb_digits() -> Dataset:
    """Digits on 3 channels: with 1 channel every layout counts as channels_last."""
    d = datasets.load("digits")
    rgb = {f"x_{s}": np.repeat(getattr(d, f"x_{s}"), 3, axis=1) for s in ("train", "val", "test")}
    return Dataset(
        "rgb", rgb["x_train"], d.y_train, rgb["x_val"], d.y_val, (3, 8, 8), 10, x_test=rgb["x_test"], y_test=d.y_test
    )


@search_spaces.space
def layout_cnn(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    w = a.choice("width", [8])
    return nn.Sequential(
        _RecordsLayout(), *tiny_cnn.build({"width": w}, input_shape=input_shape, num_classes=num_classes)
    )


@cuda_only
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"amp": True},
        {"data_on_device": False},
        {"data_on_device": True, "augment": "crop,flip,cutout"},
        {"compile": True},
    ],
)
def test_cuda_training_paths(options: dict[str, Any]) -> None:
    _RecordsLayout.seen.clear()
    cfg = dataclasses.replace(RECIPE, **{"epochs": 3, "lr": 1e-2, "augment": "crop", "device": "cuda", **options})
    ev = TrainingEvaluator(layout_cnn, _rgb_digits(), cfg)
    metrics = ev.evaluate({"width": 8})
    assert metrics["device"].startswith("cuda") and 0.0 <= metrics["accuracy"] <= 1.0
    assert math.isfinite(metrics["loss"]) and metrics["accuracy"] > 0.2, metrics  # chance is 0.1; 0.4 to 0.8 on the CPU
    if not options.get("compile"):
        assert _RecordsLayout.seen and all(_RecordsLayout.seen)  # channels_last batches
    out = ev.final({"width": 8}, seed=0, epochs=1)
    assert set(out) == FINAL_METRICS and math.isfinite(out["test_loss"])


@cuda_only
def test_cuda_augmentation_is_repeatable_on_the_device() -> None:
    from evaluators._augment import Augment

    device = torch.device("cuda", torch.cuda.current_device())
    x = torch.rand(64, 3, 32, 32, device=device) + 1.0
    first = Augment("crop,flip,cutout", ndim=4, seed=5, device=device)(x)
    assert first.device == x.device and first.shape == x.shape and not torch.equal(first, x)
    assert torch.equal(first, Augment("crop,flip,cutout", ndim=4, seed=5, device=device)(x))
