"""The :class:`Dataset` record, its checks, and the rule that completes missing splits.

Every dataset has three splits. The search trains on ``train`` and selects on ``val``; ``test`` is
held out for the final report and never shown to the search. A split the data does not bring is
split off the *training* rows, stratified by label, each taking ``HELD_FRACTION`` (20%) of the
training rows as given: the test split first, always with seed ``TEST_SEED`` (0) so it never moves,
then the validation split with the caller's seed. Train-only data ends up 60/20/20; train + val
data 80/20 of its train (val stays what was given); train + test data 80/20 of its train.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["HELD_FRACTION", "TEST_SEED", "Dataset", "DatasetError", "complete_splits", "from_arrays"]

SPLITS = ("train", "val", "test")
TEST_SEED = 0  # the test split is drawn once, with this seed, whatever seed the search uses
HELD_FRACTION = 0.2  # a missing val or test split takes this share of the training rows as given
_FINITE_CHUNK = 1 << 22  # elements checked at a time: a memory-mapped array is never read whole


class DatasetError(ValueError):
    """A dataset cannot be loaded: unknown name, missing file, or arrays that do not fit together."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into train, validation and test arrays.

    ``x_*`` are float32 of shape ``(n, *input_shape)``; ``y_*`` are int64 labels in
    ``[0, num_classes)``. The arrays are read-only: loaded datasets are cached and shared (a large
    ``.npz`` may give ``np.memmap`` arrays). Every split is non-empty, and the validation and test
    labels all occur in the training split. ``classes`` names the labels when the data has names
    (CSV targets, image folders), else it is empty. Construction converts dtypes and checks that
    the fields agree (raising :class:`DatasetError`). To fill in missing splits use
    :func:`from_arrays`.
    """

    name: str
    x_train: np.ndarray  # (n_train, *input_shape) float32
    y_train: np.ndarray  # (n_train,) int64
    x_val: np.ndarray  # (n_val, *input_shape) float32: the search selects on this
    y_val: np.ndarray  # (n_val,) int64
    input_shape: tuple[int, ...]
    num_classes: int
    x_test: np.ndarray = field(kw_only=True)  # (n_test, *input_shape) float32: never seen by the search
    y_test: np.ndarray = field(kw_only=True)  # (n_test,) int64
    classes: tuple[str, ...] = field(default=(), kw_only=True)  # label -> name, or () when unnamed

    def __post_init__(self) -> None:
        where = repr(self.name)
        check_arrays(where, {k: getattr(self, k) for k in _KEYS})
        shape = tuple(int(s) for s in self.input_shape)
        if self.x_train.shape[1:] != shape:
            raise DatasetError(
                f"dataset {where}: x_train rows have shape {self.x_train.shape[1:]}, but input_shape is {shape}"
            )
        k = int(self.num_classes)
        classes = tuple(str(c) for c in self.classes)
        if classes and len(classes) != k:
            raise DatasetError(f"dataset {where}: {len(classes)} class names for num_classes={k}")
        for split in SPLITS:
            y = getattr(self, f"y_{split}")
            if int(y.max()) >= k:
                raise DatasetError(
                    f"dataset {where}: y_{split} has label {int(y.max())}, "
                    f"but num_classes is {k} (labels must be in [0, {k}))"
                )
        seen = np.unique(self.y_train)
        for split in ("val", "test"):
            unseen = np.setdiff1d(np.unique(getattr(self, f"y_{split}")), seen)
            if unseen.size:
                named = ", ".join(f"{int(u)} ({classes[int(u)]!r})" if classes else str(int(u)) for u in unseen)
                raise DatasetError(f"dataset {where}: the {split} split has labels the training split lacks: {named}")
        for split in SPLITS:
            object.__setattr__(self, f"x_{split}", _frozen(getattr(self, f"x_{split}"), np.float32))
            object.__setattr__(self, f"y_{split}", _frozen(getattr(self, f"y_{split}"), np.int64))
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "num_classes", k)
        object.__setattr__(self, "classes", classes)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickle does not keep the write flag: the arrays of an unpickled dataset are read-only too.
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, key, value)

    def train_val(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y): the training and validation rows together, for a final retraining (new arrays)."""
        return np.concatenate([self.x_train, self.x_val]), np.concatenate([self.y_train, self.y_val])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


_KEYS = tuple(f"{xy}_{split}" for split in SPLITS for xy in "xy")  # x_train, y_train, x_val, ...


def _frozen(a: np.ndarray, dtype: type) -> np.ndarray:
    if isinstance(a, np.memmap) and a.dtype == dtype and a.flags.c_contiguous and not a.flags.writeable:
        return a  # a read-only memory map of the right dtype stays on disk
    out = np.ascontiguousarray(a, dtype=dtype)
    if out is a or np.may_share_memory(out, a):
        out = out.copy()  # never freeze the caller's own array
    out.setflags(write=False)
    return out


