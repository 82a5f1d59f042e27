"""SharedWeightsEvaluator: which modules share tensors (scoped, unscoped, cnn1d slices), training
through the pool, BatchNorm re-estimation, the pool file (save, resume, lock), and searches driven
by evolution and RL."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import automl
from evaluators import PoolInUse, SharedConfig, SharedWeightsEvaluator, datasets
from evaluators._shared_pool import POOL_FILE
from search_spaces import Chooser, space
from search_spaces._dsl import current_chooser
from search_spaces.cnn1d import cnn1d

FAST = SharedConfig(steps_per_child=3, batch_size=16, threads=1, device="cpu")
_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh}


@space
def small(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A user's space: a stem outside any scope, two cells with an option and a range decision."""
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(int(np.prod(input_shape)), 8)]  # outside any scope
    for i in range(2):
        with a.scope(f"cell{i}"):
            act = a.choice("act", ["relu", "tanh"])
            drop = a.float("drop", 0.0, 0.5)  # a range decision: not part of the key
            layers += [nn.Linear(8, 8), _ACT[act](), nn.Dropout(drop), nn.Linear(8, 8)]
    return nn.Sequential(*layers, nn.Linear(8, num_classes))


def _cells(act0: str = "relu", act1: str = "relu", drop: float = 0.1) -> dict[str, Any]:
    return {"cell0.act": act0, "cell0.drop": drop, "cell1.act": act1, "cell1.drop": drop}


def _block(i: int, **kw: Any) -> dict[str, Any]:
    spec = {"channels": 16, "kernel": 3, "dilation": 1, "norm": "batch", "skip": True, "activation": "relu",
            "pool": "none"} | kw  # fmt: skip
    return {f"block{i}.{k}": v for k, v in spec.items()}


def _cnn(b0: dict[str, Any] | None = None, b1: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"depth": 2, **_block(0, **(b0 or {})), **_block(1, **(b1 or {})), "head": "avg", "dropout": 0.0}


@pytest.fixture(scope="module")
def flat() -> datasets.Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    return datasets.from_arrays("flat", x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0), seed=0)


@pytest.fixture(scope="module")
def seq() -> datasets.Dataset:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 1, 16)).astype(np.float32)
    return datasets.from_arrays("seq", x, (x[:, 0, :8].sum(1) > 0).astype(np.int64), seed=0)


def _equal_pools(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].detach().cpu(), b[k].detach().cpu()) for k in a)


# -- the DSL hook ------------------------------------------------------------------------------


def test_chooser_place_names_the_scope_and_its_decisions_so_far() -> None:
    seen = []

    @space
    def probe(a: Chooser) -> None:
        seen.append((current_chooser() is a, a.place))
        a.choice("top", [1, 2])
        with a.scope("b"):
            a.choice("x", [3, 4])
            with a.scope("c"):
                a.choice("y", [5, 6])
            seen.append(a.place)

    probe.build({"top": 2, "b.x": 4, "b.c.y": 5})
    assert seen[-2:] == [(True, ("", ())), ("b", (("b.x", 4), ("b.c.y", 5)))]
    assert current_chooser() is None


# -- what is shared ----------------------------------------------------------------------------


def test_children_with_the_same_cell_choices_share_its_tensors(flat: datasets.Dataset) -> None:
    ev = SharedWeightsEvaluator(small, flat, FAST)
    before = ev.build(_cells("relu", "tanh"))
    ev.evaluate(_cells("relu", "relu"))  # trains and writes back the tensors of its places
    after = ev.build(_cells("relu", "tanh", drop=0.4))
    # layers: 0 flatten, 1 stem, 2-5 cell0 (linear, act, dropout, linear), 6-9 cell1, 10 output
    assert not torch.equal(after[2].weight, before[2].weight)  # cell0: same act, other drop: A's values
    assert not torch.equal(after[5].bias, before[5].bias)
    assert torch.equal(after[6].weight, before[6].weight)  # cell1's act differs, asked before the module
    assert torch.equal(after[9].weight, before[9].weight)
    # made outside any scope: shared by its path in the model and its class, whatever the choices
    assert not torch.equal(after[1].weight, before[1].weight) and not torch.equal(after[-1].weight, before[-1].weight)
    other = ev.build(_cells("tanh", "relu"))
    assert torch.equal(other[1].weight, after[1].weight) and not torch.equal(other[2].weight, after[2].weight)
    keys = list(ev.pool.tensors)
    assert 'cell0|[["cell0.act", "relu"]]|#1|Linear/weight' in keys  # the 2nd module there
    assert "@1|Linear/weight" in keys and "@1|Linear/weight" in ev.pool.parameters
    assert after[2].weight is not ev.build(_cells())[2].weight  # each child trains its own copies


