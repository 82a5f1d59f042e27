"""The training recipe: schedules against hand computations, parameter groups, optimizers,
gradient clipping, ``train.*`` decisions, and augmentation on tensors."""

from __future__ import annotations

import doctest
import importlib
import itertools
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

import search_spaces
from evaluators import TrainConfig, TrainingEvaluator
from evaluators._augment import Augment, parse, resolve
from evaluators._recipe import SEARCHABLE, make_optimizer, make_schedule, param_groups, with_decisions
from search_spaces import Chooser

CPU = torch.device("cpu")


def _lrs(cfg: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate of every step of a run, as the schedule sets it before each step."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = make_schedule(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return out


# -- schedules ----------------------------------------------------------------------------------


def test_constant_schedule_without_and_with_warmup() -> None:
    assert _lrs(TrainConfig(epochs=2, lr=0.1), 5) == [0.1] * 10
    # 4 steps per epoch, warm-up 0.5 epoch = 2 steps: 0.1 * 1/2, 0.1 * 2/2, then 0.1.
    lrs = _lrs(TrainConfig(epochs=2, lr=0.1, warmup_epochs=0.5), 4)
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], rel=1e-12)


def test_cosine_schedule_with_warmup_by_hand() -> None:
    # T = 3 epochs * 10 steps = 30, W = 1 epoch = 10 warm-up steps, lr 0.1.
    lrs = _lrs(TrainConfig(epochs=3, lr=0.1, schedule="cosine", warmup_epochs=1), 10)
    assert len(lrs) == 30
    assert lrs[0] == pytest.approx(0.01)  # 0.1 * 1/10: the first step already moves
    assert lrs[4] == pytest.approx(0.05)  # 0.1 * 5/10
    assert lrs[9] == pytest.approx(0.1)  # end of warm-up: the peak
    assert lrs[10] == pytest.approx(0.1)  # cosine starts at the peak: (1 + cos 0) / 2 = 1
    assert lrs[15] == pytest.approx(0.1 * (1 + math.cos(math.pi * 5 / 20)) / 2)  # 0.0853553
    assert lrs[20] == pytest.approx(0.05)  # the middle of the cosine: (1 + cos(pi/2)) / 2 = 1/2
    assert lrs[29] == pytest.approx(0.1 * (1 - 0.98768834) / 2)  # cos(0.95 pi) = -0.98768834: 6.1558e-4
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))  # never rises after warm-up


def test_cosine_schedule_without_warmup_starts_at_lr() -> None:
    lrs = _lrs(TrainConfig(epochs=1, lr=0.2, schedule="cosine"), 4)
    # (1 + cos(pi * s / 4)) / 2 for s = 0..3: 1, 0.8535534, 0.5, 0.1464466
    assert lrs == pytest.approx([0.2, 0.2 * 0.8535534, 0.1, 0.2 * 0.1464466], rel=1e-6)


def test_onecycle_schedule_by_hand() -> None:
    # OneCycleLR, T = 20, pct_start 0.3: rises (cosine) from lr/25 at step 0 to lr at step
    # 0.3 * 20 - 1 = 5, then falls (cosine) to lr / 25 / 1e4 at step 19.
    lrs = _lrs(TrainConfig(epochs=2, lr=1.0, schedule="onecycle", pct_start=0.3, warmup_epochs=5), 10)
    low = 1.0 / 25
    assert lrs[0] == pytest.approx(low)
    assert lrs[5] == pytest.approx(1.0)
    # step 12: halfway down, (12 - 5) / (19 - 5) = 1/2: end + (peak - end) * (1 + cos(pi/2)) / 2
    assert lrs[12] == pytest.approx(low / 1e4 + (1.0 - low / 1e4) / 2)
    assert lrs[19] == pytest.approx(low / 1e4)
    assert max(lrs) == lrs[5]


def test_onecycle_does_not_divide_by_zero_when_the_rise_is_one_step() -> None:
    lrs = _lrs(TrainConfig(epochs=1, lr=1.0, schedule="onecycle", pct_start=0.1), 10)  # 0.1 * 10 == 1
    assert lrs[0] == pytest.approx(1.0 / 25) and all(math.isfinite(x) for x in lrs)


# -- parameter groups and optimizers ------------------------------------------------------------


def _conv_bn_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 8), nn.LayerNorm(8), nn.Linear(8, 3)
    )


