"""The built-in spaces cnn1d (1-D sequences, MNIST-1D) and resnet (small images)."""

from __future__ import annotations

import json
import math
import pickle
import random
import time

import numpy as np
import pytest
import torch

import search_spaces
from search_spaces import InvalidArchitecture, Space, SpaceError
from search_spaces.cnn1d import cnn1d
from search_spaces.resnet import resnet

_NAMES = ["cnn1d", "resnet"]
_BLOCK = ("channels", "kernel", "dilation", "norm", "skip", "activation", "pool")  # cnn1d, per block
_STAGE = ("blocks", "width", "block", "kernel", "se")  # resnet, per stage
# The default context first, then another one each space must take.
_SHAPES = {"cnn1d": [(1, 40), (3, 100)], "resnet": [(3, 32, 32), (1, 16, 16)]}


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cnn1d_arch(blocks: list[dict[str, object]], head: str = "avg", dropout: float = 0.0) -> dict[str, object]:
    arch: dict[str, object] = {"depth": len(blocks)}
    for i, block in enumerate(blocks):
        arch |= {f"block{i}.{k}": v for k, v in block.items()}
    return arch | {"head": head, "dropout": dropout}


def _block(channels: int = 16, kernel: int = 3, dilation: int = 1, norm: str = "none", skip: bool = False,
           activation: str = "relu", pool: str | None = "none") -> dict[str, object]:  # fmt: skip
    block = {"channels": channels, "kernel": kernel, "dilation": dilation, "norm": norm, "skip": skip}
    block |= {"activation": activation}
    return block if pool is None else block | {"pool": pool}  # None: the pool decision is inactive


# -- the invariants every built-in space keeps -------------------------------------------------------------


def test_registry_lists_both() -> None:
    assert {"cnn1d", "resnet"} <= set(search_spaces.names())
    for name in _NAMES:
        sp = search_spaces.get(name)
        assert isinstance(sp, Space) and sp.name == name
        assert sp.description and "\n" not in sp.description
        assert sp.describe()["conditional"] is True


def test_cnn1d_decisions() -> None:
    # First-seen order: discovery runs the default depth (2) first, so the head comes before block2.
    blocks = [f"block{i}.{d}" for i in range(6) for d in _BLOCK]
    assert [d.name for d in cnn1d.decisions] == ["depth", *blocks[:14], "head", "dropout", *blocks[14:]]
    assert cnn1d.decision("depth").options == (2, 3, 4, 5, 6)
    assert cnn1d.decision("block3.channels").options == (16, 32, 64, 128)
    assert cnn1d.decision("block0.kernel").options == (3, 5, 7, 9)
    assert cnn1d.decision("block0.dilation").options == (1, 2, 4)
    assert cnn1d.decision("block0.norm").options == ("none", "batch", "layer")
    assert cnn1d.decision("block0.activation").options == ("relu", "gelu", "silu")
    assert cnn1d.decision("block5.pool").options == ("none", "max", "avg")
    assert cnn1d.conditional  # blocks beyond the depth, and pools on short inputs


def test_resnet_decisions() -> None:
    expected = ["stem", "stages"] + [f"stage{i}.{d}" for i in range(4) for d in _STAGE]
    assert [d.name for d in resnet.decisions] == expected
    assert resnet.decision("stages").options == (2, 3, 4)
    assert resnet.decision("stage0.blocks").options == (1, 2, 3)
    assert resnet.decision("stage2.width").options == (16, 32, 64, 128)
    assert resnet.decision("stage0.block").options == ("basic", "bottleneck")
    assert resnet.conditional


@pytest.mark.parametrize("name", _NAMES)
def test_sample_validate_round_trip(name: str) -> None:
    sp = search_spaces.get(name)
    known = {d.name for d in sp.decisions}
    for seed in range(25):
        arch = sp.sample(seed)
        assert sp.validate(arch).arch == arch
        assert sp.validate(json.loads(json.dumps(arch))).arch.key == arch.key
        assert set(arch) <= known


@pytest.mark.parametrize("name", _NAMES)
def test_sampling_is_cheap(name: str) -> None:
    sp = search_spaces.get(name)
    start = time.perf_counter()
    for seed in range(200):
        sp.sample(seed)
    assert (time.perf_counter() - start) / 200 < 5e-3  # no modules are built while sampling


@pytest.mark.parametrize(("name", "shape"), [(n, s) for n, shapes in _SHAPES.items() for s in shapes])
def test_forward_shapes_of_20_random_archs(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    sp = search_spaces.get(name).bind(input_shape=shape, num_classes=7)
    for seed in range(20):
        model = sp.build(sp.sample(seed))
        logits = model(torch.randn(2, *shape))
        assert logits.shape == (2, 7) and torch.isfinite(logits).all(), sp.sample(seed)


@pytest.mark.parametrize("name", _NAMES)
def test_same_arch_same_module(name: str) -> None:
    sp = search_spaces.get(name)
    arch = sp.sample(3)
    torch.manual_seed(0)
    first = sp.build(arch)
    second = sp.build(json.loads(json.dumps(arch)))
    assert str(first) == str(second) and _n_params(first) == _n_params(second)
    shapes = {k: v.shape for k, v in first.state_dict().items()}
    assert shapes == {k: v.shape for k, v in second.state_dict().items()}
    torch.manual_seed(0)
    again = sp.build(arch).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in first.state_dict().items())  # same seed, same weights


