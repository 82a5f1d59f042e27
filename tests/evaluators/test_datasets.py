"""Datasets: built-ins (shapes, dtypes, three splits, determinism, no network), .npz files, the
Dataset record, the split rule and the cache. Formats with their own module: tests/evaluators/test_data_*.py."""

from __future__ import annotations

import doctest
import importlib
import pickle
import random
import socket
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluators import Dataset, DatasetError, datasets
from evaluators._data_core import stratified_split


def test_names() -> None:
    assert datasets.names() == ["digits", "mnist1d"]


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope'; choose one of digits, mnist1d or a path"):
        datasets.load("nope")


@pytest.mark.parametrize(
    ("spec", "options", "match"),
    [
        ("digits", {"target": "y"}, r"target= applies to \.csv files, not to dataset 'digits'"),
        ("digits", {"image_size": 8}, r"image_size= applies to image folders, not to dataset 'digits'"),
        ("missing/data.txt", {}, r"dataset file 'missing/data\.txt' does not exist"),
        ("missing.csv", {}, r"dataset file 'missing\.csv' does not exist"),
    ],
)
def test_refused_specs_and_options(spec: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        datasets.load(spec, **options)


def test_unknown_file_format(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("1 2 3\n")
    with pytest.raises(DatasetError, match=r"data\.txt' is not a format automl reads; give an \.npz or \.csv file"):
        datasets.load(tmp_path / "data.txt")


@pytest.mark.parametrize(
    "module", ["evaluators._data_core", "evaluators._data_tabular", "evaluators._data_images", "evaluators.datasets"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- digits ------------------------------------------------------------------------------------


def _rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x}


def test_digits_shapes_dtypes_and_splits() -> None:
    d = datasets.load("digits")
    assert d.name == "digits" and d.input_shape == (1, 8, 8) and d.num_classes == 10
    sizes = {s: len(getattr(d, f"y_{s}")) for s in ("train", "val", "test")}
    assert sizes == {"train": 1077, "val": 360, "test": 360}  # 1797 = 60/20/20; val as large as before
    for s in ("train", "val", "test"):
        x, y = getattr(d, f"x_{s}"), getattr(d, f"y_{s}")
        assert x.shape == (sizes[s], 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
        assert not x.flags.writeable and not y.flags.writeable
    assert min(d.x_train.min(), d.x_val.min()) == 0.0 and max(d.x_train.max(), d.x_val.max()) == 1.0
    # Stratified: each class gives its 20% share (within one sample) to val and to test.
    total = sum(np.bincount(getattr(d, f"y_{s}"), minlength=10) for s in ("train", "val", "test"))
    for s in ("val", "test"):
        assert np.all(np.abs(np.bincount(getattr(d, f"y_{s}"), minlength=10) - 0.2 * total) <= 1)
    assert repr(d) == "Dataset(name='digits', train=1077, val=360, test=360, input_shape=(1, 8, 8), num_classes=10)"


def test_digits_splits_do_not_overlap_and_cover_the_data() -> None:
    from sklearn.datasets import load_digits

    d = datasets.load("digits")
    train, val, test = _rows(d.x_train), _rows(d.x_val), _rows(d.x_test)
    # digits has a few duplicate images; compare the multiset of all rows instead of sets alone.
    everything = (load_digits().data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    assert sorted(_rows(np.concatenate([d.x_train, d.x_val, d.x_test]))) == sorted(_rows(everything))
    duplicates = len(everything) - len(_rows(everything))
    assert len(train & val) + len(train & test) + len(val & test) <= duplicates


def test_digits_is_deterministic_per_seed_and_its_test_split_never_moves() -> None:
    first = datasets.load("digits")
    datasets._digits.cache_clear()
    again = datasets.load("digits", seed=0)
    assert again is not first
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, key), getattr(again, key))
    other = datasets.load("digits", seed=1)
    assert other.x_train.shape == first.x_train.shape
    assert not np.array_equal(other.y_train, first.y_train)  # another validation split...
    np.testing.assert_array_equal(other.x_test, first.x_test)  # ...but the same test split
    assert datasets.load("digits", seed=1) is other  # cached per seed


def test_train_val_concatenates() -> None:
    d = datasets.load("digits")
    x, y = d.train_val()
    assert x.shape == (1437, 1, 8, 8) and y.shape == (1437,)
    np.testing.assert_array_equal(x[: len(d.x_train)], d.x_train)
    np.testing.assert_array_equal(y[len(d.y_train) :], d.y_val)


# -- mnist1d -----------------------------------------------------------------------------------


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_mnist1d_is_built_locally_with_its_canonical_test_split(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mnist1d.data import get_dataset_args, make_dataset

    _no_network(monkeypatch)
    monkeypatch.chdir(tmp_path)  # mnist1d.get_dataset would write ./mnist1d_data.pkl: catch that too
    datasets._mnist1d.cache_clear()
    datasets._mnist1d_raw.cache_clear()
    random.seed(7)
    np.random.seed(7)
    expected_py, expected_np = random.random(), np.random.random()
    random.seed(7)
    np.random.seed(7)

    d = datasets.load("mnist1d")

    assert (random.random(), np.random.random()) == (expected_py, expected_np)  # global generators untouched
    assert list(tmp_path.iterdir()) == []
    assert d.name == "mnist1d" and d.input_shape == (1, 40) and d.num_classes == 10
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (3200, 800, 1000)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert all(set(np.unique(getattr(d, f"y_{s}"))) == set(range(10)) for s in ("train", "val", "test"))
    assert datasets.load("mnist1d") is d  # cached in-process
    # An independent build (also shows the generator is deterministic): test is the canonical 1,000,
    # and train + val are the canonical 4,000 training samples.
    raw = make_dataset(get_dataset_args())
    np.testing.assert_array_equal(d.x_test[:, 0, :], raw["x_test"].astype(np.float32))
    np.testing.assert_array_equal(d.y_test, raw["y_test"])
    x, y = d.train_val()
    order = np.lexsort(x[:, 0, :].T)
    expected = np.lexsort(raw["x"].astype(np.float32).T)
    np.testing.assert_array_equal(x[order, 0, :], raw["x"].astype(np.float32)[expected])
    np.testing.assert_array_equal(y[order], raw["y"][expected])


# -- the split rule ----------------------------------------------------------------------------


def test_stratified_split_keeps_every_class_in_train() -> None:
    y = np.array([0] * 10 + [1] * 5 + [2] * 1 + [3] * 2)
    kept, held = stratified_split(y, 4, seed=0)
    assert len(held) == 4 and sorted(np.concatenate([kept, held]).tolist()) == list(range(len(y)))
    assert set(y[held]) <= set(y[kept]) and 2 in y[kept]  # the single 2 stays in train
    counts = np.bincount(y[held], minlength=4)
    assert counts[0] == 2 and counts[1] == 1 and counts[2] == 0  # 10*4/18=2.2, 5*4/18=1.1
    np.testing.assert_array_equal(stratified_split(y, 4, seed=0)[1], held)  # deterministic


def test_from_arrays_fills_missing_splits() -> None:
    x, y = np.arange(100, dtype=np.float32).reshape(50, 2), np.arange(50) % 5
    d = datasets.from_arrays("toy", x, y)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (30, 10, 10)
    assert _rows(d.x_train).isdisjoint(_rows(d.x_val)) and _rows(d.x_val).isdisjoint(_rows(d.x_test))
    given_val = datasets.from_arrays("toy", x, y, x[:5], y[:5])
    assert (len(given_val.y_train), len(given_val.y_val), len(given_val.y_test)) == (40, 5, 10)
    np.testing.assert_array_equal(given_val.x_val, x[:5])
    # The test split never depends on the seed; the validation split does.
    np.testing.assert_array_equal(datasets.from_arrays("toy", x, y, seed=3).x_test, d.x_test)
    assert not np.array_equal(datasets.from_arrays("toy", x, y, seed=3).x_val, d.x_val)


def test_from_arrays_refuses_what_cannot_be_split() -> None:
    with pytest.raises(DatasetError, match=r"cannot split a test split off 3 training rows \(every class has a single"):
        datasets.from_arrays("toy", np.zeros((3, 2)), np.arange(3))
    with pytest.raises(DatasetError, match=r"dataset 'toy' has x_val but lacks y_val"):
        datasets.from_arrays("toy", np.zeros((3, 2)), np.arange(3), x_val=np.zeros((1, 2)))


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


def test_npz_round_trip_with_three_splits(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays.update(x_test=arrays["x_val"][:3] + 1, y_test=np.array([0, 1, 2]))
    path = _save(tmp_path / "toy.npz", **arrays)
    for spec in (path, str(path)):
        d = datasets.load(spec)
        assert d.name == "toy" and d.input_shape == (2, 3) and d.num_classes == 3  # largest label 2, + 1
        assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
        for key, value in arrays.items():
            np.testing.assert_array_equal(getattr(d, key), value.astype(getattr(d, key).dtype))


def test_npz_without_test_splits_it_off_train_and_keeps_val(tmp_path: Path) -> None:
    arrays = _arrays(n_train=30)
    d = datasets.load(_save(tmp_path / "toy.npz", **arrays))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (24, 4, 6)  # 20% of the 30 training rows
    np.testing.assert_array_equal(d.x_val, arrays["x_val"].astype(np.float32))
    train = _rows(arrays["x_train"].astype(np.float32))
    assert _rows(d.x_test) <= train and _rows(d.x_train) | _rows(d.x_test) == train
    assert np.all(np.bincount(d.y_test, minlength=3) == 2)  # stratified: 10 rows per class -> 2 each


def test_npz_with_only_train(tmp_path: Path) -> None:
    arrays = _arrays(n_train=30)
    d = datasets.load(_save(tmp_path / "only.npz", x_train=arrays["x_train"], y_train=arrays["y_train"]))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (18, 6, 6)


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
        (_with(y_train=None), r"lacks y_train; an \.npz needs x_train, y_train \(and optionally x_val"),
        (_with(y_val=None), r"has x_val but lacks y_val"),
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
        (
            _with(x_test=np.zeros((2, 2, 3)), y_test=np.array([0, 7])),
            r"the test split has labels the training split lacks: 7",
        ),
        (_with(y_val=np.array([0, 1, 5, 0])), r"the val split has labels the training split lacks: 5"),
    ],
    ids=[
        "missing-key",
        "half-a-split",
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
        "test-label-unseen",
        "val-label-unseen",
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


def test_files_are_cached_until_they_change(tmp_path: Path) -> None:
    path = _save(tmp_path / "toy.npz", **_arrays(n_train=30))
    d = datasets.load(path)
    assert datasets.load(str(path)) is d and datasets.load(path, seed=1) is not d
    _save(path, **_arrays(n_train=40))  # another size: the fingerprint changes
    assert len(datasets.load(path).y_train) == 32


# -- the Dataset record ------------------------------------------------------------------------


def test_dataset_checks_its_fields() -> None:
    a = _arrays()
    x_train, y_train, x_val, y_val = a["x_train"], a["y_train"], a["x_val"], a["y_val"]
    test = {"x_test": x_val, "y_test": y_val}
    with pytest.raises(DatasetError, match=r"x_train rows have shape \(2, 3\), but input_shape is \(6,\)"):
        Dataset("toy", x_train, y_train, x_val, y_val, (6,), 3, **test)
    with pytest.raises(DatasetError, match=r"y_train has label 2, but num_classes is 2"):
        Dataset("toy", x_train, y_train, x_val, y_val, (2, 3), 2, **test)
    with pytest.raises(DatasetError, match=r"x_val must be a numpy array, got list"):
        Dataset("toy", x_train, y_train, x_val.tolist(), y_val, (2, 3), 3, **test)  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=r"the test split is empty"):
        Dataset("toy", x_train, y_train, x_val, y_val, (2, 3), 3, x_test=x_val[:0], y_test=y_val[:0])
    with pytest.raises(DatasetError, match=r"2 class names for num_classes=3"):
        Dataset("toy", x_train, y_train, x_val, y_val, (2, 3), 3, **test, classes=("a", "b"))
    with pytest.raises(TypeError, match=r"x_test"):
        Dataset("toy", x_train, y_train, x_val, y_val, (2, 3), 3)  # type: ignore[call-arg]
    with pytest.raises(DatasetError, match=r"test split has labels the training split lacks: 2 \('c'\)"):
        lacks_2 = y_train < 2
        names = ("a", "b", "c")
        Dataset(
            "toy",
            x_train[lacks_2],
            y_train[lacks_2],
            x_val,
            y_val,
            (2, 3),
            3,
            x_test=x_train,
            y_test=y_train,
            classes=names,
        )
    d = Dataset("toy", x_train, y_train, x_val, y_val, [2, 3], 3, **test)  # type: ignore[arg-type]
    assert d.input_shape == (2, 3) and d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert x_train.flags.writeable  # the caller's arrays are copied, not frozen
    assert repr(d) == "Dataset(name='toy', train=10, val=4, test=4, input_shape=(2, 3), num_classes=3)"
    copy = pickle.loads(pickle.dumps(d))
    assert repr(copy) == repr(d) and not copy.x_test.flags.writeable
    np.testing.assert_array_equal(copy.x_test, d.x_test)