def test_param_groups_keep_biases_and_norms_out_of_decay() -> None:
    net = _conv_bn_net()
    conv, bn, _, fc1, ln, fc2 = net
    groups = {g["name"]: g for g in param_groups(net, 0.05)}
    assert {id(p) for p in groups["decay"]["params"]} == {id(conv.weight), id(fc1.weight), id(fc2.weight)}
    no_decay = {id(conv.bias), id(bn.weight), id(bn.bias), id(fc1.bias), id(ln.weight), id(ln.bias), id(fc2.bias)}
    assert {id(p) for p in groups["no_decay"]["params"]} == no_decay
    assert groups["decay"]["weight_decay"] == 0.05 and groups["no_decay"]["weight_decay"] == 0.0


def test_adamw_decay_is_decoupled_and_skips_biases_and_norms() -> None:
    net = _conv_bn_net()
    opt = make_optimizer(net, TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.5))
    assert isinstance(opt, torch.optim.AdamW)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decoupled decay moves a parameter
    opt.step()
    for name, p in net.named_parameters():
        decayed = name in ("0.weight", "3.weight", "5.weight")
        expected = before[name] * (1 - 0.1 * 0.5) if decayed else before[name]  # p <- p - lr * wd * p
        torch.testing.assert_close(p.detach(), expected, msg=name)


def test_adam_keeps_its_coupled_l2_penalty_on_weights_only() -> None:
    opt = make_optimizer(_conv_bn_net(), TrainConfig(optimizer="adam", weight_decay=0.01))
    assert type(opt) is torch.optim.Adam
    assert sorted((g["name"], g["weight_decay"]) for g in opt.param_groups) == [("decay", 0.01), ("no_decay", 0.0)]


def test_sgd_uses_nesterov_momentum() -> None:
    w = nn.Parameter(torch.tensor([1.0]))
    opt = make_optimizer(nn.ParameterList([w]), TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9))
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"] is True
    # Nesterov by hand, constant gradient g = 2: buf_1 = g, step g + 0.9 buf_1 = 3.8 -> w = 1 - 0.38;
    # buf_2 = 0.9 * 2 + 2 = 3.8, step 2 + 0.9 * 3.8 = 5.42 -> w = 0.62 - 0.542 = 0.078.
    for _ in range(2):
        w.grad = torch.tensor([2.0])
        opt.step()
    assert w.item() == pytest.approx(0.078)
    plain = make_optimizer(nn.Linear(2, 2), TrainConfig(optimizer="sgd", nesterov=False))
    assert plain.param_groups[0]["nesterov"] is False
    no_momentum = make_optimizer(nn.Linear(2, 2), TrainConfig(optimizer="sgd", momentum=0.0))
    assert no_momentum.param_groups[0]["nesterov"] is False  # torch refuses Nesterov without momentum


# -- the recipe inside a training run -----------------------------------------------------------


@search_spaces.space
def mlp(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    hidden = a.choice("hidden", [16, 32])
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class _Steps:
    """Records, before every optimizer step anywhere, the optimizer, its lr and the gradient norm."""

    def __init__(self) -> None:
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lrs: list[float] = []
        self.grad_norms: list[float] = []

    def __call__(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.optimizers.append(opt)
        self.lrs.append(opt.param_groups[0]["lr"])
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms = [torch.linalg.vector_norm(g) for g in grads]
        self.grad_norms.append(torch.linalg.vector_norm(torch.stack(norms)).item() if norms else 0.0)


@pytest.fixture
def steps() -> Iterator[_Steps]:
    record = _Steps()
    handle = register_optimizer_step_pre_hook(record)
    try:
        yield record
    finally:
        handle.remove()


def test_training_steps_the_schedule_once_per_batch(steps: _Steps) -> None:
    cfg = TrainConfig(epochs=2, batch_size=512, lr=0.1, schedule="cosine", warmup_epochs=1, threads=1)
    TrainingEvaluator(mlp, "digits", cfg).evaluate({"hidden": 16})
    seen = list(steps.lrs)
    per_epoch = len(seen) // 2
    assert len(seen) == 2 * per_epoch and per_epoch >= 2
    assert seen == pytest.approx(_lrs(cfg, per_epoch))


def test_grad_clip_bounds_the_gradient_norm(steps: _Steps) -> None:
    TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, lr=0.01, threads=1)).evaluate({"hidden": 16})
    unclipped = list(steps.grad_norms)
    assert max(unclipped) > 0.2  # without clipping the norm goes above the bound below
    steps.grad_norms.clear()
    TrainingEvaluator(mlp, "digits", TrainConfig(epochs=1, lr=0.01, threads=1, grad_clip=0.2)).evaluate({"hidden": 16})
    assert len(steps.grad_norms) == len(unclipped)
    assert max(steps.grad_norms) <= 0.2 * (1 + 1e-5)
    assert steps.grad_norms[0] == pytest.approx(min(unclipped[0], 0.2), rel=1e-5)  # same first batch


