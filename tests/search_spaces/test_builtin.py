"""The built-in spaces: cnn, mlp and nb201 (checked against the NAS-Bench-201 table)."""

from __future__ import annotations

import csv
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces
from search_spaces import InvalidArchitecture, Space, SpaceError
from search_spaces.nb201 import EDGES, OPS, from_arch_str, nb201, to_arch_str

# The benchmark table lives beside the project (../shared), never in it.
NB201_CSV = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "nb201" / "cifar10.csv"

_LAYER_DECISIONS = {
    "cnn": ("width", "kernel", "op", "skip", "pool"),
    "mlp": ("width", "activation", "dropout", "batchnorm"),
}
# Per layer: cnn 3 widths x 2 kernels x 2 ops x 2 skips x 2 pools; mlp 4 widths x 3 activations x 3 dropouts x 2.
_PER_LAYER = {"cnn": 48, "mlp": 72}
# Input shapes each space must take, and the batch given to it.
_SHAPES = {
    "nb201": [(3, 32, 32), (1, 8, 8)],
    "cnn": [(1, 8, 8), (1, 40), (3, 16, 16)],
    "mlp": [(40,), (1, 8, 8)],
    "cnn1d": [(1, 40), (3, 100)],
    "resnet": [(3, 32, 32), (1, 16, 16)],
}


@pytest.fixture(scope="module")
def table() -> list[dict[str, str]]:
    if not NB201_CSV.is_file():
        pytest.skip(f"NAS-Bench-201 table not found at {NB201_CSV}")
    with NB201_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- every built-in space ----------------------------------------------------------------------------


def test_registry_lists_the_builtins() -> None:
    assert search_spaces.names() == ["cnn", "cnn1d", "mlp", "nb201", "resnet"]
    for name in search_spaces.names():
        sp = search_spaces.get(name)
        assert isinstance(sp, Space) and sp.name == name and sp.description


def test_nb201_decisions() -> None:
    assert [d.name for d in nb201.decisions] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert tuple(d.name for d in nb201.decisions) == EDGES
    for d in nb201.decisions:
        assert d.kind == "choice" and d.options == OPS
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert not nb201.conditional


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_layered_decisions(name: str) -> None:
    sp = search_spaces.get(name)
    expected = ["depth"] + [f"layer{i}.{d}" for i in range(4) for d in _LAYER_DECISIONS[name]]
    assert [d.name for d in sp.decisions] == expected
    assert sp.decision("depth").options == (1, 2, 3, 4)
    assert sp.conditional


def test_nb201_size_is_exact() -> None:
    size = nb201.size()
    assert size.exact and size.count == 15_625 and str(size) == "15,625"


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_layered_size_estimate(name: str) -> None:
    exact = sum(_PER_LAYER[name] ** depth for depth in range(1, 5))
    size = search_spaces.get(name).size()
    # Knuth's estimate (2,000 paths): relative standard deviation ~4% here, so allow 4 of them.
    assert not size.exact and size.count == pytest.approx(exact, rel=0.16)


@pytest.mark.parametrize("name", ["cnn", "cnn1d", "mlp", "nb201", "resnet"])
def test_sample_validate_round_trip(name: str) -> None:
    sp = search_spaces.get(name)
    for seed in range(25):
        arch = sp.sample(seed)
        assert sp.validate(arch).arch == arch
        via_json = json.loads(json.dumps(arch))
        assert sp.validate(via_json).arch.key == arch.key
        assert set(arch) <= {d.name for d in sp.decisions}


@pytest.mark.parametrize(("name", "shape"), [(n, s) for n, shapes in _SHAPES.items() for s in shapes])
def test_build_and_forward(name: str, shape: tuple[int, ...]) -> None:
    sp = search_spaces.get(name)
    for seed in range(3):
        arch = sp.sample(seed)
        model = sp.build(arch, input_shape=shape, num_classes=7)
        assert isinstance(model, torch.nn.Module)
        logits = model(torch.randn(4, *shape))
        assert logits.shape == (4, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["cnn", "cnn1d", "mlp", "nb201", "resnet"])
def test_bind_sets_the_default_shape(name: str) -> None:
    shape = _SHAPES[name][-1]
    sp = search_spaces.get(name).bind(input_shape=shape, num_classes=3)
    assert sp.build(sp.sample(0))(torch.randn(2, *shape)).shape == (2, 3)


