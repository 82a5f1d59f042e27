"""Datasets: built-ins (shapes, dtypes, splits, determinism, no network) and .npz files."""

from __future__ import annotations

import random
import socket
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluators import Dataset, DatasetError, datasets


def test_names() -> None:
    assert datasets.names() == ["digits", "mnist1d"]


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope'; choose one of digits, mnist1d or a path"):
        datasets.load("nope")


# -- digits ------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_split() -> None:
    d = datasets.load("digits")
    assert d.name == "digits" and d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_val.shape == (360, 1, 8, 8)  # 1797 = 80% + 20%
    assert d.y_train.shape == (1437,) and d.y_val.shape == (360,)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_val.dtype == np.float32 and d.y_val.dtype == np.int64
    assert min(d.x_train.min(), d.x_val.min()) == 0.0 and max(d.x_train.max(), d.x_val.max()) == 1.0
    # Stratified: each class keeps its share (within one sample) in the validation split.
    total = np.bincount(d.y_train, minlength=10) + np.bincount(d.y_val, minlength=10)
    assert np.all(np.abs(np.bincount(d.y_val, minlength=10) - 0.2 * total) <= 1)
    assert not d.x_train.flags.writeable and not d.y_val.flags.writeable
    assert repr(d) == "Dataset(name='digits', train=1437, val=360, input_shape=(1, 8, 8), num_classes=10)"


def test_digits_is_deterministic_per_seed() -> None:
    first = datasets.load("digits")
    datasets._digits.cache_clear()
    again = datasets.load("digits", seed=0)
    assert again is not first
    for key in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(first, key), getattr(again, key))
    other = datasets.load("digits", seed=1)
    assert other.x_train.shape == first.x_train.shape
    assert not np.array_equal(other.y_train, first.y_train)


# -- mnist1d -----------------------------------------------------------------------------------


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_mnist1d_is_built_locally_and_deterministic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_network(monkeypatch)
    monkeypatch.chdir(tmp_path)  # mnist1d.get_dataset would write ./mnist1d_data.pkl: catch that too
    datasets._mnist1d.cache_clear()
    random.seed(7)
    np.random.seed(7)
    expected_py, expected_np = random.random(), np.random.random()
    random.seed(7)
    np.random.seed(7)

    d = datasets.load("mnist1d")

    assert (random.random(), np.random.random()) == (expected_py, expected_np)  # global generators untouched
    assert list(tmp_path.iterdir()) == []
    assert d.name == "mnist1d" and d.input_shape == (1, 40) and d.num_classes == 10
    assert d.x_train.shape == (4000, 1, 40) and d.x_val.shape == (1000, 1, 40)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert set(np.unique(d.y_train)) == set(range(10)) and set(np.unique(d.y_val)) == set(range(10))
    assert datasets.load("mnist1d") is d  # cached in-process
    datasets._mnist1d.cache_clear()
    again = datasets.load("mnist1d")
    np.testing.assert_array_equal(again.x_train, d.x_train)
    np.testing.assert_array_equal(again.y_val, d.y_val)


# -- .npz files --------------------------------------------------------------------------------


def _arrays(n_train: int = 10, n_val: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.normal(size=(n_train, 2, 3)),  # float64 on purpose: converted to float32
        "y_train": np.arange(n_train, dtype=np.int32) % 3,
        "x_val": rng.normal(size=(n_val, 2, 3)),
        "y_val": np.arange(n_val, dtype=np.int32) % 2,
    }


def _save(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_round_trip(tmp_path: Path) -> None:
    arrays = _arrays()
    path = _save(tmp_path / "toy.npz", **arrays)
    for spec in (path, str(path)):
        d = datasets.load(spec)
        assert d.name == "toy" and d.input_shape == (2, 3) and d.num_classes == 3  # largest label 2, + 1
        assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
        np.testing.assert_array_equal(d.x_train, arrays["x_train"].astype(np.float32))
        np.testing.assert_array_equal(d.y_val, arrays["y_val"])


def _with(**changes: Any) -> dict[str, Any]:
    arrays: dict[str, Any] = _arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (_with(y_val=None), r"lacks y_val; an \.npz needs x_train, y_train, x_val, y_val"),
        (_with(y_train=np.zeros(9, dtype=np.int64)), r"x_train has 10 rows but y_train has 9"),
        (_with(y_val=np.zeros(4)), r"y_val must hold integer labels, got dtype float64"),
        (_with(y_val=np.array([0, 1, -1, 0])), r"y_val has label -1; labels must be >= 0"),
        (_with(y_train=np.zeros((10, 1), dtype=np.int64)), r"y_train must be 1-D labels, got shape \(10, 1\)"),
        (_with(x_train=np.array([["a"]] * 10)), r"x_train must be numeric, got dtype <U1"),
        (_with(x_train=np.zeros(10)), r"x_train must have shape \(n, \*input_shape\), got shape \(10,\)"),
        (_with(x_val=np.zeros((4, 3, 2))), r"x_train rows have shape \(2, 3\) but x_val rows \(3, 2\)"),
        (_with(x_val=np.full((4, 2, 3), np.nan)), r"x_val contains NaN or inf"),
        (_with(x_val=np.zeros((0, 2, 3)), y_val=np.zeros(0, dtype=np.int64)), r"the val split is empty"),
        (_with(x_train=np.array([[1, "a"]] * 10, dtype=object)), r"is not a readable \.npz of numeric arrays"),
    ],
    ids=[
        "missing-key",
        "length-mismatch",
        "float-labels",
        "negative-label",
        "labels-2d",
        "x-strings",
        "x-1d",
        "row-shapes-differ",
        "x-nan",
        "empty-val",
        "x-object",
    ],
)
def test_invalid_npz(tmp_path: Path, arrays: dict[str, Any], match: str) -> None:
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=match):
        datasets.load(path)


def test_npz_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"dataset file '.*nothing\.npz' does not exist"):
        datasets.load(tmp_path / "nothing.npz")


def test_npz_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match=r"junk\.npz' is not a readable \.npz"):
        datasets.load(path)


def test_dataset_checks_its_fields() -> None:
    a = _arrays()
    x_train, y_train, x_val, y_val = a["x_train"], a["y_train"], a["x_val"], a["y_val"]
    with pytest.raises(DatasetError, match=r"x_train rows have shape \(2, 3\), but input_shape is \(6,\)"):
        Dataset("toy", x_train, y_train, x_val, y_val, (6,), 3)
    with pytest.raises(DatasetError, match=r"y_train has label 2, but num_classes is 2"):
        Dataset("toy", x_train, y_train, x_val, y_val, (2, 3), 2)
    with pytest.raises(DatasetError, match=r"x_val must be a numpy array, got list"):
        Dataset("toy", x_train, y_train, x_val.tolist(), y_val, (2, 3), 3)  # type: ignore[arg-type]
    d = Dataset("toy", x_train, y_train, x_val, y_val, [2, 3], 3)  # type: ignore[arg-type]
    assert d.input_shape == (2, 3) and d.x_train.dtype == np.float32
    assert x_train.flags.writeable  # the caller's arrays are copied, not frozen