# -- train.* decisions --------------------------------------------------------------------------


@search_spaces.space
def tuned(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """An MLP whose lr is a decision, plus optimizer and dropout under a 'train' scope."""
    a.float("train.lr", 1e-4, 1e-1, log=True)
    with a.scope("train"):
        a.choice("optimizer", ["adam", "sgd"])
        p = a.choice("dropout", [0.0, 0.5])  # not a TrainConfig field: the model's own
    return nn.Sequential(nn.Flatten(), nn.Dropout(p), nn.LazyLinear(num_classes))


def test_train_decisions_set_the_recipe_of_the_trial(steps: _Steps) -> None:
    ev = TrainingEvaluator(tuned, "digits", TrainConfig(epochs=1, lr=1e-3, threads=1))
    ev.evaluate({"train.lr": 0.0123, "train.optimizer": "sgd", "train.dropout": 0.5})
    assert steps.lrs and set(steps.lrs) == {0.0123}
    assert {type(o) for o in steps.optimizers} == {torch.optim.SGD}
    cfg = ev.trial_config({"train.lr": 0.02, "train.optimizer": "adam", "train.dropout": 0.0})
    assert (cfg.lr, cfg.optimizer, cfg.epochs) == (0.02, "adam", 1) and ev.config.lr == 1e-3  # the base is kept


def test_with_decisions_overrides_and_refuses() -> None:
    base = TrainConfig()
    assert with_decisions(base, {"width": 8, "train.dropout": 0.1}) is base  # nothing of the recipe
    cfg = with_decisions(base, {"train.batch_size": 64, "train.grad_clip": None, "train.augment": "flip"})
    assert (cfg.batch_size, cfg.grad_clip, cfg.augment) == (64, None, "flip")
    message = r"^decision 'train\.batch_size': TrainConfig: batch_size must be an int >= 1, but got 64\.5$"
    with pytest.raises(ValueError, match=message):
        with_decisions(base, {"train.batch_size": 64.5})
    with pytest.raises(ValueError, match=r"decision 'train\.schedule': TrainConfig: schedule must be one of .*'step'"):
        with_decisions(base, {"train.schedule": "step"})
    with pytest.raises(ValueError, match=r"^decision 'train\.lr': TrainConfig: lr must be > 0, but got -1$"):
        with_decisions(base, {"train.batch_size": 32, "train.lr": -1})  # the refused one is named
    with pytest.raises(ValueError, match=r"decision 'train\.seed': seed is not a recipe field"):
        with_decisions(base, {"train.seed": 3})
    assert "lr" in SEARCHABLE and "seed" not in SEARCHABLE and "device" not in SEARCHABLE


# -- augmentation -------------------------------------------------------------------------------


def _images(seed: int = 0) -> torch.Tensor:
    return torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) + 1.0  # no zeros


@pytest.mark.parametrize(
    ("spec", "ndim", "ops"),
    [
        ("none", 4, ()),
        ("auto", 4, ("crop", "flip")),
        ("auto", 3, ("shift",)),
        ("auto", 2, ()),
        ("flip, crop", 4, ("crop", "flip")),
        ("crop,flip,cutout", 4, ("crop", "flip", "cutout")),
        ("shift", 2, ("shift",)),
    ],
)
def test_augment_resolves(spec: str, ndim: int, ops: tuple[str, ...]) -> None:
    assert resolve(spec, ndim) == ops


def test_augment_refuses_what_does_not_fit() -> None:
    assert parse("rotate") is None and parse("none,crop") is None and parse("") is None and parse(3) is None
    with pytest.raises(ValueError, match=r"augment 'crop' needs image batches \(N, C, H, W\)"):
        resolve("crop", 3)
    with pytest.raises(ValueError, match=r"augment 'shift' needs sequence batches"):
        resolve("shift", 4)