@pytest.mark.parametrize("name", ["cnn", "cnn1d", "mlp", "nb201", "resnet"])
def test_same_arch_same_seed_same_weights(name: str) -> None:
    sp = search_spaces.get(name)
    arch = sp.sample(1)
    states = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        states.append(sp.build(arch).state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])  # the seed matters


@pytest.mark.parametrize("name", ["cnn", "cnn1d", "mlp", "nb201", "resnet"])
def test_invalid_arch_is_refused_naming_the_decision(name: str) -> None:
    sp = search_spaces.get(name)
    arch = dict(sp.sample(2))
    first = next(iter(arch))
    with pytest.raises(InvalidArchitecture, match=f"decision '{first}' got 'bogus'"):
        sp.build({**arch, first: "bogus"})
    last = list(arch)[-1]
    with pytest.raises(InvalidArchitecture, match=f"has no value for decision '{last}'"):
        sp.validate({k: v for k, v in arch.items() if k != last})
    with pytest.raises(InvalidArchitecture, match=r"decision 'layer9\.width' is not in space"):
        sp.validate({**arch, "layer9.width": 16})


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_layer_decisions_beyond_depth_are_refused(name: str) -> None:
    sp = search_spaces.get(name)
    deep = sp.trace(lambda d: d.json_value(len(d.options) - 1)).arch  # depth 4
    shallow = {k: v for k, v in deep.items() if not k.startswith(("layer2.", "layer3."))}
    sp.validate({**shallow, "depth": 2})
    with pytest.raises(InvalidArchitecture, match=r"decision 'layer2\.\w+' is not in space"):
        sp.validate({**deep, "depth": 2})


@pytest.mark.parametrize("name", ["cnn", "cnn1d", "mlp", "nb201", "resnet"])
def test_builtin_space_pickles(name: str) -> None:
    sp = search_spaces.get(name).bind(num_classes=3)
    back = pickle.loads(pickle.dumps(sp))
    arch = sp.sample(0)
    assert back.decisions == sp.decisions and back.context == sp.context
    assert back.build(arch)(torch.randn(2, *_SHAPES[name][0])).shape == (2, 3)


def test_cnn_refuses_an_input_shape_it_cannot_take() -> None:
    with pytest.raises(SpaceError, match=r"space 'cnn' takes input_shape \(C, L\) or \(C, H, W\), got \(40,\)"):
        search_spaces.get("cnn").bind(input_shape=(40,)).sample(0)


def test_nb201_refuses_an_input_shape_it_cannot_take() -> None:
    with pytest.raises(SpaceError, match=r"space 'nb201' takes input_shape \(C, H, W\), got \(1, 40\)"):
        nb201.bind(input_shape=(1, 40)).sample(0)


def test_cnn_residual_projection_and_1d_layers() -> None:
    cnn = search_spaces.get("cnn")
    arch = {"depth": 2}
    for i, width in enumerate((16, 16)):
        arch |= {f"layer{i}.width": width, f"layer{i}.kernel": 5, f"layer{i}.op": "sepconv"}
        arch |= {f"layer{i}.skip": True, f"layer{i}.pool": True}
    model = cnn.build(arch, input_shape=(1, 40))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    # layer0: depthwise 1x5, pointwise 1->16, projection 1->16 (widths differ); layer1: identity skip.
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 1, 5),
        (1, 16, 1),
        (1, 16, 1),
        (16, 16, 5),
        (16, 16, 1),
    ]


# -- NAS-Bench-201 ---------------------------------------------------------------------------------------


def test_nb201_sampling_is_cheap() -> None:
    start = time.perf_counter()
    for seed in range(500):
        nb201.sample(seed)
    # Each sample only asks decisions (no modules): well under a millisecond.
    assert (time.perf_counter() - start) / 500 < 2e-3


def test_nb201_cell_sums_its_edges() -> None:
    # All skip_connect: node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x.
    model = nb201.build(dict.fromkeys(EDGES, "skip_connect"))
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(model.cells[0](x), 4 * x)
    # Only 3<-0 alive: the cell is that edge; node1, node2 are zeros and add nothing.
    model = nb201.build({**dict.fromkeys(EDGES, "none"), "3<-0": "avg_pool_3x3"})
    expected = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    assert torch.allclose(model.cells[0](x), expected)
    assert torch.equal(nb201.build(dict.fromkeys(EDGES, "none")).cells[0](x), torch.zeros_like(x))


