"""CSV tables: one row per sample, one target column, any mix of numeric and text columns.

The target column (``target=``; by default a column named ``target`` or ``label``) is
label-encoded: its distinct values sorted (numerically for a numeric column) become labels
``0..k-1`` and ``Dataset.classes`` keeps their names. A column named ``split`` with values
``train``/``val``/``test`` assigns the rows; without it, or for a split it lacks, the missing
splits are split off the training rows (:mod:`evaluators._data_core`). Every other column is a
feature: numeric columns are imputed with the training median and standardized; the others
(text, booleans) are imputed with the most frequent training value and one-hot encoded, a value
never seen in training encoding as all zeros. The encoder is fitted on the training rows only,
so nothing about the validation or test rows leaks into the features. Input shape:
``(n_features,)``.

>>> import tempfile, pathlib
>>> from evaluators import datasets
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp) / "fruit.csv"
...     rows = [f"{w},{c},{f}" for w, c, f in zip(range(40), ["red", "green"] * 20, ["apple", "pear"] * 20)]
...     _ = path.write_text("weight,colour,fruit\\n" + "\\n".join(rows) + "\\n")
...     d = datasets.load(path, target="fruit")
>>> d, d.classes
(Dataset(name='fruit', train=24, val=8, test=8, input_shape=(3,), num_classes=2), ('apple', 'pear'))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evaluators._data_core import SPLITS, Dataset, DatasetError, complete_splits

__all__ = ["DEFAULT_TARGETS", "load_csv"]

DEFAULT_TARGETS = ("target", "label")  # tried in this order when no target= is given
_SPLIT_COLUMN = "split"


def load_csv(path: Path, target: str | None, seed: int) -> Dataset:
    import pandas as pd

    where = repr(str(path))
    if not path.is_file():
        raise DatasetError(f"dataset file {where} does not exist")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"dataset file {where} is empty") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DatasetError(f"dataset file {where} is not a readable CSV table ({e})") from e
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if target is None:
        target = next((c for c in DEFAULT_TARGETS if c in columns), None)
        if target is None:
            raise DatasetError(f"dataset {where}: name the target column with target=; columns: {', '.join(columns)}")
    if target not in columns:
        raise DatasetError(f"dataset {where} has no column {target!r}; columns: {', '.join(columns)}")
    if df.empty:
        raise DatasetError(f"dataset file {where} has no rows")
    y_raw = df[target]
    if y_raw.isna().any():
        lines = ", ".join(str(i + 2) for i in np.flatnonzero(y_raw.isna())[:5])  # line 1 is the header
        raise DatasetError(f"dataset {where}: target column {target!r} is empty on line(s) {lines}")
    raw = y_raw.to_numpy() if y_raw.dtype.kind in "iuf" else y_raw.astype(str).to_numpy()
    values = np.unique(raw)  # sorted: numerically for a numeric column
    y = np.searchsorted(values, raw).astype(np.int64)
    classes = tuple(str(v) for v in values)
    if len(classes) < 2:
        raise DatasetError(
            f"dataset {where}: target column {target!r} has one class ({classes[0]!r}); need two or more"
        )

    rows = _rows_by_split(df, where)
    features = [c for c in columns if c not in (target, _SPLIT_COLUMN)]
    if not features:
        raise DatasetError(f"dataset {where}: no feature columns besides the target {target!r}")
    given = {split: (idx, y[idx]) for split, idx in rows.items()}
    if "train" not in given:
        raise DatasetError(f"dataset {where}: column {_SPLIT_COLUMN!r} marks no row as 'train'")
    done = complete_splits(where, given, seed)

    table = df[features]
    encoder = _encoder(table, features)
    try:
        encoder.fit(table.iloc[done["train"][0]])  # the training rows only: no leakage
        x = {split: encoder.transform(table.iloc[idx]).astype(np.float32) for split, (idx, _) in done.items()}
    except ValueError as e:
        raise DatasetError(f"dataset {where}: cannot encode the feature columns ({e})") from e
    (xt, yt), (xv, yv), (xs, ys) = ((x[s], done[s][1]) for s in SPLITS)
    return Dataset(path.stem, xt, yt, xv, yv, xt.shape[1:], len(classes), x_test=xs, y_test=ys, classes=classes)


def _rows_by_split(df: Any, where: str) -> dict[str, np.ndarray]:
    """Row numbers per split: from the ``split`` column, or every row in ``train``."""
    if _SPLIT_COLUMN not in df.columns:
        return {"train": np.arange(len(df))}
    marks = df[_SPLIT_COLUMN].astype(str).str.strip().str.lower().to_numpy()
    bad = sorted(set(marks) - set(SPLITS))
    if bad:
        raise DatasetError(
            f"dataset {where}: column {_SPLIT_COLUMN!r} has value(s) {', '.join(map(repr, bad))}; "
            f"use {', '.join(SPLITS)}"
        )
    return {split: np.flatnonzero(marks == split) for split in SPLITS if (marks == split).any()}


def _encoder(table: Any, features: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = [c for c in features if table[c].dtype.kind in "iuf"]
    other = [c for c in features if c not in numeric]
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(_as_text, feature_names_out="one-to-one"),
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                other,
            ),
        ],
        sparse_threshold=0.0,
    )


def _as_text(frame: Any) -> Any:
    """Text columns as strings (booleans and mixed values included), missing values left as NaN."""
    import pandas as pd

    return frame.astype(object).map(lambda v: np.nan if pd.isna(v) else str(v))