def test_augment_off_is_the_identity() -> None:
    x = _images()
    assert Augment("none", ndim=4, seed=0, device=CPU)(x) is x
    flat = x.flatten(1)  # tabular rows: auto does nothing
    assert Augment("auto", ndim=2, seed=0, device=CPU)(flat) is flat


@pytest.mark.parametrize(
    ("spec", "shape"),
    [("crop", (16, 3, 8, 8)), ("flip", (16, 3, 8, 8)), ("cutout", (16, 3, 8, 8)), ("crop,flip,cutout", (16, 3, 32, 32)),
     ("shift", (16, 2, 40)), ("shift", (16, 40))],
)  # fmt: skip
def test_each_augmentation_keeps_shape_and_dtype_changes_the_batch_and_repeats(
    spec: str, shape: tuple[int, ...]
) -> None:
    for dtype in (torch.float32, torch.bfloat16):
        x = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) + 1.0).to(dtype)
        out = Augment(spec, ndim=len(shape), seed=7, device=CPU)(x)
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
        assert not torch.equal(out, x)
        assert torch.equal(out, Augment(spec, ndim=len(shape), seed=7, device=CPU)(x))  # same seed, same batch
        assert not torch.equal(out, Augment(spec, ndim=len(shape), seed=8, device=CPU)(x))
    aug = Augment(spec, ndim=len(shape), seed=7, device=CPU)
    assert not torch.equal(aug(x), aug(x))  # the stream moves on from batch to batch


def test_flip_mirrors_whole_images() -> None:
    x = _images()
    out = Augment("flip", ndim=4, seed=0, device=CPU)(x)
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_crop_translates_by_at_most_the_padding() -> None:
    # One bright pixel at (3, 3) of 8x8: padding max(1, round(8 / 8)) = 1, so it moves by <= 1 per axis.
    x = torch.zeros(64, 1, 8, 8)
    x[:, 0, 3, 3] = 1.0
    out = Augment("crop", ndim=4, seed=0, device=CPU)(x)
    where = out[:, 0].flatten(1).argmax(1)
    rows, cols = where // 8, where % 8
    assert out.sum().item() == 64  # never cut off from the middle
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {2, 3, 4}
    # 32x32: padding 4.
    big = torch.zeros(256, 1, 32, 32)
    big[:, 0, 16, 16] = 1.0
    moved = Augment("crop", ndim=4, seed=0, device=CPU)(big)[:, 0].flatten(1).argmax(1)
    assert set((moved // 32).tolist()) == set(range(12, 21))


def test_cutout_zeroes_one_square_of_half_the_side() -> None:
    x = _images()
    out = Augment("cutout", ndim=4, seed=3, device=CPU)(x)
    holes = out == 0  # the inputs have no zeros
    for hole in holes:
        assert torch.equal(hole[0], hole[1]) and torch.equal(hole[0], hole[2])  # all channels
        rows, cols = hole[0].any(1).nonzero().flatten(), hole[0].any(0).nonzero().flatten()
        assert hole[0].sum() == len(rows) * len(cols)  # a rectangle: the 4x4 square clipped at the border
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert len(rows) == 4 or rows[0] == 0 or rows[-1] == 7
    assert (holes[:, 0].flatten(1).sum(1) == 16).any()  # an unclipped hole: 4x4


def test_shift_moves_sequences_with_zero_fill() -> None:
    x = torch.arange(1, 41, dtype=torch.float32).repeat(32, 1)  # (32, 40): most shift round(40 / 10) = 4
    out = Augment("shift", ndim=2, seed=0, device=CPU)(x)
    seen = set()
    for row in out:
        nz = row.nonzero().flatten()
        offset = int(nz[0]) - int(row[nz[0]].item()) + 1  # where value 1 would be, minus where it was
        assert torch.equal(row[nz], torch.arange(1, 41, dtype=torch.float32)[nz - offset])
        assert len(nz) == 40 - abs(offset)
        seen.add(offset)
    assert seen <= set(range(-4, 5)) and len(seen) > 3


@pytest.mark.parametrize("module", ["evaluators._recipe", "evaluators._augment"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