def test_cnn1d_children_share_slices_of_one_tensor_per_place(seq: datasets.Dataset) -> None:
    ev = SharedWeightsEvaluator(cnn1d, seq, FAST)
    narrow = ev.build(_cnn())  # 16 channels, kernel 3 in both blocks
    wide = ev.build(_cnn(b0={"channels": 32, "kernel": 5, "dilation": 2}, b1={"kernel": 7, "norm": "layer"}))
    conv0, conv1 = narrow.blocks[0].conv.weight, narrow.blocks[1].conv.weight
    # the pool grew around the narrow child's values: first channels, the kernel's centre
    assert wide.blocks[0].conv.weight.shape == (32, 1, 5) and torch.equal(
        wide.blocks[0].conv.weight[:16, :, 1:4], conv0
    )
    assert torch.equal(wide.blocks[1].conv.weight[:, :16, 2:5], conv1)  # input channels: block0's choice
    assert ev.pool.tensors["@blocks.0.conv|Conv1d/weight"].shape == (32, 1, 5)
    assert {"@blocks.1.norm|BatchNorm1d/running_mean", "@blocks.1.norm|GroupNorm/weight"} <= set(ev.pool.tensors)
    ev.evaluate(_cnn())  # trains the narrow slices only
    again = ev.build(_cnn(b0={"channels": 32, "kernel": 5}))
    grown = again.blocks[0].conv.weight
    assert not torch.equal(grown[:16, :, 1:4], conv0)  # what the narrow child learnt, the wide one starts from
    assert torch.equal(grown[16:], wide.blocks[0].conv.weight[16:])  # outside its slice: untouched
    assert torch.equal(grown[:16, :, [0, 4]], wide.blocks[0].conv.weight[:16, :, [0, 4]])


def test_optimizer_state_is_sliced_and_grows_with_its_tensor(seq: datasets.Dataset) -> None:
    ev = SharedWeightsEvaluator(cnn1d, seq, FAST)
    ev.evaluate(_cnn())
    key = "@blocks.0.conv|Conv1d/weight"
    kept = ev.pool.state[key]["exp_avg"].clone()
    assert kept.shape == (16, 1, 3) and kept.abs().sum() > 0 and int(ev.pool.state[key]["step"]) == 3
    ev.build(_cnn(b0={"channels": 32, "kernel": 5}))
    grown = ev.pool.state[key]["exp_avg"]
    assert grown.shape == (32, 1, 5) and torch.equal(grown[:16, :, 1:4], kept)
    assert grown[16:].abs().sum() == 0 and grown[:, :, [0, 4]].abs().sum() == 0  # no history there
    ev.evaluate(_cnn(b0={"channels": 32, "kernel": 5}))
    assert ev.pool.state[key]["exp_avg"][16:].abs().sum() > 0 and int(ev.pool.state[key]["step"]) == 6


def test_batchnorm_statistics_are_re_estimated_before_scoring(seq: datasets.Dataset) -> None:
    arch = _cnn()
    for bn_batches in (2, 0):
        cfg = SharedConfig(**{**FAST.to_dict(), "steps_per_child": 0, "bn_batches": bn_batches})
        ev = SharedWeightsEvaluator(cnn1d, seq, cfg)
        first = ev.evaluate(arch)  # score only: the weights stay as they are
        for k in ev.pool.tensors:
            if k.endswith("running_var"):
                ev.pool.tensors[k].fill_(1e6)  # stale statistics in the pool
        again = ev.evaluate(arch)
        assert (again["loss"] == first["loss"]) is (bn_batches > 0), bn_batches
    var = ev.pool.tensors["@blocks.0.norm|BatchNorm1d/running_var"]
    assert torch.all(var == 1e6)  # without re-estimation the pool's statistics are used (and kept)


