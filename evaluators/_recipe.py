"""The training recipe: checks of the recipe fields of :class:`~evaluators.TrainConfig`, ``train.*``
decisions, optimizer and parameter groups, learning-rate schedule, and the training loop (:func:`fit`).

Learning-rate schedules are stepped once per batch. With ``T`` steps in all and ``W`` warm-up
steps (``round(warmup_epochs * steps_per_epoch)``, at most ``T``), the rate of step ``s``
(counting from 0) is ``lr * f(s)``:

- warm-up (``constant`` and ``cosine``), ``s < W``: ``f(s) = (s + 1) / W``, linear up to ``lr``;
- ``constant``: ``f(s) = 1`` after the warm-up;
- ``cosine``: ``f(s) = (1 + cos(pi * (s - W) / (T - W))) / 2``, from ``lr`` at ``s = W`` towards 0 at ``T``;
- ``onecycle``: :class:`torch.optim.lr_scheduler.OneCycleLR` with ``max_lr=lr``, ``pct_start``, its
  default cosine annealing and factors (from ``lr / 25`` up to ``lr``, then down to ``lr / 25e4``);
  ``warmup_epochs`` is not used and momentum is not cycled.

>>> import torch
>>> from evaluators import TrainConfig
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
>>> opt = make_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.1))
>>> [(g["name"], g["weight_decay"], len(g["params"])) for g in opt.param_groups]
[('decay', 0.1, 1), ('no_decay', 0.0, 3)]
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from evaluators import _augment
from evaluators import _recipe_runtime as rt
from evaluators._augment import Augment
from evaluators._base import Paused, Pruned

if TYPE_CHECKING:
    from evaluators._training import TrainConfig

__all__ = ["SEARCHABLE", "check_recipe", "fit", "make_optimizer", "make_schedule", "param_groups", "with_decisions"]

SCHEDULES = ("constant", "cosine", "onecycle")
OPTIMIZERS = ("adam", "adamw", "sgd")
# TrainConfig fields that a space may decide per trial with a ``train.<field>`` decision.
SEARCHABLE = (
    "lr", "weight_decay", "label_smoothing", "batch_size", "momentum", "nesterov", "warmup_epochs",
    "pct_start", "grad_clip", "optimizer", "schedule", "augment",
)  # fmt: skip
_PREFIX = "train."
# Their parameters are scales and shifts, never decayed (1-D anyway; the type makes it explicit).
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def need(ok: bool, what: str, value: object) -> None:
    """Raise ``ValueError("TrainConfig: <what>, but got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"TrainConfig: {what}, but got {value!r}")


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_recipe(cfg: TrainConfig) -> None:
    """Check the recipe fields of ``cfg`` (ValueError naming the first bad one)."""
    need(is_num(cfg.lr) and cfg.lr > 0, "lr must be > 0", cfg.lr)
    need(cfg.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}", cfg.schedule)
    need(is_num(cfg.warmup_epochs) and cfg.warmup_epochs >= 0, "warmup_epochs must be >= 0", cfg.warmup_epochs)
    need(is_num(cfg.pct_start) and 0 < cfg.pct_start < 1, "pct_start must be in (0, 1)", cfg.pct_start)
    need(cfg.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}", cfg.optimizer)
    need(is_num(cfg.momentum) and 0 <= cfg.momentum < 1, "momentum must be in [0, 1)", cfg.momentum)
    need(isinstance(cfg.nesterov, bool), "nesterov must be a bool", cfg.nesterov)
    need(is_num(cfg.weight_decay) and cfg.weight_decay >= 0, "weight_decay must be >= 0", cfg.weight_decay)
    need(
        cfg.grad_clip is None or (is_num(cfg.grad_clip) and cfg.grad_clip > 0),
        "grad_clip must be None or > 0",
        cfg.grad_clip,
    )
    smoothing = cfg.label_smoothing
    need(is_num(smoothing) and 0 <= smoothing < 1, "label_smoothing must be in [0, 1)", smoothing)
    ops = ", ".join(_augment.OPS)
    need(_augment.parse(cfg.augment) is not None, f"augment must be 'none', 'auto' or a list of {ops}", cfg.augment)


def with_decisions(cfg: TrainConfig, arch: Mapping[str, Any]) -> TrainConfig:
    """``cfg`` with each ``train.<field>`` decision of ``arch`` as that field (validated).

    Other ``train.*`` names (``train.dropout``) are the model's own and are left alone; a
    ``TrainConfig`` field that is not in :data:`SEARCHABLE` (``train.seed``) is refused.
    """
    changes: dict[str, Any] = {}
    for name, value in arch.items() if isinstance(arch, Mapping) else ():
        field = name[len(_PREFIX) :] if isinstance(name, str) and name.startswith(_PREFIX) else ""
        if field in SEARCHABLE:
            changes[field] = value
        elif field in {f.name for f in dataclasses.fields(cfg)}:
            allowed = ", ".join(SEARCHABLE)
            raise ValueError(f"decision {name!r}: {field} is not a recipe field a space may decide ({allowed})")
    for field, value in changes.items():  # one at a time, to name the decision that is refused
        try:
            dataclasses.replace(cfg, **{field: value})
        except ValueError as e:
            raise ValueError(f"decision '{_PREFIX}{field}': {e}") from e
    return dataclasses.replace(cfg, **changes) if changes else cfg


# -- optimizer and schedule -------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameters split into ``decay`` (weights with 2+ dimensions: matrices, kernels) and
    ``no_decay`` (biases, normalisation scales and shifts, other 1-D or scalar parameters)."""
    in_norms = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim >= 2 and id(p) not in in_norms else no_decay).append(p)
    groups = [
        {"name": "decay", "params": decay, "weight_decay": float(weight_decay)},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (L2 penalty added to the gradient), AdamW (decoupled decay) or SGD with momentum.

    SGD uses Nesterov momentum when ``cfg.nesterov`` and ``cfg.momentum > 0`` (torch refuses it
    without momentum). Weight decay applies to the ``decay`` group of :func:`param_groups` only.
    """
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    nesterov = cfg.nesterov and cfg.momentum > 0
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov)