def _all_finite(x: np.ndarray) -> bool:
    flat = x.reshape(len(x), -1)
    rows = max(1, _FINITE_CHUNK // max(1, flat.shape[1]))
    return all(np.isfinite(flat[i : i + rows]).all() for i in range(0, len(flat), rows))


def check_arrays(where: str, arrays: Mapping[str, object], splits: Sequence[str] = SPLITS) -> None:
    """Raise :class:`DatasetError` naming the first problem; ``where`` names the dataset."""
    a: dict[str, np.ndarray] = {}
    for split in splits:
        for key in (f"x_{split}", f"y_{split}"):
            value = arrays[key]
            if not isinstance(value, np.ndarray):
                raise DatasetError(f"dataset {where}: {key} must be a numpy array, got {type(value).__name__}")
            a[key] = value
    for split in splits:
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
        if x.dtype.kind == "f" and not _all_finite(x):
            raise DatasetError(f"dataset {where}: x_{split} contains NaN or inf")
        if x.shape[1:] != a[f"x_{splits[0]}"].shape[1:]:
            raise DatasetError(
                f"dataset {where}: x_{splits[0]} rows have shape {a[f'x_{splits[0]}'].shape[1:]} "
                f"but x_{split} rows {x.shape[1:]}"
            )


# -- completing the splits ---------------------------------------------------------------------


def stratified_split(y: np.ndarray, n_held: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) row indices, both sorted: ``n_held`` rows drawn class by class.

    Each class gives its share of ``n_held`` (largest remainders round up) but keeps at least one
    row, so the held-out labels all occur in the kept rows; fewer rows are held out only when the
    classes cannot spare them.
    """
    values, inverse = np.unique(y, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(values))
    room = counts - 1
    quota = n_held * counts / len(y)
    take = np.minimum(np.floor(quota).astype(np.int64), room)
    short = n_held - int(take.sum())
    while short > 0 and (take < room).any():  # one more row each, largest remainder first
        for c in np.argsort(-(quota - take), kind="stable"):
            if short > 0 and take[c] < room[c]:
                take[c] += 1
                short -= 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(inverse == c))[: take[c]] for c in range(len(values))]
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.ones(len(y), dtype=bool)
    kept[held_idx] = False
    return np.flatnonzero(kept), held_idx


def complete_splits(where: str, splits: Mapping[str, tuple[Any, np.ndarray]], seed: int) -> dict[str, tuple[Any, Any]]:
    """Fill in a missing ``val`` or ``test`` split by splitting it off ``train`` (see the module).

    ``splits`` maps a split name to ``(x, y)``; ``x`` is anything indexable by an integer array
    (an array, or row numbers for a table). Raises :class:`DatasetError` when the training rows
    are too few to spare a split.
    """
    if "train" not in splits:
        raise DatasetError(f"dataset {where}: there is no training split")
    x, y = splits["train"]
    y = _array(y)
    n_given = len(y)
    n_held = max(1, math.ceil(HELD_FRACTION * n_given))
    out = {name: value for name, value in splits.items() if name != "train"}
    for name, seed_ in (("test", TEST_SEED), ("val", seed)):
        if name in out:
            continue
        kept, held = stratified_split(y, n_held, seed_) if len(y) > 1 else (np.arange(len(y)), np.zeros(0, int))
        if held.size == 0:
            raise DatasetError(
                f"dataset {where}: cannot split a {name} split off {len(y)} training rows "
                f"(every class has a single row); give more rows or a {name} split"
            )
        out[name] = (x[held], y[held])
        x, y = x[kept], y[kept]
    out["train"] = (x, y)
    return {name: out[name] for name in SPLITS}


def _array(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else np.asarray(a)


def from_arrays(
    name: str,
    x_train: Any,
    y_train: Any,
    x_val: Any = None,
    y_val: Any = None,
    x_test: Any = None,
    y_test: Any = None,
    *,
    seed: int = 0,
    num_classes: int | None = None,
    classes: Sequence[str] = (),
    where: str | None = None,
) -> Dataset:
    """A :class:`Dataset` from arrays, splitting off the ``val`` and ``test`` splits not given.

    Array-likes (lists, CPU tensors) are converted with ``np.asarray``. ``num_classes`` defaults
    to the largest label + 1 (or ``len(classes)``); ``input_shape`` is ``x_train.shape[1:]``.
    ``where`` names the source in messages (default: the name).

    >>> import numpy as np
    >>> x, y = np.zeros((20, 3)), np.arange(20) % 2
    >>> from_arrays("toy", x, y)
    Dataset(name='toy', train=12, val=4, test=4, input_shape=(3,), num_classes=2)
    """
    where = where or repr(name)
    given = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val, "x_test": x_test, "y_test": y_test}
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in SPLITS:
        x, y = given[f"x_{split}"], given[f"y_{split}"]
        if x is None and y is None:
            continue
        if x is None or y is None:
            have, lack = ("x", "y") if y is None else ("y", "x")
            raise DatasetError(f"dataset {where} has {have}_{split} but lacks {lack}_{split}")
        try:
            splits[split] = (_array(x), _array(y))  # an np.memmap stays one
        except (TypeError, ValueError, RuntimeError) as e:
            raise DatasetError(f"dataset {where}: {split} arrays cannot be made numpy arrays ({e})") from e
    if "train" not in splits:
        raise DatasetError(f"dataset {where} lacks x_train and y_train")
    check_arrays(where, {f"{xy}_{s}": splits[s][i] for s in splits for i, xy in enumerate("xy")}, list(splits))
    done = complete_splits(where, splits, seed)
    if num_classes is None:
        num_classes = len(classes) if classes else max(int(y.max()) for _, y in done.values()) + 1
    (xt, yt), (xv, yv), (xs, ys) = done["train"], done["val"], done["test"]
    return Dataset(name, xt, yt, xv, yv, xt.shape[1:], num_classes, x_test=xs, y_test=ys, classes=tuple(classes))