@pytest.mark.parametrize("name", _NAMES)
def test_space_pickles(name: str) -> None:
    sp = search_spaces.get(name).bind(num_classes=3)
    back = pickle.loads(pickle.dumps(sp))
    arch = sp.sample(0)
    assert back == sp and back.decisions == sp.decisions
    assert back.build(arch)(torch.randn(2, *_SHAPES[name][0])).shape == (2, 3)


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("cnn1d", (1, 8, 8), r"space 'cnn1d' takes input_shape \(C, L\) with C, L >= 1, got \(1, 8, 8\)"),
        ("cnn1d", (1, 0), r"got \(1, 0\)"),
        ("resnet", (1, 40), r"space 'resnet' takes input_shape \(C, H, W\), got \(1, 40\)"),
    ],
)
def test_refuses_an_input_shape_it_cannot_take(name: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        search_spaces.get(name).bind(input_shape=shape).sample(0)


# -- sizes ---------------------------------------------------------------------------------------------------


def test_cnn1d_size_estimate() -> None:
    # Per block without pool: 4 channels x 4 kernels x 3 dilations x 3 norms x 2 skips x 3 activations.
    per_block, head = 4 * 4 * 3 * 3 * 2 * 3, 2 * 4  # head: 2 heads x 4 dropouts
    # On length 40 a pool is asked while the length is >= 2: 40, 20, 10, 5, 2, then 1. With 2 to 5 blocks
    # every block asks it (3**depth pool sequences); with 6, the 2**5 sequences that pool 5 times leave
    # the sixth block without one: 3**6 - 2**5 * 3 + 2**5 = 665 sequences.
    exact = head * (sum(per_block**d * 3**d for d in range(2, 6)) + per_block**6 * 665)
    size = cnn1d.size()
    # Knuth's estimate over 2,000 paths: relative standard deviation ~5% here, so allow 4 of them.
    assert not size.exact and size.count == pytest.approx(exact, rel=0.2)


def test_resnet_size_estimate() -> None:
    per_stage = 3 * 4 * 2 * 2 * 2  # blocks x widths x block types x kernels x se
    exact = 3 * sum(per_stage**s for s in range(2, 5))  # 3 stems
    size = resnet.size()
    assert not size.exact and size.count == pytest.approx(exact, rel=0.2)


def test_cnn1d_pool_decisions_depend_on_the_length() -> None:
    # Pooling in every block: on length 8 the length goes 8, 4, 2, 1, so block3 has no pool decision.
    deep = _cnn1d_arch([_block(pool="max") for _ in range(4)])
    short = cnn1d.bind(input_shape=(1, 8))
    with pytest.raises(InvalidArchitecture, match=r"decision 'block3\.pool' is not in space"):
        short.validate(deep)
    with pytest.raises(InvalidArchitecture, match=r"decision 'block3\.pool' is not in space"):
        cnn1d.build(deep, input_shape=(1, 8))
    fits = _cnn1d_arch([*[_block(pool="max") for _ in range(3)], _block(pool=None)])
    assert short.build(fits)(torch.randn(2, 1, 8)).shape == (2, 10)
    cnn1d.validate(deep)  # length 40 pools 4 times: 40, 20, 10, 5, 2
    # A length-1 input never pools: no pool decisions at all.
    tiny = cnn1d.bind(input_shape=(2, 1))
    assert not any(d.name.endswith(".pool") for d in tiny.decisions)


def test_cnn1d_length_never_drops_below_1() -> None:
    sp = cnn1d.bind(input_shape=(1, 8))
    lengths: list[int] = []
    for seed in range(40):
        arch = sp.sample(seed)
        model = sp.build(arch)
        hooks = [b.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1])) for b in model.blocks]
        assert model(torch.randn(2, 1, 8)).shape == (2, 10)
        for h in hooks:
            h.remove()
    assert len(lengths) >= 80 and min(lengths) >= 1
    assert min(lengths) == 1  # some sampled architectures do reach length 1: the guard is exercised


# -- parameter counts, checked against formulas written here ---------------------------------------------------


def _conv(c_in: int, c_out: int, k: int, bias: bool) -> int:
    return c_in * c_out * k + (c_out if bias else 0)


