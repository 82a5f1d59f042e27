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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import search_spaces
from evaluators import _recipe, datasets
from evaluators import _recipe_runtime as rt
from evaluators._base import Evaluator, Infeasible, Report, _no_report
from evaluators._recipe import is_int as _is_int
from evaluators.datasets import Dataset
from search_spaces import Arch, Space

__all__ = ["TrainConfig", "TrainingEvaluator"]

_EVAL_BATCH = 1024  # validation batch size: no gradients, so larger than the training batch
_LATENCY_WARMUP = 5
_LATENCY_RUNS = 30


@dataclass(frozen=True)
class TrainConfig:
    """How :class:`TrainingEvaluator` trains each architecture.

    The recipe: an optimizer (``adam``, ``adamw`` or Nesterov ``sgd``; weight decay on weight
    matrices and kernels only, never on biases or normalisation parameters), a per-batch
    learning-rate schedule (``constant``, ``cosine`` or ``onecycle``, see
    :mod:`evaluators._recipe`), optional gradient clipping, label smoothing and augmentation
    on the device (see :mod:`evaluators._augment`).

    **Recipe values searched with the architecture.** A decision named ``train.<field>`` for a
    field in ``evaluators._recipe.SEARCHABLE`` (lr, weight_decay, label_smoothing, batch_size,
    momentum, nesterov, warmup_epochs, pct_start, grad_clip, optimizer, schedule, augment) sets
    that field for that trial (``dataclasses.replace``, so validated). Other ``train.*`` names
    (``train.dropout``) are the model's own business; ``train.seed`` and other fields are refused.

    >>> import search_spaces
    >>> from torch import nn
    >>> @search_spaces.space
    ... def tuned(a, input_shape, num_classes):
    ...     with a.scope("train"):
    ...         a.float("lr", 1e-4, 1e-1, log=True)
    ...         a.choice("schedule", ["constant", "cosine"])
    ...     return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
    >>> ev = TrainingEvaluator(tuned, "digits", TrainConfig(epochs=2))
    >>> cfg = ev.trial_config({"train.lr": 0.01, "train.schedule": "cosine"})
    >>> cfg.lr, cfg.schedule, cfg.epochs
    (0.01, 'cosine', 2)
    """

    epochs: int = 10  # passes over the training split; metrics are reported after each
    batch_size: int = 128  # training minibatch; the last partial batch is kept (unless it has 1 sample)
    lr: float = 1e-3  # peak learning rate: after warm-up, OneCycle's max_lr
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"  # stepped per batch
    warmup_epochs: float = 0.0  # linear warm-up from lr/W to lr over this many epochs (constant, cosine)
    pct_start: float = 0.3  # onecycle: share of the steps spent rising to lr
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # adamw: decoupled weight decay
    momentum: float = 0.9  # SGD only
    nesterov: bool = True  # SGD only: Nesterov momentum (when momentum > 0)
    weight_decay: float = 0.0  # on weights with 2+ dims only; Adam adds it to the gradient, AdamW decouples it
    grad_clip: float | None = None  # clip the global gradient norm to this (clip_grad_norm_); None: no clipping
    label_smoothing: float = 0.0  # for the training loss only; validation loss is plain cross-entropy
    augment: str = "none"  # none | auto | crop,flip,cutout (images) | shift (sequences), on the device
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when this process sees a GPU, else CPU
    threads: int | None = None  # torch CPU threads during evaluate (restored after); None: leave as is
    seed: int = 0  # seeds weights, shuffling, augmentation and dropout; CPU results are bit-for-bit repeatable
    amp: bool = False  # bfloat16 autocast on CUDA (ignored on CPU); image batches are channels_last on CUDA
    compile: bool = False  # torch.compile the model on CUDA (ignored on CPU: see _recipe_runtime.compiled)
    data_on_device: Literal["auto"] | bool = "auto"  # CUDA: keep data on the GPU; auto: if < 25% of free memory
    max_params: int | None = None  # more parameters than this -> Infeasible, before any training
    measure_latency: bool = False  # add latency_ms: median batch-1 forward time after training
    weights_dir: str | None = None  # keep trained weights: <dir>/<arch key>.pt (a state_dict), metric "weights"

    def __post_init__(self) -> None:
        need = _recipe.need
        need(_is_int(self.epochs) and self.epochs >= 1, "epochs must be an int >= 1", self.epochs)
        need(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size must be an int >= 1", self.batch_size)
        _recipe.check_recipe(self)
        need(self.device in ("auto", "cpu", "cuda"), "device must be 'auto', 'cpu' or 'cuda'", self.device)
        need(
            self.threads is None or (_is_int(self.threads) and self.threads >= 1),
            "threads must be None or an int >= 1",
            self.threads,
        )
        need(_is_int(self.seed), "seed must be an int", self.seed)
        need(isinstance(self.amp, bool), "amp must be a bool", self.amp)
        need(isinstance(self.compile, bool), "compile must be a bool", self.compile)
        need(
            isinstance(self.data_on_device, bool) or self.data_on_device == "auto",
            "data_on_device must be 'auto', True or False",
            self.data_on_device,
        )
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
    Each trial trains with :meth:`trial_config`; :meth:`final` retrains on train+val for the test split.

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
        data_options: Mapping[str, Any] | None = None,
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
        # What datasets.load takes besides the spec (target=, image_size=): kept to load it again.
        self._data_options = {k: v for k, v in dict(data_options or {}).items() if v is not None}
        loaded = dataset if isinstance(dataset, Dataset) else datasets.load(dataset, **self._data_options)
        self._dataset: Dataset | None = loaded
        data = self._dataset
        self.dataset_name = data.name
        self.context: dict[str, Any] = {"input_shape": data.input_shape, "num_classes": data.num_classes}
        self._bound = self.space.bind(**self.context)  # validates and builds with this data's shape

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
            self._dataset = datasets.load(self._dataset_spec or "", **self._data_options)
        return self._dataset

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": type(self).__name__,
            "space": self.space.name,
            "dataset": self._dataset_spec or self.dataset_name,
            "data_options": dict(self._data_options),
            "context": {"input_shape": list(self.context["input_shape"]), "num_classes": self.context["num_classes"]},
            "config": self.config.to_dict(),
        }

    def __repr__(self) -> str:
        return f"TrainingEvaluator({json.dumps(self.describe())})"

    def trial_config(self, arch: Arch | Mapping[str, Any]) -> TrainConfig:
        """The recipe for ``arch``: :attr:`config` with its ``train.*`` decisions (see :class:`TrainConfig`).

        Raises :class:`search_spaces.InvalidArchitecture` for an architecture outside the space,
        ``ValueError`` naming the decision and field for a recipe value TrainConfig refuses.
        """
        with rt.seeded(self.config.seed, torch.device("cpu")):  # tracing may build modules: keep the caller's RNG
            self._bound.validate(arch)  # a wrong architecture is refused by decision name first
        return _recipe.with_decisions(self.config, arch)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, arch: Arch | Mapping[str, Any], report: Report = _no_report) -> dict[str, Any]:
        cfg = self.trial_config(arch)
        return self._guarded(cfg, lambda device: self._evaluate(arch, cfg, report, device))

    def evaluate_pausable(
        self, arch: Arch | Mapping[str, Any], report: Report = _no_report, checkpoint: bytes | None = None
    ) -> dict[str, Any]:
        """:meth:`evaluate`, but a prune pauses: :class:`~evaluators.Paused` carries the training state.

        Given that ``checkpoint`` (of the same architecture and recipe), training goes on from the
        epoch after it, reporting the epochs that follow (their numbers continue) and ending with
        the metrics :meth:`evaluate` would have returned (``train_seconds`` counting both parts)
        and ``resumed_from``, the checkpoint's epoch. On the CPU the result is the same, to the
        bit, as a training that never stopped.
        """
        cfg = self.trial_config(arch)
        return self._guarded(
            cfg, lambda device: self._evaluate(arch, cfg, report, device, pause=True, resume=checkpoint)
        )

    def final(
        self, arch: Arch | Mapping[str, Any], *, seed: int, epochs: int | None = None, report: Report | None = None
    ) -> dict[str, Any]:
        """Train ``arch`` from scratch on train+val with seed ``seed``, then measure it on the test split.

        The full recipe of :meth:`trial_config`, for ``epochs`` (default: the config's). The test
        split is read only after training ends; ``report(epoch, {"train_loss": ...})`` after each
        epoch is all that is seen during training. Returns ``test_accuracy``, ``test_loss``,
        ``params``, ``flops``, ``train_seconds``, ``epochs``, ``seed`` and, with ``weights_dir``,
        ``weights``: ``<weights_dir>/final/<arch key>-s<seed>.pt``. Raises as :meth:`evaluate`.
        """
        cfg = self.trial_config(arch)
        cfg = dataclasses.replace(cfg, seed=seed, epochs=cfg.epochs if epochs is None else epochs)
        return self._guarded(cfg, lambda device: self._final(arch, cfg, report or _no_report, device))

    def _guarded(self, cfg: TrainConfig, run: Callable[[torch.device], dict[str, Any]]) -> dict[str, Any]:
        """``run(device)`` with the config's threads and seed; a CUDA OOM becomes a short RuntimeError."""
        device = rt.device_of(cfg.device)
        oom_detail = ""
        try:
            with rt.threads(cfg.threads), rt.seeded(cfg.seed, device):
                return run(device)
        except RuntimeError as e:
            if not rt.is_cuda_oom(e, device):
                raise
            # Keep only the text: the traceback holds the tensors, which must go before
            # empty_cache. Not a TransientError: the same architecture would run out again.
            first_line = (str(e).strip().splitlines() or [""])[0]
            oom_detail = first_line.removeprefix("CUDA out of memory.").strip()
        torch.cuda.empty_cache()
        raise RuntimeError(f"CUDA out of memory (batch size {cfg.batch_size} on {device}): {oom_detail}")

    def _evaluate(
        self,
        arch: Mapping[str, Any],
        cfg: TrainConfig,
        report: Report,
        device: torch.device,
        *,
        pause: bool = False,
        resume: bytes | None = None,
    ) -> dict:
        data = self.dataset
        model, flops, params = self._model(arch, cfg, device, data.x_train[:1])
        keep = rt.data_on_device(cfg, device, data.x_train.nbytes + data.x_val.nbytes)
        x_train, y_train = rt.tensor(data.x_train, device, keep), rt.tensor(data.y_train, device, keep)
        x_val, y_val = rt.tensor(data.x_val, device, keep), rt.tensor(data.y_val, device, keep)
        accuracy = val_loss = float("nan")
        first = 0  # the first epoch trained here (after a checkpoint's: not 1)

        def after_epoch(epoch: int, train_loss: float) -> None:
            nonlocal accuracy, val_loss, first
            first = first or epoch
            accuracy, val_loss = _validate(model, x_val, y_val, cfg, device)
            if not math.isfinite(val_loss):
                raise FloatingPointError(f"validation loss became {val_loss} at epoch {epoch}")
            report(epoch, {"accuracy": accuracy, "loss": val_loss})

        train_seconds = _recipe.fit(model, cfg, device, x_train, y_train, after_epoch, pause=pause, resume=resume)
        if resume is not None and math.isnan(accuracy):  # resumed after the last epoch: nothing trained
            accuracy, val_loss = _validate(model, x_val, y_val, cfg, device)
        out: dict[str, Any] = {"accuracy": accuracy, "loss": val_loss, "params": params, "flops": flops}
        out.update(train_seconds=round(train_seconds, 4), epochs=cfg.epochs, device=str(device))
        if resume is not None:
            out["resumed_from"] = first - 1 if first else cfg.epochs
        if cfg.measure_latency:
            out["latency_ms"] = _latency_ms(model, rt.batch(x_val[:1], device), rt.amp(cfg, device), device)
        if cfg.weights_dir is not None:
            out["weights"] = _save_weights(model, Path(cfg.weights_dir) / f"{search_spaces.arch_key(arch)}.pt")
        return out

    def _final(self, arch: Mapping[str, Any], cfg: TrainConfig, report: Report, device: torch.device) -> dict:
        data = self.dataset
        x, y = data.train_val()
        model, flops, params = self._model(arch, cfg, device, x[:1])
        keep = rt.data_on_device(cfg, device, x.nbytes)
        x_fit, y_fit = rt.tensor(x, device, keep), rt.tensor(y, device, keep)
        seconds = _recipe.fit(model, cfg, device, x_fit, y_fit, lambda epoch, loss: report(epoch, {"train_loss": loss}))
        del x_fit, y_fit
        # Training has ended: only now is the test split read.
        x_test, y_test = rt.tensor(data.x_test, device, keep), rt.tensor(data.y_test, device, keep)
        accuracy, loss = _validate(model, x_test, y_test, cfg, device)
        out: dict[str, Any] = {"test_accuracy": accuracy, "test_loss": loss, "params": params, "flops": flops}
        out.update(train_seconds=round(seconds, 4), epochs=cfg.epochs, seed=cfg.seed)
        if cfg.weights_dir is not None:
            name = f"{search_spaces.arch_key(arch)}-s{cfg.seed}.pt"
            out["weights"] = _save_weights(model, Path(cfg.weights_dir) / "final" / name)
        return out

    def _model(
        self, arch: Mapping[str, Any], cfg: TrainConfig, device: torch.device, x1: np.ndarray
    ) -> tuple[nn.Module, int, int]:
        """The built model on ``device``, its FLOPs for one sample ``x1`` and its parameter count."""
        model = self._bound.build(arch)
        if not isinstance(model, nn.Module):
            raise TypeError(f"space {self.space.name!r} must build an nn.Module, got {type(model).__name__}")
        model = model.to(device)
        # One sample through the model: counts FLOPs and initialises lazy modules (LazyLinear...)
        # before the parameters are counted and handed to the optimizer.
        flops = _flops(model, rt.tensor(x1, device, True), self.context["num_classes"], self.space.name)
        params = sum(p.numel() for p in model.parameters())
        if cfg.max_params is not None and params > cfg.max_params:
            raise Infeasible(f"{params:,} parameters > max_params {cfg.max_params:,}")
        if params == 0:
            raise Infeasible("the model has no parameters to train")
        if rt.channels_last(device, x1.ndim):
            model = model.to(memory_format=torch.channels_last)
        return model, int(flops), int(params)


# -- helpers ----------------------------------------------------------------------------------


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


def _validate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, device: torch.device
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) over the whole split."""
    model.eval()
    amp = rt.amp(cfg, device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    loss = torch.zeros((), device=device)
    with torch.no_grad():
        for start in range(0, len(y), _EVAL_BATCH):
            xb = rt.batch(x[start : start + _EVAL_BATCH], device)
            yb = y[start : start + _EVAL_BATCH].to(device, non_blocking=True)
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


def _latency_ms(model: nn.Module, x1: torch.Tensor, amp: rt.AmpFactory, device: torch.device) -> float:
    """Median wall time of a batch-1 forward pass, after a few warm-up runs."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(_LATENCY_WARMUP + _LATENCY_RUNS):
            rt.sync(device)
            t0 = time.perf_counter()
            with amp():
                model(x1)
            rt.sync(device)
            if i >= _LATENCY_WARMUP:
                times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000.0, 4)
