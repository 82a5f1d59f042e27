"""The define-by-run DSL: decisions, architectures, sizes, binding, loading user spaces."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search_spaces import Arch, Chooser, Decision, InvalidArchitecture, Space, SpaceError, arch_key, load, space

# -- small spaces used below -----------------------------------------------------------------


@space(num_classes=10)
def flat(a: Chooser, num_classes: int) -> dict[str, Any]:
    """Every kind of decision, none conditional."""
    return {
        "act": a.choice("act", ["relu", "gelu", "tanh"]),
        "units": a.integer("units", 8, 32, step=8),
        "blocks": list(a.repeat("blocks", 1, 2)),
        "skip": a.inputs("skip", [0, 1, 2], k=2),
        "num_classes": num_classes,
    }


@space
def layered(a: Chooser) -> list[tuple[str, Any]]:
    """A small conditional space: 1-3 layers; a kernel size only for conv layers."""
    layers = []
    for i in a.repeat("depth", 1, 3):
        with a.scope(f"l{i}"):
            op = a.choice("op", ["conv", "pool"])
            layers.append((op, a.choice("k", [3, 5]) if op == "conv" else None))
    return layers


# 1-3 layers of (2 conv kernels + 1 pool) = 3 + 3**2 + 3**3, counted by hand.
_LAYERED_SIZE = 39


def _one(fn: Any) -> Space:
    return Space(fn, name="probe")


def _enumerate(sp: Space) -> list[Arch]:
    """Every architecture, by walking the decision tree depth first (an odometer over option indices)."""
    archs, path = [], []
    while True:
        sizes: list[int] = []

        def choose(d: Decision, sizes: list[int] = sizes, path: list[int] = path) -> Any:
            sizes.append(len(d.options))
            k = len(sizes) - 1
            return d.json_value(path[k] if k < len(path) else 0)

        archs.append(sp.trace(choose).arch)
        path = (path + [0] * len(sizes))[: len(sizes)]
        while path and path[-1] + 1 == sizes[len(path) - 1]:
            path.pop()
        if not path:
            return archs
        path[-1] += 1


# -- decisions -----------------------------------------------------------------------------------


def test_each_kind_of_decision_is_recorded_with_its_options() -> None:
    trace = flat.trace(lambda d: d.json_value(len(d.options) - 1))  # always the last option
    assert [(d.name, d.kind) for d in trace.decisions] == [
        ("act", "choice"),
        ("units", "integer"),
        ("blocks", "integer"),
        ("skip", "inputs"),
    ]
    assert trace.decisions[1].options == (8, 16, 24, 32)
    assert trace.decisions[3].options == ((0, 1), (0, 2), (1, 2))
    assert trace.arch == {"act": "tanh", "units": 32, "blocks": 2, "skip": [1, 2]}


def test_values_reach_the_space_function() -> None:
    arch = {"act": "gelu", "units": 16, "blocks": 2, "skip": [0, 2]}
    out = flat.build(arch)
    assert out == {"act": "gelu", "units": 16, "blocks": [0, 1], "skip": [0, 2], "num_classes": 10}
    assert flat.build({**arch, "skip": (0, 2)})["skip"] == [0, 2]  # a tuple is the same input set


def test_scope_prefixes_names_and_nests() -> None:
    def fn(a: Chooser) -> None:
        with a.scope("cell"):
            a.choice("op", ["x", "y"])
            with a.scope("node1"):
                a.choice("op", ["x", "y"])
        a.choice("op", ["x", "y"])

    assert [d.name for d in _one(fn).decisions] == ["cell.op", "cell.node1.op", "op"]


def test_a_decision_asked_twice_the_same_way_is_shared() -> None:
    seen = []

    def fn(a: Chooser) -> None:
        seen.append((a.choice("width", [16, 32]), a.choice("width", [16, 32])))

    sp = _one(fn)
    assert [d.name for d in sp.decisions] == ["width"]
    sp.build({"width": 32})
    assert seen[-1] == (32, 32)


def test_conditional_decisions_are_discovered() -> None:
    assert [d.name for d in layered.decisions] == ["depth", "l0.op", "l0.k", "l1.op", "l1.k", "l2.op", "l2.k"]
    assert layered.conditional
    assert not flat.conditional
    layered.validate({"depth": 1, "l0.op": "pool"})  # l0.k is absent on this branch
    layered.validate({"depth": 2, "l0.op": "conv", "l0.k": 5, "l1.op": "pool"})


def test_sample_is_reproducible_and_valid() -> None:
    assert layered.sample(3) == layered.sample(np.random.default_rng(3))
    archs = {layered.sample(seed) for seed in range(200)}
    assert len(archs) > 20  # it explores
    for arch in archs:
        assert layered.validate(arch).arch == arch


def test_tracing_is_true_while_sampling_and_false_while_building() -> None:
    flags: list[bool] = []
    sp = _one(lambda a: flags.append(a.tracing))
    sp.sample(0)
    sp.build({})
    assert flags[-2:] == [True, False]


# -- a wrong space is refused, naming the problem ------------------------------------------------


def _asking(**calls: Any) -> Space:
    # A space asking one decision: _asking(choice=("x", opts)) calls a.choice("x", opts).
    ((method, args),) = calls.items()
    return _one(lambda a: getattr(a, method)(*args))


def test_choice_options_must_be_a_list() -> None:
    with pytest.raises(SpaceError, match="choice 'x': options must be a list, got 'abc'"):
        _asking(choice=("x", "abc")).sample(0)


def test_choice_options_must_not_be_empty() -> None:
    with pytest.raises(SpaceError, match="choice 'x': options must not be empty"):
        _asking(choice=("x", [])).sample(0)


def test_choice_options_must_be_scalars() -> None:
    with pytest.raises(SpaceError, match=r"choice 'x': option \[2\] is not a JSON scalar"):
        _asking(choice=("x", [1, [2]])).sample(0)


def test_choice_options_must_not_repeat() -> None:
    with pytest.raises(SpaceError, match=r"choice 'x': options repeat, got \['a', 'b', 'a'\]"):
        _asking(choice=("x", ["a", "b", "a"])).sample(0)


def test_choice_options_true_and_1_are_distinct() -> None:
    assert len(_asking(choice=("x", [1, True])).decisions[0].options) == 2


def test_integer_low_must_not_exceed_high() -> None:
    with pytest.raises(SpaceError, match=r"integer 'n': `low <= high` .* got low=5, high=2"):
        _asking(integer=("n", 5, 2)).sample(0)


def test_integer_step_must_be_positive() -> None:
    with pytest.raises(SpaceError, match="step=0"):
        _asking(integer=("n", 1, 4, 0)).sample(0)


def test_integer_bounds_must_be_ints() -> None:
    with pytest.raises(SpaceError, match=r"integer 'n': high must be an int, got 2\.5"):
        _asking(integer=("n", 1, 2.5)).sample(0)
    with pytest.raises(SpaceError, match="integer 'n': low must be an int, got True"):
        _asking(integer=("n", True, 2)).sample(0)


def test_repeat_bounds_are_checked_like_integer() -> None:
    with pytest.raises(SpaceError, match=r"integer 'depth': `low <= high`"):
        _asking(repeat=("depth", 3, 1)).sample(0)


def test_inputs_k_must_fit_the_candidates() -> None:
    with pytest.raises(SpaceError, match=r"inputs 'in': k must be in \[1, 2\], got 3"):
        _asking(inputs=("in", [0, 1], 3)).sample(0)
    with pytest.raises(SpaceError, match=r"inputs 'in': k must be in \[1, 2\], got True"):
        _asking(inputs=("in", [0, 1], True)).sample(0)


def test_inputs_candidates_must_be_distinct_scalars() -> None:
    with pytest.raises(SpaceError, match=r"inputs 'in': candidates must be distinct JSON scalars, got \[0, 0\]"):
        _asking(inputs=("in", [0, 0], 1)).sample(0)
    with pytest.raises(SpaceError, match="inputs 'in': candidates must be distinct"):
        _asking(inputs=("in", [], 1)).sample(0)


def test_a_decision_asked_twice_differently_is_refused() -> None:
    def fn(a: Chooser) -> None:
        a.choice("w", [16, 32])
        a.choice("w", [16, 64])

    with pytest.raises(SpaceError, match="decision 'w' is asked twice with different options"):
        _one(fn).sample(0)


@pytest.mark.parametrize("name", ["", " w", "w ", 3, None])
def test_bad_decision_names_are_refused(name: Any) -> None:
    with pytest.raises(SpaceError, match="a decision name must be a non-empty string"):
        _asking(choice=(name, [1, 2])).sample(0)


def test_bad_scope_names_are_refused() -> None:
    def fn(a: Chooser) -> None:
        with a.scope(""):
            a.choice("w", [1])

    with pytest.raises(SpaceError, match="a decision name must be a non-empty string"):
        _one(fn).sample(0)


def test_a_space_needs_a_callable() -> None:
    with pytest.raises(SpaceError, match="a space needs a callable, got 3"):
        Space(3)  # type: ignore[arg-type]


# -- a wrong architecture is refused, naming the decision ---------------------------------------

_GOOD = {"act": "relu", "units": 8, "blocks": 1, "skip": [0, 1]}


def test_good_architecture_validates() -> None:
    assert flat.validate(_GOOD).arch == _GOOD


def test_missing_decision_is_refused() -> None:
    with pytest.raises(InvalidArchitecture, match="architecture has no value for decision 'units'"):
        flat.validate({"act": "relu"})


def test_wrong_value_is_refused() -> None:
    with pytest.raises(
        InvalidArchitecture, match=r"decision 'act' got 'elu'; expected one of \['relu', 'gelu', 'tanh'\]"
    ):
        flat.validate({**_GOOD, "act": "elu"})
    with pytest.raises(InvalidArchitecture, match=r"decision 'skip' got \[2, 0\]"):
        flat.validate({**_GOOD, "skip": [2, 0]})  # inputs are in candidate order


def test_extra_decision_is_refused() -> None:
    with pytest.raises(InvalidArchitecture, match="decision 'colour' is not in space 'flat'"):
        flat.validate({**_GOOD, "colour": "red"})


def test_inactive_decision_is_refused() -> None:
    with pytest.raises(InvalidArchitecture, match=r"decision 'l0\.k' is not in space 'layered' \(or not active"):
        layered.validate({"depth": 1, "l0.op": "pool", "l0.k": 3})
    with pytest.raises(InvalidArchitecture, match=r"decision 'l1\.op' is not in space 'layered'"):
        layered.validate({"depth": 1, "l0.op": "pool", "l1.op": "pool"})


def test_non_mapping_is_refused() -> None:
    with pytest.raises(InvalidArchitecture, match="an architecture must be a mapping of decision name to value"):
        flat.validate([("act", "relu")])  # type: ignore[arg-type]


def test_non_json_value_is_refused() -> None:
    with pytest.raises(InvalidArchitecture, match="an architecture must be JSON-able"):
        flat.validate({**_GOOD, "units": object()})


def test_bool_and_int_are_not_interchangeable() -> None:
    with pytest.raises(InvalidArchitecture, match="decision 'blocks' got True"):
        flat.validate({**_GOOD, "blocks": True})
    with pytest.raises(InvalidArchitecture, match=r"decision 'skip' got \[False, True\]"):
        flat.validate({**_GOOD, "skip": [False, True]})
    flag = _asking(choice=("flag", [False, True]))
    with pytest.raises(InvalidArchitecture, match="decision 'flag' got 1"):
        flag.validate({"flag": 1})


def test_an_integral_float_is_an_integer_value() -> None:
    # JSON readers may give 16.0 for 16; the canonical architecture has the int.
    assert flat.validate({**_GOOD, "units": 16.0}).arch["units"] == 16
    with pytest.raises(InvalidArchitecture, match=r"decision 'units' got 16\.5"):
        flat.validate({**_GOOD, "units": 16.5})


def test_refusal_is_repeated_from_the_cache() -> None:
    for _ in range(2):
        with pytest.raises(InvalidArchitecture, match="decision 'act' got 'elu'"):
            flat.validate({**_GOOD, "act": "elu"})


def test_build_refuses_before_building() -> None:
    with pytest.raises(InvalidArchitecture, match=r"decision 'l0\.k' is not in space"):
        layered.build({"depth": 1, "l0.op": "pool", "l0.k": 3})


# -- architectures ---------------------------------------------------------------------------------


def test_arch_is_immutable() -> None:
    arch = Arch(_GOOD)
    for mutate in (
        lambda: arch.__setitem__("act", "gelu"),
        lambda: arch.__delitem__("act"),
        lambda: arch.update(act="gelu"),
        lambda: arch.pop("act"),
        lambda: arch.popitem(),
        lambda: arch.setdefault("x", 1),
        lambda: arch.clear(),
    ):
        with pytest.raises(TypeError, match="Arch is immutable"):
            mutate()
    with pytest.raises(TypeError, match="Arch is immutable"):
        arch |= {"act": "gelu"}
    assert arch == _GOOD


def test_arch_is_hashable_and_picklable() -> None:
    a, b = Arch(_GOOD), Arch(dict(reversed(list(_GOOD.items()))))
    assert hash(a) == hash(b) and len({a, b}) == 1
    back = pickle.loads(pickle.dumps(a))
    assert isinstance(back, Arch) and back == a and back.key == a.key
    assert json.loads(json.dumps(a)) == a  # a plain JSON object


def test_arch_key_is_canonical() -> None:
    key = Arch(_GOOD).key
    assert Arch(dict(reversed(list(_GOOD.items())))).key == key  # order does not matter
    assert Arch({**_GOOD, "skip": (0, 1)}).key == key  # a tuple is a list
    assert arch_key(_GOOD) == key == arch_key(Arch(_GOOD))
    assert Arch({**_GOOD, "units": 16}).key != key
    assert Arch({"flag": True}).key != Arch({"flag": 1}).key
    assert Arch({**_GOOD, "skip": (0, 1)})["skip"] == [0, 1]


# -- sizes ---------------------------------------------------------------------------------------------


def test_size_is_exact_without_conditions() -> None:
    size = flat.size()
    assert size.exact and size.count == 3 * 4 * 2 * 3 and str(size) == "72"
    assert len({a.key for a in _enumerate(flat)}) == 72


def test_size_estimate_agrees_with_brute_force() -> None:
    archs = _enumerate(layered)
    assert len(archs) == len({a.key for a in archs}) == _LAYERED_SIZE
    for arch in archs:
        layered.validate(arch)
    size = layered.size(samples=20_000)
    # Knuth's estimator here has a relative standard deviation of ~0.8% at 20,000 samples.
    assert not size.exact and size.count == pytest.approx(_LAYERED_SIZE, rel=0.03)
    assert str(size).startswith("~")


def test_size_of_a_large_space_stays_exact() -> None:
    def fn(a: Chooser) -> None:
        for i in range(40):
            a.choice(f"d{i}", [0, 1, 2])

    size = _one(fn).size()
    assert size.exact and size.count == 3**40 and str(size) == f"{3**40:,}"


# -- context, describe, pickling ------------------------------------------------------------------


def test_bind_changes_the_context_and_leaves_the_space_alone() -> None:
    bound = flat.bind(num_classes=3)
    assert bound.build(_GOOD)["num_classes"] == 3
    assert flat.build(_GOOD)["num_classes"] == 10
    assert flat.build(_GOOD, num_classes=5)["num_classes"] == 5
    assert bound.name == flat.name and bound.decisions == flat.decisions


def test_context_that_changes_the_decisions_is_validated_with_it() -> None:
    @space(layers=1)
    def stack(a: Chooser, layers: int) -> list[int]:
        return [a.choice(f"w{i}", [8, 16]) for i in range(layers)]

    assert [d.name for d in stack.bind(layers=2).decisions] == ["w0", "w1"]
    assert stack.build({"w0": 8, "w1": 16}, layers=2) == [8, 16]
    with pytest.raises(InvalidArchitecture, match="decision 'w1' is not in space"):
        stack.build({"w0": 8, "w1": 16})
    with pytest.raises(InvalidArchitecture, match="has no value for decision 'w1'"):
        stack.build({"w0": 8}, layers=2)


def test_context_the_function_does_not_take_is_ignored() -> None:
    assert layered.bind(num_classes=3).build({"depth": 1, "l0.op": "pool"}) == [("pool", None)]


def test_describe_is_json() -> None:
    info = json.loads(json.dumps(layered.describe()))
    assert info["name"] == "layered" and info["conditional"] is True
    assert info["description"].startswith("A small conditional space")
    assert info["decisions"][0] == {
        "name": "depth",
        "kind": "integer",
        "options": [1, 2, 3],
        "low": 1,
        "high": 3,
        "log": False,
    }
    assert info["decisions"][1] == {"name": "l0.op", "kind": "choice", "options": ["conv", "pool"]}
    assert flat.describe()["decisions"][3]["options"] == [[0, 1], [0, 2], [1, 2]]


def test_decision_lookup() -> None:
    assert layered.decision("l2.k").options == (3, 5)
    with pytest.raises(InvalidArchitecture, match="decision 'nope' is not in space 'layered'"):
        layered.decision("nope")


def test_a_decorated_space_pickles() -> None:
    back = pickle.loads(pickle.dumps(layered.bind(extra=1)))
    assert back.name == "layered" and back.context == {"extra": 1}
    assert back.decisions == layered.decisions


# -- loading user spaces -----------------------------------------------------------------------------

_USER_FILE = """
from search_spaces import space, Space