def test_nb201_arch_str_round_trip_over_the_table(table: list[dict[str, str]]) -> None:
    assert len(table) == 15_625
    keys = set()
    for row in table:
        arch = from_arch_str(row["arch_str"])
        assert to_arch_str(arch) == row["arch_str"]
        keys.add(arch.key)
    assert len(keys) == 15_625  # the table is the whole space


def test_nb201_params_match_the_benchmark(table: list[dict[str, str]]) -> None:
    rows = sorted(table, key=lambda r: float(r["params_m"]))
    picked = [*rows[:: len(rows) // 24], rows[-1]]  # the whole range, smallest and largest included
    for row in picked:
        model = nb201.build(from_arch_str(row["arch_str"]))
        assert _n_params(model) / 1e6 == pytest.approx(float(row["params_m"]), abs=5e-7), row["arch_str"]


def test_nb201_params_by_hand() -> None:
    # No conv in the cells: stem 432+32, reductions 14,464 and 57,600, last BN 128, classifier 650.
    arch = dict.fromkeys(EDGES, "skip_connect")
    assert _n_params(nb201.build(arch)) == 73_306
    # One 3x3 conv per cell adds C*C*9 + 2C per cell: 5 cells at each of 16, 32, 64 channels.
    extra = sum(5 * (c * c * 9 + 2 * c) for c in (16, 32, 64))
    assert _n_params(nb201.build({**arch, "3<-2": "nor_conv_3x3"})) == 73_306 + extra


def test_nb201_context_changes_the_network() -> None:
    arch = dict.fromkeys(EDGES, "nor_conv_3x3")
    small = nb201.build(arch, C=8, N=1, num_classes=2)
    assert small(torch.randn(1, 3, 32, 32)).shape == (1, 2)
    assert _n_params(small) < _n_params(nb201.build(arch)) / 10


def test_to_arch_str_validates() -> None:
    with pytest.raises(InvalidArchitecture, match="decision '2<-1' got 'conv'"):
        to_arch_str({**dict.fromkeys(EDGES, "none"), "2<-1": "conv"})


_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_from_arch_str_reads_the_cell() -> None:
    arch = from_arch_str(_CELL)
    assert arch == {
        "1<-0": "nor_conv_3x3",
        "2<-0": "nor_conv_3x3",
        "2<-1": "avg_pool_3x3",
        "3<-0": "skip_connect",
        "3<-1": "nor_conv_3x3",
        "3<-2": "skip_connect",
    }
    assert nb201.validate(arch).arch == arch


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_CELL.rsplit("+", 1)[0], "has 3 '\\+'-separated groups, got 2"),
        (_CELL + "+|none~0|", "has 3 '\\+'-separated groups, got 4"),
        (_CELL.replace("|+|", "+", 1), "group 1 of .* must look like '\\|op~0\\|...\\|'"),
        (_CELL.replace("|avg_pool_3x3~1|", "|"), "group 2 of .* must list 2 edge\\(s\\) into node 2, got 1"),
        (
            _CELL.replace("skip_connect~2", "skip_connect~1"),
            "edge 2 of group 3 in .* must be 'op~2', got 'skip_connect~1'",
        ),
        (_CELL.replace("avg_pool_3x3~1", "avg_pool_3x3"), "edge 1 of group 2 .* got 'avg_pool_3x3'"),
        (_CELL.replace("avg_pool_3x3", "max_pool_3x3"), "unknown operation 'max_pool_3x3' on edge 2<-1"),
        ("", "has 3 '\\+'-separated groups, got 1"),
    ],
)
def test_from_arch_str_refuses_malformed_strings(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_arch_str(text)


def test_from_arch_str_refuses_a_non_string() -> None:
    with pytest.raises(ValueError, match="must be a str, got 3"):
        from_arch_str(3)  # type: ignore[arg-type]


def test_random_nb201_archs_cover_the_operations() -> None:
    rng = np.random.default_rng(0)
    seen = {op for _ in range(50) for op in nb201.sample(rng).values()}
    assert seen == set(OPS)
