"""Weight sharing for any search space (ENAS-style one-shot evaluation, with weight slicing).

Every child built from the space takes the modules it has in common with earlier children
(the same place: see :mod:`evaluators._shared_pool`) from a shared pool instead of initialising
them afresh, trains them for a few minibatches, writes the trained values back and is scored on
the validation split. The pool keeps each tensor at the largest shape seen at its place; a child
with fewer channels or a smaller kernel trains a slice of it (the first channels, the kernel's
centre). A child works on copies of its slices, written back after training, so two children
that agree on a place start from the same values there, and what one learns the next one gets.

>>> import torch, torch.nn as nn
>>> import search_spaces
>>> from evaluators import SharedConfig, SharedWeightsEvaluator
>>> @search_spaces.space
... def two(a, input_shape, num_classes):
...     layers = [nn.Flatten()]
...     with a.scope("hidden"):
...         layers += [nn.LazyLinear(a.choice("width", [16, 32])), nn.ReLU()]
...     with a.scope("out"):
...         layers += [nn.Linear(layers[1].out_features, num_classes)]
...     return nn.Sequential(*layers)
>>> ev = SharedWeightsEvaluator(two, "digits", SharedConfig(steps_per_child=5))
>>> first, second = ev.build({"hidden.width": 16}), ev.build({"hidden.width": 16})
>>> wide = ev.build({"hidden.width": 32})  # another decision in "hidden": other weights there
>>> torch.equal(first[1].weight, second[1].weight), torch.equal(wide[1].weight[:16], first[1].weight)
(True, False)
>>> torch.equal(wide[3].weight[:, :16], first[3].weight)  # "out": one tensor, the narrow child's slice
True
>>> m = ev.evaluate({"hidden.width": 32})
>>> sorted(m)
['accuracy', 'cost', 'device', 'loss', 'params', 'pool_steps', 'shared_fraction', 'train_steps']

**Batch normalisation.** Running statistics are buffers of the pool, sliced like the weights
(and saved with them), but a child's mix of slices is its own: before scoring, the statistics
of every BatchNorm are re-estimated on ``bn_batches`` fixed training minibatches (the child in
evaluation mode but for its BatchNorms), which matters much for how well the shared score ranks
children; the re-estimated statistics go back to the pool.

**One process.** The pool lives in the memory of the process that evaluates: use the ``inline``
executor (or a single worker). With ``pool_dir`` the pool file is locked by the process that
evaluates; a second process evaluating on the same pool raises :class:`PoolInUse` (the trial
fails with that message). Without ``pool_dir`` each worker process would silently train its own
pool from scratch.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import search_spaces
from evaluators import _recipe, datasets
from evaluators import _recipe_runtime as rt
from evaluators import _shared_pool as sp
from evaluators._base import Evaluator, Infeasible, Report, _no_report
from evaluators._recipe import is_int, is_num, need
from evaluators._shared_pool import POOL_FILE, Pool, PoolInUse
from evaluators.datasets import Dataset
from search_spaces import Arch, Space

__all__ = ["PoolInUse", "SharedConfig", "SharedWeightsEvaluator"]

_EVAL_BATCH = 1024


@dataclass(frozen=True)
class SharedConfig:
    """How :class:`SharedWeightsEvaluator` trains and scores each child on the shared pool."""

    steps_per_child: int = 100  # minibatches of the training split per evaluation (0: score only)
    batch_size: int = 128  # training minibatch
    optimizer: Literal["adam", "sgd"] = "adam"  # state kept per pool parameter, across children
    lr: float = 3e-3  # constant: the pool is trained for as long as the search runs
    momentum: float = 0.9  # sgd only (Nesterov)
    weight_decay: float = 0.0  # L2 on weights with 2+ dims (not biases or norms)
    grad_clip: float | None = 5.0  # clip each child's gradient norm (ENAS: 5); None: no clipping
    val_samples: int | None = None  # score on the first n validation samples; None: the whole split
    bn_batches: int = 8  # fixed training minibatches that re-estimate BatchNorm statistics before scoring (0: not)
    pool_dir: str | None = None  # save the pool to <pool_dir>/pool.pt and resume from it; None: memory only
    save_every: int = 1  # evaluations between saves of the pool (with pool_dir); 1: a search ends with it on disk
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when this process sees a GPU
    threads: int | None = None  # torch CPU threads during evaluate (restored after); None: leave as is
    seed: int = 0  # seeds new modules' initialisation, batch order and dropout (with the evaluation count)

    def __post_init__(self) -> None:
        ok = is_int(self.steps_per_child) and self.steps_per_child >= 0
        need(ok, "steps_per_child must be an int >= 0", self.steps_per_child)
        need(is_int(self.batch_size) and self.batch_size >= 2, "batch_size must be an int >= 2", self.batch_size)
        need(self.optimizer in ("adam", "sgd"), "optimizer must be 'adam' or 'sgd'", self.optimizer)
        need(is_num(self.lr) and self.lr > 0, "lr must be > 0", self.lr)
        need(is_num(self.momentum) and 0 <= self.momentum < 1, "momentum must be in [0, 1)", self.momentum)
        need(is_num(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be >= 0", self.weight_decay)
        ok = self.grad_clip is None or (is_num(self.grad_clip) and self.grad_clip > 0)
        need(ok, "grad_clip must be None or > 0", self.grad_clip)
        ok = self.val_samples is None or (is_int(self.val_samples) and self.val_samples >= 1)
        need(ok, "val_samples must be None or an int >= 1", self.val_samples)
        need(is_int(self.bn_batches) and self.bn_batches >= 0, "bn_batches must be an int >= 0", self.bn_batches)
        ok = self.pool_dir is None or (isinstance(self.pool_dir, str) and bool(self.pool_dir))
        need(ok, "pool_dir must be None or a non-empty path (str)", self.pool_dir)
        need(is_int(self.save_every) and self.save_every >= 1, "save_every must be an int >= 1", self.save_every)
        need(self.device in ("auto", "cpu", "cuda"), "device must be 'auto', 'cpu' or 'cuda'", self.device)
        ok = self.threads is None or (is_int(self.threads) and self.threads >= 1)
        need(ok, "threads must be None or an int >= 1", self.threads)
        need(is_int(self.seed), "seed must be an int", self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SharedWeightsEvaluator(Evaluator):
    """Evaluates children of ``space`` on weights shared through a pool (ENAS-style).

    Args:
        space: a :class:`search_spaces.Space` or a spec for :func:`search_spaces.load`.
        dataset: a built-in name, a path (see :func:`evaluators.datasets.load`) or a
            :class:`~evaluators.datasets.Dataset`.
        config: see :class:`SharedConfig`.

    :meth:`evaluate` builds the child, copies the pool's slices into it (a module seen for the
    first time brings its fresh tensors into the pool, a larger one grows them), trains it for
    ``steps_per_child`` minibatches (the optimizer state is sliced from the pool too), writes the
    trained tensors and state back, re-estimates BatchNorm statistics and scores it on the
    validation split. Returns ``accuracy``, ``loss``, ``params`` (the child's), ``train_steps``, ``cost``
    (seconds), ``pool_steps`` (optimizer steps of the pool so far), ``shared_fraction`` (share of
    the child's parameter elements already in the pool), ``device`` and, with ``pool_dir``, ``pool``
    (the pool file's path). ``train.*`` decisions of the space are not applied: one recipe
    trains the whole pool.

    With ``pool_dir``, the pool (tensors, optimizer state, counters) is saved every
    ``save_every`` evaluations to ``<pool_dir>/pool.pt`` and loaded on construction when it
    exists, so a killed search resumes with its trained supernet. Not thread-safe across
    evaluations in parallel; see the module docs for executors.
    """

    def __init__(
        self,
        space: Space | str,
        dataset: str | os.PathLike[str] | Dataset = "digits",
        config: SharedConfig | None = None,
    ) -> None:
        if config is not None and not isinstance(config, SharedConfig):
            raise TypeError(f"config must be a SharedConfig, got {type(config).__name__}")
        if not isinstance(dataset, (str, os.PathLike, Dataset)):
            raise TypeError(f"dataset must be a name, a path or a Dataset, got {type(dataset).__name__}")
        self.config = config or SharedConfig()
        self.space = search_spaces.load(space)
        self._dataset_spec: str | None = None  # how to reload the data after unpickling
        if not isinstance(dataset, Dataset):
            text = os.fspath(dataset)
            self._dataset_spec = text if text in datasets.names() else str(Path(text).resolve())
        self._dataset: Dataset | None = dataset if isinstance(dataset, Dataset) else datasets.load(dataset)
        data = self._dataset
        self.dataset_name = data.name
        self.context: dict[str, Any] = {"input_shape": data.input_shape, "num_classes": data.num_classes}
        self._bound = self.space.bind(**self.context)
        self._setup()
        self._load()  # an existing pool file: resume from it

    def _setup(self) -> None:
        """The per-process parts: no pool yet, no lock, no tensors, a mutex."""
        self._pool: Pool | None = None
        self._lock: str | None = None
        self._tensors: dict[str, torch.Tensor] = {}
        self._mutex = threading.RLock()

    # -- pickling: the pool stays behind (reloaded from pool_dir in the other process) ----------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_pool", "_lock", "_tensors", "_mutex")}
        if self._dataset_spec is not None:
            state["_dataset"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = datasets.load(self._dataset_spec or "")
        return self._dataset

    @property
    def pool_path(self) -> Path | None:
        """``<pool_dir>/pool.pt`` (absolute), or None without ``pool_dir``."""
        return None if self.config.pool_dir is None else (Path(self.config.pool_dir) / POOL_FILE).resolve()

    @property
    def pool(self) -> Pool:
        """The shared pool of this process (loaded from ``pool_dir`` on first use after unpickling)."""
        if self._pool is None:
            self._load()
        assert self._pool is not None
        return self._pool

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": type(self).__name__,
            "space": self.space.name,
            "dataset": self._dataset_spec or self.dataset_name,
            "context": {"input_shape": list(self.context["input_shape"]), "num_classes": self.context["num_classes"]},
            "config": self.config.to_dict(),
            "executor": "inline or one worker: the pool lives in the evaluating process",
        }

    # -- the pool on disk -------------------------------------------------------------------------
    def _load(self) -> None:
        path = self.pool_path
        device = rt.device_of(self.config.device)
        if path is None or not path.exists():
            self._pool = Pool()
            return
        self._pool, meta = Pool.load(path, device)
        if meta.get("space") != self.space.name:
            raise ValueError(f"the pool {path} belongs to space {meta.get('space')!r}, not {self.space.name!r}")

    def save(self) -> str | None:
        """Write the pool to ``<pool_dir>/pool.pt`` now (atomically); its path, or None without pool_dir."""
        path = self.pool_path
        if path is None:
            return None
        with self._mutex:
            self._hold()
            self.pool.save(path, {"space": self.space.name, "config": self.config.to_dict()})
        return str(path)

    def _hold(self) -> None:
        """Take the pool's lock for this process, once (released when the evaluator goes)."""
        if self._lock is None and self.config.pool_dir is not None:
            self._lock = sp.acquire(Path(self.config.pool_dir))
            weakref.finalize(self, sp.release, self._lock)

    # -- building -------------------------------------------------------------------------------
    def build(self, arch: Arch | Mapping[str, Any]) -> nn.Module:
        """The child ``arch`` with copies of the pool's weights (on the config's device), untrained here.

        A module new to the pool enters it (or grows its entry) with this child's fresh values.
        """
        device = rt.device_of(self.config.device)
        with self._mutex, rt.seeded(self._seed(), device):
            return self._child(arch, device)[0]

    def _seed(self) -> int:
        return self.config.seed * 1_000_003 + self.pool.evaluations

    def _child(self, arch: Mapping[str, Any], device: torch.device) -> tuple[nn.Module, list[sp.Link], int]:
        self._bound.validate(arch)  # a wrong architecture is refused by decision name first
        with sp.recording() as places:
            model = self._bound.build(arch)
        if not isinstance(model, nn.Module):
            raise TypeError(f"space {self.space.name!r} must build an nn.Module, got {type(model).__name__}")
        model = model.to(device)
        x1 = self._data(device)["x_train"][:2]
        model.eval()  # lazy modules take their shapes here; fresh running statistics stay untouched
        with torch.no_grad():
            out = model(x1)
        k = self.context["num_classes"]
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, k):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"space {self.space.name!r} built a model whose output for 2 samples is {shape}, not (2, {k})"
            )
        links, reused = self.pool.adopt(model, places)
        return model, links, reused

    def _data(self, device: torch.device) -> dict[str, torch.Tensor]:
        if not self._tensors or next(iter(self._tensors.values())).device != device:
            d = self.dataset
            n_val = len(d.y_val) if self.config.val_samples is None else min(self.config.val_samples, len(d.y_val))
            arrays = {"x_train": d.x_train, "y_train": d.y_train, "x_val": d.x_val[:n_val], "y_val": d.y_val[:n_val]}
            self._tensors = {k: torch.from_numpy(np.array(a)).to(device) for k, a in arrays.items()}
        return self._tensors

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, arch: Arch | Mapping[str, Any], report: Report = _no_report) -> dict[str, Any]:
        cfg = self.config
        device = rt.device_of(cfg.device)
        with self._mutex, rt.threads(cfg.threads):
            self._hold()
            start = time.perf_counter()
            with rt.seeded(self._seed(), device):
                model, links, reused = self._child(arch, device)
                params = sum(p.numel() for p in model.parameters())
                if params == 0:
                    raise Infeasible("the model has no parameters to train")
                state = self._train(model, links, device, self._seed())
                self._recalibrate(model, device)
                accuracy, loss = self._score(model, device)
            pool = self.pool
            pool.write_back(links, state)
            pool.steps += cfg.steps_per_child
            pool.evaluations += 1
            out: dict[str, Any] = {
                "accuracy": accuracy,
                "loss": loss,
                "params": int(params),
                "train_steps": cfg.steps_per_child,
                "cost": round(time.perf_counter() - start, 4),
                "pool_steps": pool.steps,
                "shared_fraction": round(reused / params, 4),
                "device": str(device),
            }
            if self.pool_path is not None:
                if pool.evaluations % cfg.save_every == 0:
                    self.save()
                out["pool"] = str(self.pool_path)
        report(1, {"accuracy": accuracy, "loss": loss})
        return out

    def rescore(self, archs: Sequence[Arch | Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Score ``archs`` side by side on the pool as it is now, leaving the pool unchanged.

        The scores :meth:`evaluate` returns during a search are not comparable over time: the pool
        keeps training, so a child evaluated late scores higher than the same child evaluated early.
        This is ENAS's last step: each architecture starts from the pool's current values, is
        fine-tuned on the same ``steps_per_child`` minibatches as every other one (nothing is
        written back), gets its BatchNorm statistics re-estimated and is scored on the validation
        split. Returns ``accuracy``, ``loss`` and ``pool_steps`` (the pool's age) per architecture.
        """
        cfg = self.config
        device = rt.device_of(cfg.device)
        seed = cfg.seed * 1_000_003 - 1  # never an evaluation's seed; the same for every architecture
        out: list[dict[str, Any]] = []
        with self._mutex, rt.threads(cfg.threads):
            kept = self.pool
            try:
                for arch in archs:
                    self._pool = copy.deepcopy(kept)  # a place new to the pool would enter it: a copy each
                    with rt.seeded(seed, device):
                        model, links, _ = self._child(arch, device)
                        self._train(model, links, device, seed)
                        self._recalibrate(model, device)
                        accuracy, loss = self._score(model, device)
                    out.append({"accuracy": accuracy, "loss": loss, "pool_steps": kept.steps})
            finally:
                self._pool = kept
        return out

    def _train(
        self, model: nn.Module, links: list[sp.Link], device: torch.device, seed: int
    ) -> dict[int, dict[str, Any]]:
        """Train the child's copies on minibatches drawn with ``seed``; their optimizer state by
        ``id`` of each parameter. The pool is not touched here: a failed step leaves it as it was."""
        cfg = self.config
        steps = cfg.steps_per_child
        if steps == 0:
            return {}
        data = self._data(device)
        x, y = data["x_train"], data["y_train"]
        n = len(y)
        shuffle = torch.Generator().manual_seed(seed)
        needed = steps * cfg.batch_size
        order = torch.cat([torch.randperm(n, generator=shuffle) for _ in range(-(-needed // n))])[:needed]
        optimizer = self._optimizer(model)
        by_id = {id(p): p for g in optimizer.param_groups for p in g["params"]}
        for ident, state in self.pool.load_state(links).items():
            optimizer.state[by_id[ident]] = state
        model.train()
        for step, idx in enumerate(order.to(device).split(cfg.batch_size)):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if not torch.isfinite(loss):  # checked before the step: NaN must never reach the shared tensors
                raise FloatingPointError(f"the training loss on the shared weights became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
        return {id(p): optimizer.state[p] for g in optimizer.param_groups for p in g["params"]}

    def _recalibrate(self, model: nn.Module, device: torch.device) -> None:
        """Re-estimate BatchNorm running statistics on the first ``bn_batches`` training minibatches
        (fixed: every child is calibrated on the same samples), the rest of the child in eval mode."""
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if not norms or self.config.bn_batches == 0:
            return
        data = self._data(device)
        x = data["x_train"][: self.config.bn_batches * self.config.batch_size]
        model.eval()
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
            m.train()
        with torch.no_grad():
            for batch in x.split(self.config.batch_size):
                model(batch)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
            m.eval()

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
        groups = _recipe.param_groups(model, cfg.weight_decay)
        if cfg.optimizer == "adam":
            return torch.optim.Adam(groups, lr=cfg.lr)
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)

    def _score(self, model: nn.Module, device: torch.device) -> tuple[float, float]:
        data = self._data(device)
        x, y = data["x_val"], data["y_val"]
        model.eval()
        correct, loss = 0, 0.0
        with torch.no_grad():
            for s in range(0, len(y), _EVAL_BATCH):
                logits = model(x[s : s + _EVAL_BATCH]).float()
                loss += F.cross_entropy(logits, y[s : s + _EVAL_BATCH], reduction="sum").item()
                correct += int((logits.argmax(1) == y[s : s + _EVAL_BATCH]).sum())
        return correct / len(y), loss / len(y)