@space(num_classes=4)
def decorated(a, num_classes):
    return (a.choice("w", [8, 16]), num_classes)

def plain(a, num_classes=2):
    return (a.integer("n", 1, 3), num_classes)

def factory():
    return Space(plain, name="made", context={"num_classes": 7})

def not_a_space():
    return 42

VALUE = 3
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_spaces.py"
    path.write_text(textwrap.dedent(_USER_FILE))
    return path


def test_load_a_decorated_space(user_file: Path) -> None:
    sp = load(f"{user_file}:decorated")
    assert sp.name == "decorated" and sp.build({"w": 16}) == (16, 4)


def test_load_a_plain_function(user_file: Path) -> None:
    sp = load(f"{user_file}:plain")
    assert sp.name == "plain" and [d.name for d in sp.decisions] == ["n"]
    assert sp.build({"n": 3}) == (3, 2)


def test_load_a_factory(user_file: Path) -> None:
    sp = load(f"{user_file}:factory")
    assert sp.name == "made" and sp.build({"n": 1}) == (1, 7)


def test_load_passes_a_space_through_and_knows_builtins() -> None:
    assert load(flat) is flat
    assert load("nb201").name == "nb201"


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match=r"space file '.*nowhere\.py' does not exist"):
        load(f"{tmp_path / 'nowhere.py'}:fn")


