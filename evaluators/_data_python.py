"""Data made by a Python function: ``path/to/file.py:fn``.

``fn()`` takes no arguments and returns a mapping, or an object with attributes, holding
``x_train`` and ``y_train`` and optionally ``x_val``/``y_val``, ``x_test``/``y_test`` (missing
splits are split off the training rows: :mod:`evaluators._data_core`), ``num_classes`` and
``classes`` (label names). Arrays may be numpy arrays, lists or CPU tensors. The file is imported
as a private module (``_automl_user_data_<hash>``), so worker processes can import it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evaluators._data_core import Dataset, DatasetError, from_arrays

__all__ = ["load_function"]

_FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "num_classes", "classes")


def load_function(spec: str, seed: int) -> Dataset:
    from search_spaces import SpaceError, import_file_attribute

    try:
        fn, path, attr = import_file_attribute(spec, "dataset", "_automl_user_data_")
    except SpaceError as e:
        raise DatasetError(str(e)) from e
    where = repr(f"{path}:{attr}")
    if not callable(fn):
        raise DatasetError(f"dataset {where} is a {type(fn).__name__}, not a function that returns the data")
    try:
        made = fn()
    except Exception as e:
        raise DatasetError(f"dataset {where} raised {type(e).__name__}: {e}") from e
    fields = _fields(made)
    if "x_train" not in fields or "y_train" not in fields:
        raise DatasetError(
            f"dataset {where} returned a {type(made).__name__} without x_train and y_train "
            "(return a mapping or an object with x_train, y_train and optionally x_val, y_val, x_test, y_test)"
        )
    return from_arrays(f"{path.stem}:{attr}", **fields, seed=seed, where=where)


def _fields(made: Any) -> dict[str, Any]:
    if isinstance(made, Mapping):
        return {k: made[k] for k in _FIELDS if made.get(k) is not None}
    return {k: getattr(made, k) for k in _FIELDS if getattr(made, k, None) is not None}
