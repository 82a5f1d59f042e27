"""Datasets for training evaluators: small, local, never downloaded.

Every :class:`Dataset` has three splits: the search trains on ``train`` and selects on ``val``;
``test`` is held out for the final report and never shown to the search. A split the data does
not bring is split off the *training* rows, stratified by label, taking 20% of them: the test
split always with seed 0 (it never moves), the validation split with ``load``'s ``seed``
(default 0). So data with only a training split becomes 60/20/20, and an ``.npz`` with
train + val keeps the val it brings and gives up 20% of its train as test.

Sources, by ``load(spec)``:

- ``"digits"``: scikit-learn's 8x8 handwritten digits (bundled with the package), 1,797 images
  split 1,077/360/360, stratified; input ``(1, 8, 8)``.
- ``"mnist1d"``: generated on this machine from the ``mnist1d`` templates (canonical arguments);
  its canonical 1,000 test samples are the test split and validation is 800 of its 4,000 training
  samples (3,200/800/1,000); input ``(1, 40)``.
- ``"file.npz"``: ``x_train``, ``y_train``, optionally ``x_val``/``y_val`` and ``x_test``/``y_test``;
  input ``x_train.shape[1:]``, ``num_classes`` the largest label + 1. A file over
  ``AUTOML_MMAP_BYTES`` (512 MiB) saved uncompressed is memory-mapped (:mod:`evaluators._data_npz`).
- ``"table.csv", target="COLUMN"``: one-hot text columns and standardized numeric ones, fitted on
  the training rows only; an optional ``split`` column (:mod:`evaluators._data_tabular`).
- ``"folder/", image_size=32``: one subfolder of images per class, or ``train/``, ``val/``,
  ``test/`` subfolders each holding class folders (:mod:`evaluators._data_images`).
- ``"file.py:fn"``: ``fn()`` returns the arrays (:mod:`evaluators._data_python`).

Bad input raises :class:`DatasetError` with one line naming the file, column or label.

>>> import tempfile, pathlib
>>> import numpy as np
>>> from evaluators import datasets
>>> datasets.names()
['digits', 'mnist1d']
>>> d = datasets.load("digits")
>>> d
Dataset(name='digits', train=1077, val=360, test=360, input_shape=(1, 8, 8), num_classes=10)
>>> d.x_train.dtype, d.y_train.dtype, d.x_test.shape
(dtype('float32'), dtype('int64'), (360, 1, 8, 8))
>>> x, y = d.train_val()  # for the final retraining
>>> x.shape
(1437, 1, 8, 8)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp) / "toy.npz"
...     rng = np.random.default_rng(0)
...     np.savez(path, x_train=rng.normal(size=(50, 4)), y_train=np.arange(50) % 3,
...              x_val=rng.normal(size=(10, 4)), y_val=np.arange(10) % 3)
...     datasets.load(path)
Dataset(name='toy', train=40, val=10, test=10, input_shape=(4,), num_classes=3)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp) / "make.py"
...     _ = path.write_text("import numpy as np\\n"
...                         "def blobs():\\n"
...                         "    return {'x_train': np.eye(30)[:, :5], 'y_train': np.arange(30) % 2}\\n")
...     datasets.load(f"{path}:blobs")
Dataset(name='make:blobs', train=18, val=6, test=6, input_shape=(5,), num_classes=2)
"""

from __future__ import annotations

import functools
import os
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np

from evaluators._data_core import HELD_FRACTION, TEST_SEED, Dataset, DatasetError, from_arrays

__all__ = ["HELD_FRACTION", "TEST_SEED", "Dataset", "DatasetError", "from_arrays", "load", "names"]


# -- built-ins ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()  # bundled with scikit-learn: no download
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # pixel values 0..16 -> [0, 1]
    return from_arrays("digits", x, bunch.target.astype(np.int64), seed=seed, num_classes=10)


@functools.lru_cache(maxsize=1)
def _mnist1d_raw() -> dict[str, np.ndarray]:
    # make_dataset builds the data from templates on this machine. (mnist1d.get_dataset would try
    # to download a pickle first: never call it.) It seeds the global `random` and `np.random`
    # generators, so save and restore them around the call.
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        return make_dataset(get_dataset_args())  # canonical arguments: 5,000 samples, seed 42
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@functools.lru_cache(maxsize=8)
def _mnist1d(seed: int) -> Dataset:
    raw = _mnist1d_raw()
    return from_arrays(
        "mnist1d",
        raw["x"].astype(np.float32)[:, None, :],  # (n, 40) -> (n, 1, 40): one channel
        raw["y"].astype(np.int64),
        x_test=raw["x_test"].astype(np.float32)[:, None, :],  # the canonical 1,000
        y_test=raw["y_test"].astype(np.int64),
        seed=seed,
        num_classes=10,
    )