def test_load_refuses_a_missing_function(user_file: Path) -> None:
    with pytest.raises(SpaceError, match=r"space file '.*my_spaces\.py' defines no 'absent'"):
        load(f"{user_file}:absent")


def test_load_asks_for_the_function_name(user_file: Path) -> None:
    with pytest.raises(SpaceError, match="name the function, as in"):
        load(str(user_file))


def test_load_refuses_a_file_that_raises(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import search_spaces\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(SpaceError, match=r"space file '.*broken\.py' raised RuntimeError: no GPU here"):
        load(f"{path}:fn")


def test_load_refuses_what_is_not_a_space(user_file: Path) -> None:
    with pytest.raises(SpaceError, match=r"my_spaces\.py:VALUE' is not a space function or a Space"):
        load(f"{user_file}:VALUE")
    with pytest.raises(SpaceError, match="takes no arguments, so it must return a Space, got int"):
        load(f"{user_file}:not_a_space")


def test_load_refuses_an_unknown_builtin() -> None:
    with pytest.raises(SpaceError, match="unknown space 'resnet9000'; built-in spaces: cnn, cnn1d, mlp, nb201, resnet"):
        load("resnet9000")
    with pytest.raises(SpaceError, match=r"a space is a built-in name or 'path/to/file\.py:function'"):
        load("")


def test_a_loaded_space_pickles_into_a_new_process(user_file: Path) -> None:
    # Worker processes get the space by pickle: the file is loaded again there.
    blob = pickle.dumps(load(f"{user_file}:factory").bind(num_classes=9))
    code = "import pickle, sys; sp = pickle.loads(sys.stdin.buffer.read()); print(sp.name, sp.build({'n': 2}))"
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True, timeout=60)
    assert out.stdout.decode().split() == ["made", "(2,", "9)"]