def test_training_one_child_moves_the_tensor_the_other_sees(flat: datasets.Dataset) -> None:
    ev = SharedWeightsEvaluator(small, flat, FAST)
    before = ev.build(_cells("relu", "tanh"))[2].weight.detach().clone()
    m = ev.evaluate(_cells("relu", "relu"))
    assert not torch.equal(ev.build(_cells("relu", "tanh"))[2].weight, before)  # trained through the pool
    assert m["train_steps"] == 3 and ev.pool.steps == 3 and m["pool_steps"] == 3
    assert 0 < m["shared_fraction"] < 1 and m["params"] == sum(p.numel() for p in ev.build(_cells()).parameters())
    assert set(m) >= {"accuracy", "loss", "params", "train_steps", "cost"} and "pool" not in m


class _Poison(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


@space
def poisoned(a: Chooser, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    with a.scope("body"):
        bad = a.choice("bad", [False, True])
    return nn.Sequential(
        nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes), _Poison() if bad else nn.Identity()
    )


def test_a_nan_loss_never_reaches_the_shared_tensors(flat: datasets.Dataset) -> None:
    ev = SharedWeightsEvaluator(poisoned, flat, FAST)
    ev.evaluate({"body.bad": False})
    before = {k: t.detach().clone() for k, t in ev.pool.tensors.items()}
    with pytest.raises(FloatingPointError, match="at step 0"):
        ev.evaluate({"body.bad": True})  # the same Linear (made outside any scope, same path and shape)
    assert _equal_pools(before, ev.pool.tensors) and ev.pool.steps == 3


# -- the pool on disk --------------------------------------------------------------------------


def test_a_new_evaluator_continues_from_the_saved_pool(
    flat: datasets.Dataset, seq: datasets.Dataset, tmp_path: Path
) -> None:
    cfg = SharedConfig(**{**FAST.to_dict(), "pool_dir": str(tmp_path / "pool"), "save_every": 1})
    ev = SharedWeightsEvaluator(small, flat, cfg)
    ev.evaluate(_cells("relu", "relu"))
    m = ev.evaluate(_cells("tanh", "relu"))
    assert m["pool"] == str((tmp_path / "pool" / POOL_FILE).resolve()) and Path(m["pool"]).exists()
    again = SharedWeightsEvaluator(small, flat, cfg)
    assert _equal_pools(again.pool.tensors, ev.pool.tensors)
    assert (again.pool.steps, again.pool.evaluations) == (6, 2)
    key = next(k for k in ev.pool.state if k.startswith("@1|"))
    assert torch.equal(again.pool.state[key]["exp_avg"], ev.pool.state[key]["exp_avg"])
    assert key in again.pool.parameters and again.pool.parameters == ev.pool.parameters
    assert again.evaluate(_cells())["pool_steps"] == 9  # the step count continues
    unpickled = pickle.loads(pickle.dumps(again))  # the pool stays behind, reloaded from pool_dir
    assert unpickled.pool.evaluations == 3
    with pytest.raises(ValueError, match="belongs to space 'small'"):
        SharedWeightsEvaluator(cnn1d, seq, cfg)


def test_a_pool_in_use_by_another_process_is_refused(flat: datasets.Dataset, tmp_path: Path) -> None:
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    cfg = SharedConfig(**{**FAST.to_dict(), "pool_dir": str(pool_dir)})
    lock = pool_dir / "pool.lock"
    lock.write_text(f"{socket.gethostname()} {os.getppid()}")  # alive: our parent
    with pytest.raises(PoolInUse, match="inline executor"):
        SharedWeightsEvaluator(small, flat, cfg).evaluate(_cells())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(f"{socket.gethostname()} {dead.stdout.strip()}")  # a killed search's lock: taken over
    ev = SharedWeightsEvaluator(small, flat, cfg)
    ev.evaluate(_cells())
    assert lock.read_text() == f"{socket.gethostname()} {os.getpid()}"
    del ev  # the last evaluator of this process on the pool gives the lock back
    assert not lock.exists()


def test_config_refuses_bad_values() -> None:
    bad = (("steps_per_child", -1), ("optimizer", "lion"), ("save_every", 0), ("pool_dir", ""), ("bn_batches", -1))
    for field, value in bad:
        with pytest.raises(ValueError, match=field):
            SharedConfig(**{field: value})


# -- searches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["evolution", "rl"])
def test_a_search_runs_on_shared_weights(strategy: str, flat: datasets.Dataset, tmp_path: Path) -> None:
    cfg = SharedConfig(**{**FAST.to_dict(), "pool_dir": str(tmp_path / "pool"), "save_every": 2})
    ev = SharedWeightsEvaluator(small, flat, cfg)
    res = automl.search(small, ev, strategy=strategy, trials=6, storage=f"sqlite:///{tmp_path / 'a.db'}",
                        name="s", seed=0, progress=False)  # fmt: skip
    frame = res.trials
    assert list(frame["status"]) == ["completed"] * 6
    assert ev.pool.evaluations == 6 and (tmp_path / "pool" / POOL_FILE).exists()
    assert res.best.metrics["pool"] == ev.save() and res.best.metrics["train_steps"] == 3


def test_cnn1d_search_resumes_with_its_stored_pool(seq: datasets.Dataset, tmp_path: Path) -> None:
    cfg = SharedConfig(**{**FAST.to_dict(), "pool_dir": str(tmp_path / "pool"), "save_every": 1})
    url = f"sqlite:///{tmp_path / 'a.db'}"
    automl.search(cnn1d, SharedWeightsEvaluator(cnn1d, seq, cfg), strategy="evolution", trials=3, storage=url,
                  name="r", seed=0, progress=False)  # fmt: skip
    saved = torch.load(tmp_path / "pool" / POOL_FILE, weights_only=True)  # the driver was killed here
    resumed = SharedWeightsEvaluator(cnn1d, seq, cfg)
    assert _equal_pools(resumed.pool.tensors, saved["tensors"]) and resumed.pool.steps == saved["steps"] == 9
    res = automl.search(cnn1d, resumed, strategy="evolution", trials=5, storage=url, name="r", seed=0, progress=False)
    assert len(res.trials) == 5 and resumed.pool.steps == 15
    assert res.trials["pool_steps"].max() == 15 and set(res.trials["pool"]) == {resumed.save()}


def test_rescore_scores_side_by_side_and_leaves_the_pool_as_it_was(seq: datasets.Dataset) -> None:
    ev = SharedWeightsEvaluator(cnn1d, seq, FAST)
    for arch in (_cnn(), _cnn({"channels": 32}), _cnn(b1={"kernel": 5})):
        ev.evaluate(arch)
    tensors = {k: t.detach().clone() for k, t in ev.pool.tensors.items()}
    moments = {k: s["exp_avg"].clone() for k, s in ev.pool.state.items()}
    archs = [_cnn(), _cnn({"channels": 32}), _cnn(b1={"activation": "gelu"}), _cnn({"norm": "layer"})]
    scores = ev.rescore(archs)  # the last brings a LayerNorm: a place new to the pool
    assert _equal_pools(tensors, ev.pool.tensors) and (ev.pool.steps, ev.pool.evaluations) == (9, 3)
    assert all(torch.equal(moments[k], s["exp_avg"]) for k, s in ev.pool.state.items())
    assert [s["pool_steps"] for s in scores] == [9] * 4 and all(0 <= s["accuracy"] <= 1 for s in scores)
    again = ev.rescore(archs[::-1])  # each from the same pool, on the same minibatches: order does not matter
    assert [s["loss"] for s in again[::-1]] == [s["loss"] for s in scores]
    ev.evaluate(_cnn())  # the pool trains on: the next scores are of an older pool
    assert ev.rescore(archs[:1])[0]["pool_steps"] == 12 and ev.rescore(archs[:1])[0]["loss"] != scores[0]["loss"]