_BUILTIN: dict[str, Callable[[int], Dataset]] = {"digits": _digits, "mnist1d": _mnist1d}


def names() -> list[str]:
    """Names of the built-in datasets."""
    return sorted(_BUILTIN)


# -- files -------------------------------------------------------------------------------------

_FORMATS = "an .npz or .csv file, an image folder, or 'file.py:function'"
_CACHE_SIZE = 8
_cache: OrderedDict[Hashable, Dataset] = OrderedDict()  # (kind, path, fingerprint, options) -> data
_cache_lock = threading.Lock()


def _kind(text: str) -> tuple[str, Path]:
    """("npz" | "csv" | "images" | "function", the file or folder) for a spec that is not a name."""
    path_text, colon, _ = text.rpartition(":")
    if colon and path_text.endswith(".py"):
        return "function", Path(path_text)
    path = Path(text)
    if text.lower().endswith(".npz"):
        return "npz", path
    if text.lower().endswith(".csv"):
        return "csv", path
    if path.is_dir():
        return "images", path
    if not path.exists():
        raise DatasetError(f"dataset file {text!r} does not exist")
    raise DatasetError(f"dataset file {text!r} is not a format automl reads; give {_FORMATS}")


def _fingerprint(kind: str, path: Path) -> Hashable:
    """What changes when the data on disk changes (as far as ``stat`` can tell)."""
    if kind != "images":
        st = path.stat()
        return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
    stats = []
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            stats.append((os.path.relpath(os.path.join(folder, name), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(stats))


def _load_file(kind: str, text: str, path: Path, seed: int, target: str | None, image_size: int | None) -> Dataset:
    if kind == "npz":
        from evaluators._data_npz import load_npz

        return load_npz(path, seed)
    if kind == "csv":
        from evaluators._data_tabular import load_csv

        return load_csv(path, target, seed)
    if kind == "images":
        from evaluators._data_images import load_folder

        return load_folder(path, image_size, seed)
    from evaluators._data_python import load_function

    return load_function(text, seed)


def load(
    name_or_path: str | os.PathLike[str],
    *,
    seed: int = 0,
    target: str | None = None,
    image_size: int | None = None,
) -> Dataset:
    """A built-in dataset by name, or one read from a file, folder or function (see the module).

    Args:
        name_or_path: ``"digits"``, ``"mnist1d"``, a path to an ``.npz`` or ``.csv`` file or an
            image folder, or ``"path/to/file.py:function"``.
        seed: draws the validation split where one is split off the training rows (the test
            split is always drawn with seed 0). Other splits are as given.
        target: the CSV column holding the labels (default: a column named ``target`` or
            ``label``). Only for ``.csv``.
        image_size: images are resized to ``image_size`` x ``image_size`` (default 32). Only for
            image folders.

    Datasets are cached in-process: built-ins by seed, the others by path, options, seed and
    the files' size and modification times (for ``file.py:fn``, the ``.py`` file's: ``fn`` runs
    once per version of its file); the same request returns the same object.

    Raises:
        DatasetError: unknown name, missing or unreadable file, missing keys or columns, or
            arrays that do not fit together (the message names the problem).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DatasetError(f"a dataset is a name or a path, got {type(name_or_path).__name__}")
    if isinstance(name_or_path, str) and name_or_path in _BUILTIN:
        _refuse_options(repr(name_or_path), "", target, image_size)
        return _BUILTIN[name_or_path](seed)
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and not any(c in text for c in ("/", os.sep, ".")) and not Path(text).exists():
        raise DatasetError(f"unknown dataset {text!r}; choose one of {', '.join(names())} or a path to {_FORMATS}")
    kind, path = _kind(text)
    _refuse_options(repr(text), kind, target, image_size)
    if kind != "images" and not path.is_file():
        raise DatasetError(f"dataset file {str(path)!r} does not exist")
    try:
        function = text.rpartition(":")[2] if kind == "function" else ""
        key = (kind, str(path.resolve()), function, _fingerprint(kind, path), seed, target, image_size)
    except OSError as e:
        raise DatasetError(f"dataset {text!r} cannot be read ({e})") from e
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data = _load_file(kind, text, path, seed, target, image_size)
    with _cache_lock:
        _cache[key] = data
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return data


def _refuse_options(where: str, kind: str, target: str | None, image_size: int | None) -> None:
    if target is not None and kind != "csv":
        raise DatasetError(f"target= applies to .csv files, not to dataset {where}")
    if image_size is not None and kind != "images":
        raise DatasetError(f"image_size= applies to image folders, not to dataset {where}")