# -- spaces are immutable and comparable -----------------------------------------------------------


def test_a_space_is_frozen() -> None:
    sp = flat.bind(num_classes=3)
    for field_name, value in [("name", "other"), ("fn", print), ("description", "x"), ("origin", "f.py:g")]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(sp, field_name, value)
    with pytest.raises(TypeError):
        sp.context["num_classes"] = 4  # type: ignore[index]
    assert sp.name == "flat" and sp.context == {"num_classes": 3} and sp.origin is None


def test_derived_defaults_and_origin_are_constructor_arguments() -> None:
    def fn(a: Chooser) -> None:
        """First line.

        More."""
        a.choice("x", [1, 2])

    sp = Space(fn, origin="spaces.py:fn")
    assert (sp.name, sp.description, sp.origin) == ("fn", "First line.", "spaces.py:fn")
    assert Space(fn, name="n", description="d").description == "d"
    with pytest.raises(SpaceError, match=r"origin must be 'path/to/file\.py:function' or None, got 3"):
        Space(fn, origin=3)  # type: ignore[arg-type]


def test_spaces_compare_by_value_and_hash_alike() -> None:
    assert flat.bind(num_classes=3) == flat.bind(num_classes=3)
    assert hash(flat.bind(num_classes=3)) == hash(flat.bind(num_classes=3))
    assert len({flat, flat.bind(), layered}) == 2
    assert flat.bind(num_classes=3) != flat
    assert flat != layered and flat != "flat"
    assert dataclasses.replace(flat, origin="a.py:flat") != flat


