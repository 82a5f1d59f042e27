"""Datasets for training evaluators: small, local, never downloaded.

Built-ins are ``digits`` (scikit-learn's 8x8 handwritten digits, shipped with the package) and
``mnist1d`` (generated on this machine from the ``mnist1d`` templates; its canonical 4,000/1,000
split). Any other data comes as an ``.npz`` file with ``x_train``, ``y_train``, ``x_val``, ``y_val``.

>>> from evaluators import datasets
>>> datasets.names()
['digits', 'mnist1d']
>>> d = datasets.load("digits")
>>> d
Dataset(name='digits', train=1437, val=360, input_shape=(1, 8, 8), num_classes=10)
>>> d.x_train.dtype, d.y_train.dtype, d.x_train.shape
(dtype('float32'), dtype('int64'), (1437, 1, 8, 8))
"""

from __future__ import annotations

import functools
import os
import random
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DatasetError", "load", "names"]

_NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val")


class DatasetError(ValueError):
    """A dataset cannot be loaded: unknown name, missing file, or arrays that do not fit together."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into train and validation arrays.

    ``x_*`` are float32 of shape ``(n, *input_shape)``; ``y_*`` are int64 labels in
    ``[0, num_classes)``. The arrays are made read-only: loaded datasets are cached and shared.
    Construction converts dtypes and checks that the fields agree (raising :class:`DatasetError`).
    """

    name: str
    x_train: np.ndarray  # (n_train, *input_shape) float32
    y_train: np.ndarray  # (n_train,) int64
    x_val: np.ndarray  # (n_val, *input_shape) float32
    y_val: np.ndarray  # (n_val,) int64
    input_shape: tuple[int, ...]
    num_classes: int

    def __post_init__(self) -> None:
        _check_arrays(repr(self.name), {k: getattr(self, k) for k in _NPZ_KEYS})
        shape = tuple(int(s) for s in self.input_shape)
        if self.x_train.shape[1:] != shape:
            raise DatasetError(
                f"dataset {self.name!r}: x_train rows have shape {self.x_train.shape[1:]}, but input_shape is {shape}"
            )
        k = int(self.num_classes)
        for split in ("train", "val"):
            y = getattr(self, f"y_{split}")
            if y.size and int(y.max()) >= k:
                raise DatasetError(
                    f"dataset {self.name!r}: y_{split} has label {int(y.max())}, "
                    f"but num_classes is {k} (labels must be in [0, {k}))"
                )
        for field in ("x_train", "x_val"):
            object.__setattr__(self, field, _frozen(getattr(self, field), np.float32))
        for field in ("y_train", "y_val"):
            object.__setattr__(self, field, _frozen(getattr(self, field), np.int64))
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "num_classes", k)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


def _frozen(a: np.ndarray, dtype: type) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=dtype)
    if out is a:
        out = out.copy()  # never freeze the caller's own array
    out.setflags(write=False)
    return out


def _check_arrays(where: str, arrays: Mapping[str, object]) -> None:
    """Raise :class:`DatasetError` naming the first problem; ``where`` names the dataset."""
    a: dict[str, np.ndarray] = {}
    for key in _NPZ_KEYS:
        value = arrays[key]
        if not isinstance(value, np.ndarray):
            raise DatasetError(f"dataset {where}: {key} must be a numpy array, got {type(value).__name__}")
        a[key] = value
    for split in ("train", "val"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"dataset {where}: x_{split} must be numeric, got dtype {x.dtype}")
        if x.ndim < 2:
            raise DatasetError(f"dataset {where}: x_{split} must have shape (n, *input_shape), got shape {x.shape}")
        if y.ndim != 1:
            raise DatasetError(f"dataset {where}: y_{split} must be 1-D labels, got shape {y.shape}")
        if y.dtype.kind not in "iu":
            raise DatasetError(
                f"dataset {where}: y_{split} must hold integer labels, got dtype {y.dtype} (use .astype(int))"
            )
        if len(x) != len(y):
            raise DatasetError(f"dataset {where}: x_{split} has {len(x)} rows but y_{split} has {len(y)}")
        if len(y) == 0:
            raise DatasetError(f"dataset {where}: the {split} split is empty")
        if int(y.min()) < 0:
            raise DatasetError(f"dataset {where}: y_{split} has label {int(y.min())}; labels must be >= 0")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DatasetError(f"dataset {where}: x_{split} contains NaN or inf")
    if a["x_train"].shape[1:] != a["x_val"].shape[1:]:
        raise DatasetError(
            f"dataset {where}: x_train rows have shape {a['x_train'].shape[1:]} but x_val rows {a['x_val'].shape[1:]}"
        )


