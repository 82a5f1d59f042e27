"""Train an architecture from scratch and measure it: accuracy, loss, parameters, FLOPs, time.

>>> import torch.nn as nn
>>> import search_spaces
>>> from evaluators import TrainConfig, TrainingEvaluator
>>> @search_spaces.space
... def mlp(a, input_shape, num_classes):
...     width = a.choice("width", [32, 64])
...     return nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes))
>>> ev = TrainingEvaluator(mlp, "digits", TrainConfig(epochs=2))
>>> ev.context
{'input_shape': (1, 8, 8), 'num_classes': 10}
>>> m = ev.evaluate({"width": 32})
>>> sorted(m), m["params"], m["flops"]  # flops: 2 * in * out per Linear, for one sample
(['accuracy', 'device', 'epochs', 'flops', 'loss', 'params', 'train_seconds'], 2410, 4736)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import search_spaces
from evaluators import datasets
from evaluators._base import Evaluator, Infeasible, Report, _no_report
from evaluators.datasets import Dataset
from search_spaces import Arch, Space

__all__ = ["TrainConfig", "TrainingEvaluator"]

_EVAL_BATCH = 1024  # validation batch size: no gradients, so larger than the training batch
_LATENCY_WARMUP = 5
_LATENCY_RUNS = 30

_AmpFactory = Callable[[], AbstractContextManager[Any]]  # a fresh autocast (or no-op) context per use


@dataclass(frozen=True)
class TrainConfig:
    """How :class:`TrainingEvaluator` trains each architecture (the same for every trial)."""

    epochs: int = 10  # passes over the training split; metrics are reported after each
    batch_size: int = 128  # training minibatch; the last partial batch is kept (unless it has 1 sample)
    lr: float = 1e-3  # learning rate, constant over training
    optimizer: Literal["adam", "sgd"] = "adam"  # torch.optim.Adam, or SGD with `momentum`
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # L2 penalty passed to the optimizer (coupled, as torch.optim.Adam does it)
    label_smoothing: float = 0.0  # for the training loss only; validation loss is plain cross-entropy
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when this process sees a GPU, else CPU
    threads: int | None = None  # torch CPU threads during evaluate (restored after); None: leave as is
    seed: int = 0  # seeds weights, shuffling and dropout; CPU results are bit-for-bit repeatable
    amp: bool = False  # bfloat16 autocast on CUDA (ignored on CPU)
    max_params: int | None = None  # more parameters than this -> Infeasible, before any training
    measure_latency: bool = False  # add latency_ms: median batch-1 forward time after training
    weights_dir: str | None = None  # keep trained weights: <dir>/<arch key>.pt (a state_dict), metric "weights"

    def __post_init__(self) -> None:
        def need(ok: bool, what: str, value: object) -> None:
            if not ok:
                raise ValueError(f"TrainConfig: {what}, but got {value!r}")

        need(_is_int(self.epochs) and self.epochs >= 1, "epochs must be an int >= 1", self.epochs)
        need(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size must be an int >= 1", self.batch_size)
        need(_is_num(self.lr) and self.lr > 0, "lr must be > 0", self.lr)
        need(self.optimizer in ("adam", "sgd"), "optimizer must be 'adam' or 'sgd'", self.optimizer)
        need(_is_num(self.momentum) and 0 <= self.momentum < 1, "momentum must be in [0, 1)", self.momentum)
        need(_is_num(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be >= 0", self.weight_decay)
        need(
            _is_num(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            "label_smoothing must be in [0, 1)",
            self.label_smoothing,
        )
        need(self.device in ("auto", "cpu", "cuda"), "device must be 'auto', 'cpu' or 'cuda'", self.device)
        need(
            self.threads is None or (_is_int(self.threads) and self.threads >= 1),
            "threads must be None or an int >= 1",
            self.threads,
        )
        need(_is_int(self.seed), "seed must be an int", self.seed)
        need(isinstance(self.amp, bool), "amp must be a bool", self.amp)
        need(
            self.max_params is None or (_is_int(self.max_params) and self.max_params >= 1),
            "max_params must be None or an int >= 1",
            self.max_params,
        )
        need(isinstance(self.measure_latency, bool), "measure_latency must be a bool", self.measure_latency)
        need(
            self.weights_dir is None or (isinstance(self.weights_dir, str) and bool(self.weights_dir)),
            "weights_dir must be None or a non-empty path (str)",
            self.weights_dir,
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return dataclasses.asdict(self)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class TrainingEvaluator(Evaluator):
    """Builds each architecture of ``space``, trains it on ``dataset`` and returns its metrics.

    Args:
        space: a :class:`search_spaces.Space`, or a spec for :func:`search_spaces.load`
            (built-in name or ``path/to/file.py:function``).
        dataset: a built-in name, a path to an ``.npz`` (see :func:`evaluators.datasets.load`),
            or a :class:`~evaluators.datasets.Dataset`.
        config: how to train; see :class:`TrainConfig`.

    :meth:`evaluate` returns ``accuracy`` and ``loss`` on the validation split after the
    **final** epoch (not the best epoch: picking the best of several looks at the validation set
    is an optimistic estimate, and pruners already see every epoch through ``report``),
    ``params`` (all parameters), ``flops`` (one sample's forward pass, as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`: ``2*m*n*k`` per matrix product, so a
    Linear costs ``2*in*out``; bias, activations, normalisation and pooling are not counted),
    ``train_seconds`` (training and per-epoch validation), ``epochs``, ``device``, with
    ``measure_latency``, ``latency_ms`` and, with ``weights_dir``, ``weights``: the path of the
    trained state_dict (``<weights_dir>/<arch key>.pt``; ``automl export`` loads it).

    After each epoch it calls ``report(epoch, {"accuracy": ..., "loss": ...})`` with ``epoch``
    counting from 1; a :class:`~evaluators.Pruned` raised there propagates and ends training.

    Raises (from :meth:`evaluate`): :class:`~evaluators.Infeasible` above ``max_params`` or for a
    model without parameters; ``FloatingPointError`` when the loss becomes NaN or infinite;
    ``RuntimeError`` starting "CUDA out of memory" (not retried: the same architecture would run
    out again); :class:`search_spaces.InvalidArchitecture` for an architecture outside the space.

    Picklable, to be sent to worker processes: a dataset given by name or path is loaded again
    there on first use (a path must be readable there too); a :class:`Dataset` object travels
    with the evaluator, arrays included.
    """

    def __init__(
        self,
        space: Space | str,
        dataset: str | os.PathLike[str] | Dataset = "digits",
        config: TrainConfig | None = None,
    ) -> None:
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(dataset, (str, os.PathLike, Dataset)):
            raise TypeError(f"dataset must be a name, a path or a Dataset, got {type(dataset).__name__}")
        self.config = config or TrainConfig()
        self.space = search_spaces.load(space)
        # How to reload the data after unpickling: a built-in name or an absolute path (None: the
        # Dataset object itself is pickled).
        self._dataset_spec: str | None = None
        if not isinstance(dataset, Dataset):
            text = os.fspath(dataset)
            self._dataset_spec = text if text in datasets.names() else str(Path(text).resolve())
        self._dataset: Dataset | None = dataset if isinstance(dataset, Dataset) else datasets.load(dataset)
        data = self._dataset
        self.dataset_name = data.name
        self.context: dict[str, Any] = {"input_shape": data.input_shape, "num_classes": data.num_classes}

    # -- pickling: data given by name or path is reloaded where it is unpickled -------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._dataset_spec is not None:
            state["_dataset"] = None
        return state

    @property
    def dataset(self) -> Dataset:
        """The data, loaded again on first use after unpickling when given by name or path."""
        if self._dataset is None:
            self._dataset = datasets.load(self._dataset_spec or "")
        return self._dataset

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": type(self).__name__,
            "space": self.space.name,
            "dataset": self._dataset_spec or self.dataset_name,
            "context": {"input_shape": list(self.context["input_shape"]), "num_classes": self.context["num_classes"]},
            "config": self.config.to_dict(),
        }

    def __repr__(self) -> str:
        return f"TrainingEvaluator({json.dumps(self.describe())})"

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, arch: Arch | Mapping[str, Any], report: Report = _no_report) -> dict[str, Any]:
        device = _device(self.config.device)
        oom_detail = ""
        try:
            with _threads(self.config.threads), _seeded(self.config.seed, device):
                return self._evaluate(arch, report, device)
        except RuntimeError as e:
            if not _is_cuda_oom(e, device):
                raise
            # Keep only the text: the traceback holds the tensors, which must go before
            # empty_cache. Not a TransientError: the same architecture would run out again.
            first_line = (str(e).strip().splitlines() or [""])[0]
            oom_detail = first_line.removeprefix("CUDA out of memory.").strip()
        torch.cuda.empty_cache()
        raise RuntimeError(f"CUDA out of memory (batch size {self.config.batch_size} on {device}): {oom_detail}")

    def _evaluate(self, arch: Mapping[str, Any], report: Report, device: torch.device) -> dict[str, Any]:
        cfg, data = self.config, self.dataset
        model = self.space.build(arch, **self.context)
        if not isinstance(model, nn.Module):
            raise TypeError(f"space {self.space.name!r} must build an nn.Module, got {type(model).__name__}")
        model = model.to(device)
        x_train, y_train = _tensor(data.x_train, device), _tensor(data.y_train, device)
        x_val, y_val = _tensor(data.x_val, device), _tensor(data.y_val, device)
        use_amp = cfg.amp and device.type == "cuda"

        def amp() -> AbstractContextManager[Any]:
            return torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()

        # One sample through the model: counts FLOPs and initialises lazy modules (LazyLinear...)
        # before the parameters are counted and handed to the optimizer.
        flops = _flops(model, x_val[:1], data.num_classes, self.space.name)
        params = sum(p.numel() for p in model.parameters())
        if cfg.max_params is not None and params > cfg.max_params:
            raise Infeasible(f"{params:,} parameters > max_params {cfg.max_params:,}")
        if params == 0:
            raise Infeasible("the model has no parameters to train")

        optimizer: torch.optim.Optimizer
        if cfg.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        shuffle = torch.Generator().manual_seed(cfg.seed)
        n = len(y_train)
        # Batch boundaries. A last batch of one sample breaks BatchNorm in training mode: merge it
        # into the batch before.
        stops = [s for s in range(cfg.batch_size, n, cfg.batch_size) if s != n - 1]
        accuracy = val_loss = float("nan")

        _sync(device)
        start = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            order = torch.randperm(n, generator=shuffle).to(device)
            total = torch.zeros((), device=device)  # summed on the device: no sync per batch
            for idx in torch.tensor_split(order, stops):
                with amp():
                    logits = model(x_train[idx])
                loss = F.cross_entropy(logits.float(), y_train[idx], label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(idx)
            train_loss = total.item() / n
            if not math.isfinite(train_loss):
                raise FloatingPointError(f"loss became {train_loss} at epoch {epoch}")
            accuracy, val_loss = _validate(model, x_val, y_val, amp)
            if not math.isfinite(val_loss):
                raise FloatingPointError(f"validation loss became {val_loss} at epoch {epoch}")
            report(epoch, {"accuracy": accuracy, "loss": val_loss})
        _sync(device)
        train_seconds = time.perf_counter() - start

        out: dict[str, Any] = {
            "accuracy": accuracy,
            "loss": val_loss,
            "params": int(params),
            "flops": int(flops),
            "train_seconds": round(train_seconds, 4),
            "epochs": cfg.epochs,
            "device": str(device),
        }
        if cfg.measure_latency:
            out["latency_ms"] = _latency_ms(model, x_val[:1], amp, device)
        if cfg.weights_dir is not None:
            out["weights"] = _save_weights(model, Path(cfg.weights_dir) / f"{search_spaces.arch_key(arch)}.pt")
        return out


# -- helpers ----------------------------------------------------------------------------------


def _device(choice: str) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("TrainConfig(device='cuda'), but this process sees no CUDA device")
    return torch.device("cuda", torch.cuda.current_device())


def _is_cuda_oom(e: RuntimeError, device: torch.device) -> bool:
    # cuDNN and cuBLAS report a failed allocation as a plain RuntimeError.
    return isinstance(e, torch.cuda.OutOfMemoryError) or (device.type == "cuda" and "out of memory" in str(e))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    # The dataset's arrays are read-only; torch wants a writable buffer, so copy once.
    return torch.from_numpy(np.array(a)).to(device)


@contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch, numpy and random for the block, then give the caller its generators back."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _flops(model: nn.Module, x1: torch.Tensor, num_classes: int, space_name: str) -> int:
    model.eval()  # batch of one: BatchNorm must use its running statistics
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(x1)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"space {space_name!r} built a model whose output for one sample is {shape}, expected (1, {num_classes})"
        )
    return int(counter.get_total_flops())


def _validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: _AmpFactory) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) over the whole split."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    loss = torch.zeros((), device=x.device)
    with torch.no_grad():
        for start in range(0, len(y), _EVAL_BATCH):
            xb, yb = x[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH]
            with amp():
                logits = model(xb)
            logits = logits.float()
            loss += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
    return correct.item() / len(y), loss.item() / len(y)


def _save_weights(model: nn.Module, path: Path) -> str:
    """Write the model's state_dict (on the CPU) to ``path`` atomically; its absolute path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)  # a reader never sees half a file
    return str(path.resolve())


def _latency_ms(model: nn.Module, x1: torch.Tensor, amp: _AmpFactory, device: torch.device) -> float:
    """Median wall time of a batch-1 forward pass, after a few warm-up runs."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(_LATENCY_WARMUP + _LATENCY_RUNS):
            _sync(device)
            t0 = time.perf_counter()
            with amp():
                model(x1)
            _sync(device)
            if i >= _LATENCY_WARMUP:
                times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000.0, 4)