def test_bind_keeps_the_origin(user_file: Path) -> None:
    sp = load(f"{user_file}:decorated")
    assert sp.origin == f"{user_file.resolve()}:decorated"
    bound = sp.bind(num_classes=9)
    assert bound.origin == sp.origin and bound.context == {"num_classes": 9}


def test_load_leaves_the_files_space_alone(user_file: Path) -> None:
    import sys

    sp = load(f"{user_file}:decorated")
    module = sys.modules[f"_automl_user_space_{abs(hash(str(user_file.resolve())))}"]  # the loaded file
    assert module.decorated.origin is None and sp.origin is not None and sp.fn is module.decorated.fn


def test_pickle_keeps_the_origin(user_file: Path) -> None:
    sp = load(f"{user_file}:factory").bind(num_classes=9)
    back = pickle.loads(pickle.dumps(sp))
    assert back == sp and back.origin == sp.origin and back.build({"n": 2}) == (2, 9)


# -- range decisions: floats and log scales --------------------------------------------------------


@space
def tuned(a: Chooser) -> dict[str, Any]:
    """An architecture choice and training numbers, one of them on one branch only."""
    out = {"op": a.choice("op", ["conv", "pool"]), "lr": a.float("lr", 1e-4, 1e-1, log=True)}
    out["dropout"] = a.float("dropout", 0.0, 0.5)
    out["opt"] = a.choice("opt", ["sgd", "adam"])
    if out["opt"] == "sgd":
        out["momentum"] = a.float("momentum", 0.5, 0.99)
    out["batch"] = a.integer("batch", 16, 512, log=True)
    return out