def make_schedule(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-batch schedule of ``cfg`` (see the module docs); call ``.step()`` after each batch."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        pct = cfg.pct_start
        if pct * total == 1.0:  # OneCycleLR divides by zero when its rise ends exactly at step 0
            pct = math.nextafter(pct, 1.0)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct, cycle_momentum=False
        )
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    cosine = cfg.schedule == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# -- the training loop ------------------------------------------------------------------------


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    x: torch.Tensor,
    y: torch.Tensor,
    after_epoch: Callable[[int, float], None],
    *,
    pause: bool = False,
    resume: bytes | None = None,
) -> float:
    """Train ``model`` (on ``device``) on ``(x, y)`` with the recipe of ``cfg`` for ``cfg.epochs``.

    Calls ``after_epoch(epoch, mean training loss)`` after each epoch (counted from 1; its time
    is included) and returns the seconds taken. ``x`` and ``y`` may live on the host: each
    batch is copied over. Raises ``FloatingPointError`` when the loss becomes NaN or infinite.

    With ``pause``, a :class:`~evaluators.Pruned` from ``after_epoch`` becomes a
    :class:`~evaluators.Paused` carrying the whole training state (weights, optimizer, schedule,
    batch order, augmentation and dropout generators, epoch, seconds); ``resume`` (such a
    checkpoint, for the same model and recipe) goes on from the epoch after it, exactly as if the
    training had never stopped, and the seconds returned include those before the pause.
    """
    n = len(y)
    # Batch boundaries. A last batch of one sample breaks BatchNorm in training mode: merge it
    # into the batch before.
    stops = [s for s in range(cfg.batch_size, n, cfg.batch_size) if s != n - 1]
    net = rt.compiled(model, cfg, device)
    optimizer = make_optimizer(model, cfg)
    schedule = make_schedule(optimizer, cfg, steps_per_epoch=len(stops) + 1)
    augment = Augment(cfg.augment, ndim=x.ndim, seed=cfg.seed, device=device)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    parts = _TrainingState(model, optimizer, schedule, augment, shuffle, device)
    done, seconds = parts.load(resume) if resume is not None else (0, 0.0)
    amp = rt.amp(cfg, device)
    rt.sync(device)
    start = time.perf_counter()
    for epoch in range(done + 1, cfg.epochs + 1):
        net.train()
        order = torch.randperm(n, generator=shuffle).to(x.device)
        total = torch.zeros((), device=device)  # summed on the device: no sync per batch
        for idx in torch.tensor_split(order, stops):
            xb, yb = rt.batch(x[idx], device, augment), y[idx].to(device, non_blocking=True)
            with amp():
                logits = net(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            schedule.step()
            total += loss.detach() * len(idx)
        train_loss = total.item() / n
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"loss became {train_loss} at epoch {epoch}")
        try:
            after_epoch(epoch, train_loss)
        except Pruned as e:
            if not pause or isinstance(e, Paused):
                raise
            rt.sync(device)
            state = parts.save(epoch, seconds + time.perf_counter() - start)
            raise Paused(str(e), state, epoch) from None
    rt.sync(device)
    return seconds + time.perf_counter() - start


_STATE_FORMAT = 1


@dataclasses.dataclass
class _TrainingState:
    """What :func:`fit` needs to stop after an epoch and go on later as if it never stopped."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    augment: Augment
    shuffle: torch.Generator
    device: torch.device

    def save(self, epoch: int, seconds: float) -> bytes:
        cuda = self.device.type == "cuda"
        blob = {
            "format": _STATE_FORMAT,
            "epoch": epoch,
            "seconds": seconds,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": {k: v for k, v in self.schedule.state_dict().items() if not callable(v)},
            "augment": self.augment.generator_state(),
            "shuffle": self.shuffle.get_state(),
            "rng": torch.get_rng_state(),  # dropout and other layers draw from the global generator
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
        }
        buffer = io.BytesIO()
        torch.save(blob, buffer)
        return buffer.getvalue()

    def load(self, checkpoint: bytes) -> tuple[int, float]:
        """Restore every part from ``checkpoint``; the epochs done and the seconds they took."""
        blob = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a training checkpoint of format {_STATE_FORMAT}")
        self.model.load_state_dict(blob["model"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.schedule.load_state_dict({**self.schedule.state_dict(), **blob["schedule"]})
        self.augment.set_generator_state(blob["augment"])
        self.shuffle.set_state(blob["shuffle"])
        torch.set_rng_state(blob["rng"])
        if blob["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(blob["cuda_rng"], self.device)
        return int(blob["epoch"]), float(blob["seconds"])