def test_cnn1d_params_by_hand() -> None:
    arch = _cnn1d_arch(
        [
            _block(16, kernel=5, norm="batch", skip=True, pool="max"),  # length 40 -> 20
            _block(32, kernel=3, dilation=2, norm="none", skip=True, activation="gelu", pool="avg"),  # 20 -> 10
            _block(32, kernel=7, dilation=4, norm="layer", skip=True, activation="silu", pool="none"),
        ],
        head="flatten",
        dropout=0.3,
    )
    block0 = _conv(1, 16, 5, bias=False) + 2 * 16 + _conv(1, 16, 1, bias=False)  # conv, BN, projection: 128
    block1 = _conv(16, 32, 3, bias=True) + _conv(16, 32, 1, bias=False)  # no norm: conv bias; 2,080
    block2 = _conv(32, 32, 7, bias=False) + 2 * 32  # GroupNorm(1, 32); identity skip: 7,232
    head = 32 * 10 * 10 + 10  # flatten: 32 channels x length 10 -> 10 classes: 3,210
    assert block0 + block1 + block2 + head == 12_650
    assert _n_params(cnn1d.build(arch)) == 12_650


def test_resnet_params_by_hand() -> None:
    arch = {"stem": 16, "stages": 2}
    arch |= {"stage0.blocks": 1, "stage0.width": 16, "stage0.block": "basic", "stage0.kernel": 3, "stage0.se": False}
    arch |= {"stage1.blocks": 2, "stage1.width": 64, "stage1.block": "bottleneck", "stage1.kernel": 5}
    arch |= {"stage1.se": True}
    bn = 2  # weight and bias per channel
    stem = 3 * 16 * 9 + bn * 16  # 464
    basic = 2 * (16 * 16 * 9 + bn * 16)  # two 3x3 convs; same shape: identity shortcut; 4,672
    se = (64 * 16 + 16) + (16 * 64 + 64)  # 1x1 convs with bias, 64 -> 16 -> 64; 2,128
    mid = 64 // 4

    def bottleneck(c_in: int) -> int:
        return (c_in * mid + bn * mid) + (mid * mid * 25 + bn * mid) + (mid * 64 + bn * 64) + se

    first = bottleneck(16) + 16 * 64 + bn * 64  # stride 2 and 16 -> 64: 1x1 projection with BN; 11,152
    second = bottleneck(64)  # 10,768
    head = 64 * 10 + 10
    assert stem + basic + first + second + head == 27_706
    model = resnet.build(arch)
    assert _n_params(model) == 27_706
    # The second stage halves the resolution once: 32x32 -> 16x16 before the global pooling.
    features = model.blocks(model.stem(torch.randn(2, 3, 32, 32)))
    assert features.shape == (2, 64, 16, 16)


def test_cnn1d_smallest_and_largest() -> None:
    smallest = _cnn1d_arch([_block(), _block()])  # every decision at its first option
    assert cnn1d.trace(lambda d: d.default()).arch == smallest
    big = _block(128, kernel=9, dilation=4, norm="batch", skip=True, activation="gelu")
    largest = _cnn1d_arch([big] * 6, head="flatten", dropout=0.5)
    low, high = _n_params(cnn1d.build(smallest)), _n_params(cnn1d.build(largest))
    print(f"cnn1d parameters: smallest {low:,}, largest {high:,}")
    assert low == _conv(1, 16, 3, True) + _conv(16, 16, 3, True) + 16 * 10 + 10 == 1_018
    # Largest: 6 convs of 128 x 9 without bias, BN, one projection 1 -> 128, flatten 128 x 40 -> 10.
    assert high == 1 * 128 * 9 + 5 * 128 * 128 * 9 + 6 * 256 + 128 + 128 * 40 * 10 + 10 == 791_306
    rng = np.random.default_rng(0)
    for _ in range(30):
        assert low <= _n_params(cnn1d.build(cnn1d.sample(rng))) <= high


# -- MNIST-1D ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cnn1d_learns_mnist1d() -> None:
    data = pytest.importorskip("mnist1d.data")
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = data.make_dataset(data.get_dataset_args())  # built here from templates; get_dataset downloads
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x, y = torch.tensor(raw["x"], dtype=torch.float32)[:, None], torch.tensor(raw["y"])  # (4000, 1, 40)
    x_val, y_val = torch.tensor(raw["x_test"], dtype=torch.float32)[:, None], torch.tensor(raw["y_test"])
    arch = _cnn1d_arch(
        [
            _block(32, kernel=5, norm="batch", skip=True, activation="gelu"),
            _block(32, kernel=5, dilation=2, norm="batch", skip=True, activation="gelu", pool="max"),
            _block(32, kernel=5, dilation=2, norm="batch", skip=True, activation="gelu", pool="max"),
        ],
        head="flatten",
        dropout=0.1,
    )
    torch.manual_seed(0)
    model = cnn1d.build(arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _epoch in range(4):
        model.train()
        for idx in torch.randperm(len(x)).split(128):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    print(f"cnn1d on MNIST-1D after 4 epochs: {accuracy:.3f} validation accuracy")
    assert accuracy > 0.6 and math.isfinite(loss.item())