_TUNED = {"op": "conv", "lr": 0.01, "dropout": 0.1, "opt": "sgd", "momentum": 0.9, "batch": 64}


def test_range_decisions_are_recorded() -> None:
    lr = tuned.decision("lr")
    assert (lr.kind, lr.options, lr.low, lr.high, lr.log, lr.ranged) == ("float", (), 1e-4, 1e-1, True, True)
    batch = tuned.decision("batch")
    assert (batch.kind, batch.low, batch.high, batch.log, batch.ranged, batch.cardinality) == (
        "integer",
        16,
        512,
        True,
        True,
        497,
    )
    assert not tuned.decision("op").ranged and tuned.decision("op").cardinality == 2
    assert tuned.build(_TUNED) == _TUNED
    assert tuned.decision("dropout").to_dict() == {
        "name": "dropout",
        "kind": "float",
        "options": [],
        "low": 0.0,
        "high": 0.5,
        "log": False,
    }
    assert json.loads(json.dumps(tuned.describe()))["decisions"][1]["log"] is True


def test_range_decisions_do_not_branch_discovery() -> None:
    # Conditional decisions come from choices only: "momentum" hangs off "opt", found by discovery.
    assert [d.name for d in tuned.decisions] == ["op", "lr", "dropout", "opt", "momentum", "batch"]
    assert tuned.conditional
    runs: list[int] = []
    sp = _one(lambda a: runs.append(a.float("x", 0.0, 1.0)))
    assert len(sp.decisions) == 1 and len(runs) == 1 and runs[0] == 0.5  # one run, at the middle