# -- built-ins ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()  # bundled with scikit-learn: no download
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # pixel values 0..16 -> [0, 1]
    y = bunch.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, (1, 8, 8), 10)


@functools.lru_cache(maxsize=1)
def _mnist1d() -> Dataset:
    # make_dataset builds the data from templates on this machine. (mnist1d.get_dataset would try
    # to download a pickle first: never call it.) It seeds the global `random` and `np.random`
    # generators, so save and restore them around the call.
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())  # canonical arguments: 5,000 samples, seed 42
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x_train = raw["x"].astype(np.float32)[:, None, :]  # (n, 40) -> (n, 1, 40): one channel
    x_val = raw["x_test"].astype(np.float32)[:, None, :]
    return Dataset("mnist1d", x_train, raw["y"].astype(np.int64), x_val, raw["y_test"].astype(np.int64), (1, 40), 10)


_BUILTIN: dict[str, Callable[[int], Dataset]] = {
    "digits": _digits,
    "mnist1d": lambda seed: _mnist1d(),
}


def names() -> list[str]:
    """Names of the built-in datasets."""
    return sorted(_BUILTIN)


# -- files -------------------------------------------------------------------------------------


def _load_npz(path: Path) -> Dataset:
    where = repr(str(path))
    if not path.is_file():
        raise DatasetError(f"dataset file {where} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _NPZ_KEYS if k not in npz.files]
            if missing:
                raise DatasetError(f"dataset {where} lacks {', '.join(missing)}; an .npz needs {', '.join(_NPZ_KEYS)}")
            arrays = {k: npz[k] for k in _NPZ_KEYS}
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        # allow_pickle=False makes object arrays (e.g. strings of mixed type) a ValueError.
        raise DatasetError(f"dataset file {where} is not a readable .npz of numeric arrays ({e})") from e
    _check_arrays(where, arrays)
    num_classes = int(max(arrays["y_train"].max(), arrays["y_val"].max())) + 1
    return Dataset(
        path.stem,
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_val"],
        arrays["y_val"],
        tuple(arrays["x_train"].shape[1:]),
        num_classes,
    )


def load(name_or_path: str | os.PathLike[str], *, seed: int = 0) -> Dataset:
    """A built-in dataset by name, or one read from an ``.npz`` file.

    ``seed`` fixes the stratified 80/20 split of ``digits``; ``mnist1d`` is always the canonical
    dataset (generator seed 42, its own split) and an ``.npz`` brings its own split, so both
    ignore it. Built-ins are cached in-process. From an ``.npz``: ``input_shape`` is
    ``x_train.shape[1:]`` and ``num_classes`` is the largest label + 1; the name is the file's stem.

    Raises:
        DatasetError: unknown name, missing or unreadable file, missing keys, or arrays that do
            not fit together (the message names the problem).
    """
    if isinstance(name_or_path, str) and name_or_path in _BUILTIN:
        return _BUILTIN[name_or_path](seed)
    if isinstance(name_or_path, os.PathLike) or (
        isinstance(name_or_path, str) and (name_or_path.endswith(".npz") or os.sep in name_or_path)
    ):
        return _load_npz(Path(name_or_path))
    raise DatasetError(
        f"unknown dataset {name_or_path!r}; choose one of {', '.join(names())} or a path to an .npz file"
    )