def test_size_of_a_continuous_space() -> None:
    size = tuned.size()
    assert size.continuous and not size.exact and size.count == float("inf") and str(size) == "continuous"
    logint = _one(lambda a: (a.integer("n", 1, 100, log=True), a.choice("x", [1, 2])))
    assert logint.size().exact and logint.size().count == 200 and not logint.size().continuous
    assert not flat.size().continuous


def test_range_values_are_validated() -> None:
    assert tuned.validate(_TUNED).arch == _TUNED
    assert tuned.validate({**_TUNED, "dropout": 0}).arch["dropout"] == 0.0  # an int is a float value
    assert tuned.validate({**_TUNED, "batch": 64.0}).arch["batch"] == 64
    for value in (0.2, 1e-5, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidArchitecture, match=r"decision 'lr' got .*; expected a value in \[0\.0001, 0\.1\]"):
            tuned.validate({**_TUNED, "lr": value})
    for value in ("0.01", None, True, [0.01]):
        with pytest.raises(InvalidArchitecture, match=r"decision 'lr' got .*; expected a number"):
            tuned.validate({**_TUNED, "lr": value})
    with pytest.raises(InvalidArchitecture, match=r"decision 'batch' got 64\.5; expected an integer"):
        tuned.validate({**_TUNED, "batch": 64.5})
    with pytest.raises(InvalidArchitecture, match=r"decision 'batch' got 1024; expected a value in \[16, 512\]"):
        tuned.validate({**_TUNED, "batch": 1024})
    with pytest.raises(InvalidArchitecture, match=r"no value for decision 'lr' \(range: \[0\.0001, 0\.1\]\)"):
        tuned.validate({"op": "conv"})


def test_sampled_ranges_are_in_bounds_and_json() -> None:
    for seed in range(200):
        arch = tuned.sample(seed)
        assert 1e-4 <= arch["lr"] <= 1e-1 and 0.0 <= arch["dropout"] <= 0.5 and 16 <= arch["batch"] <= 512
        assert isinstance(arch["batch"], int) and isinstance(arch["lr"], float)
        back = json.loads(json.dumps(arch))
        assert tuned.validate(back).arch.key == arch.key


def test_float_bounds_are_checked() -> None:
    with pytest.raises(SpaceError, match=r"`low < high` must hold for decision 'lr', but got low=0\.1, high=0\.01"):
        _asking(float=("lr", 0.1, 0.01)).sample(0)
    with pytest.raises(SpaceError, match=r"`low < high` must hold for decision 'lr', but got low=0\.1, high=0\.1"):
        _asking(float=("lr", 0.1, 0.1)).sample(0)
    with pytest.raises(SpaceError, match=r"`low > 0` must hold for decision 'lr' with log=True, but got low=0\.0"):
        _one(lambda a: a.float("lr", 0.0, 0.1, log=True)).sample(0)
    with pytest.raises(SpaceError, match=r"float 'lr': high must be a finite number, got inf"):
        _asking(float=("lr", 0.0, float("inf"))).sample(0)
    with pytest.raises(SpaceError, match="float 'lr': low must be a finite number, got '0'"):
        _asking(float=("lr", "0", 1.0)).sample(0)


def test_log_integer_bounds_are_checked() -> None:
    def log_int(*args: Any, **kw: Any) -> Space:
        return _one(lambda a: a.integer(*args, log=True, **kw))

    with pytest.raises(SpaceError, match=r"`low > 0` must hold for decision 'n' with log=True, but got low=0"):
        log_int("n", 0, 10).sample(0)
    with pytest.raises(SpaceError, match=r"`step == 1` must hold for decision 'n' with log=True, but got step=2"):
        log_int("n", 1, 10, 2).sample(0)
    with pytest.raises(SpaceError, match=r"integer 'n': `low <= high`"):
        log_int("n", 10, 1).sample(0)


def test_a_range_asked_twice_differently_is_refused() -> None:
    def fn(a: Chooser) -> None:
        a.float("lr", 0.0, 1.0)
        a.float("lr", 0.0, 1.0, log=False)  # the same: shared
        a.float("lr", 0.0, 2.0)

    with pytest.raises(SpaceError, match="decision 'lr' is asked twice with different options"):
        _one(fn).sample(0)


def test_unit_interval_round_trips() -> None:
    lr, batch = tuned.decision("lr"), tuned.decision("batch")
    assert lr.from_unit(0.0) == pytest.approx(1e-4) and lr.from_unit(1.0) == 1e-1
    assert lr.from_unit(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))  # the middle of a log range
    for v in range(16, 513):
        assert batch.from_unit(batch.to_unit(v)) == v
    assert batch.from_unit(0.0) == 16 and batch.from_unit(1.0) == 512
    for v in (1e-4, 3e-3, 0.1):
        assert lr.from_unit(lr.to_unit(v)) == pytest.approx(v)
    with pytest.raises(ValueError, match="decision 'op' has options, not a range"):
        tuned.decision("op").to_unit(0)


def test_bins_and_dict_round_trip() -> None:
    lr, batch = tuned.decision("lr"), tuned.decision("batch")
    assert lr.bin_edges(3) == pytest.approx((1e-4, 1e-3, 1e-2, 1e-1))  # one decade each
    assert [Decision.bin_of(v, lr.bin_edges(3)) for v in (1e-4, 5e-4, 2e-3, 0.05, 0.1)] == [0, 0, 1, 2, 2]
    assert batch.bin_edges(4) == (16, 38, 90, 215, 513)  # 16 * (513 / 16) ** (b / 4) floored: 38.07, 90.6, 215.6
    with pytest.raises(ValueError, match="`bins` must be a positive int, but got 0"):
        lr.bin_edges(0)
    for d in (*tuned.decisions, *flat.decisions):
        assert Decision.from_dict(json.loads(json.dumps(d.to_dict()))) == d
