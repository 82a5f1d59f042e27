"""CSV tables: encoding, the split column, no leakage from val/test into the encoder, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluators import DatasetError, datasets


def _table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "height": rng.normal(170, 10, n),
            "age": rng.integers(18, 80, n),
            "city": rng.choice(["oslo", "rome", "lima"], n),
            "member": rng.choice([True, False], n),
            "species": np.array(["cat", "dog", "ant"])[np.arange(n) % 3],
        }
    )
    df.loc[[1, 7], "height"] = np.nan  # missing values, numeric and text
    df.loc[[2, 9], "city"] = np.nan
    return df


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def test_csv_without_split_column(tmp_path: Path) -> None:
    d = datasets.load(_write(_table(), tmp_path / "zoo.csv"), target="species")
    assert d.name == "zoo" and d.classes == ("ant", "cat", "dog") and d.num_classes == 3
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (36, 12, 12)  # 60/20/20, stratified
    assert all(np.all(np.bincount(getattr(d, f"y_{s}")) == 4) for s in ("val", "test"))
    # height, age; city one-hot (3 values), member one-hot (2 values)
    assert d.input_shape == (7,) and d.x_train.dtype == np.float32
    assert all(np.isfinite(getattr(d, f"x_{s}")).all() for s in ("train", "val", "test"))  # imputed


def test_csv_encoder_is_fitted_on_the_training_rows_only(tmp_path: Path) -> None:
    df = _table()
    df["split"] = ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    df.loc[40:, "height"] += 100  # val and test come from elsewhere: if they leaked, train would not be centred
    df.loc[50, "city"] = "paris"  # a value never seen in training: all zeros
    d = datasets.load(_write(df, tmp_path / "zoo.csv"), target="species")
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (40, 10, 10)
    np.testing.assert_allclose(d.x_train[:, :2].mean(axis=0), 0, atol=1e-5)  # scaled with train's statistics
    np.testing.assert_allclose(d.x_train[:, 0].std(), 1, atol=0.05)  # (imputed rows sit at the median)
    assert d.x_val[:, 0].mean() > 5 and d.x_test[:, 0].mean() > 5  # not re-centred on their own data
    city = d.x_test[0, 2:5]  # row 50 is the first test row
    assert city.tolist() == [0, 0, 0]
    expected = df.loc[:39, "height"].fillna(df.loc[:39, "height"].median()) - df.loc[:39, "height"].median()
    assert np.argmax(d.x_train[:, 0]) == np.argmax(expected.to_numpy())


def test_csv_split_column_without_test_rows(tmp_path: Path) -> None:
    df = _table()
    df["split"] = [" Train"] * 50 + ["val"] * 10  # case and spaces forgiven
    d = datasets.load(_write(df, tmp_path / "zoo.csv"), target="species")
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (40, 10, 10)  # test: 20% of the 50 train rows


def test_csv_numeric_target_sorts_numerically_and_default_target(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(30.0), "label": [10, 9, 100] * 10})
    d = datasets.load(_write(df, tmp_path / "nums.csv"))
    assert d.classes == ("9", "10", "100")
    assert d.input_shape == (1,)


@pytest.mark.parametrize(
    ("text", "target", "match"),
    [
        ("a,b\n1,x\n2,y\n", "c", r"has no column 'c'; columns: a, b"),
        ("a,b\n1,x\n2,y\n", None, r"name the target column with target=; columns: a, b"),
        ("", "b", r"nums\.csv' is empty"),
        ("a,b\n", "b", r"has no rows"),
        ("a,b\n1,x\n2,x\n3,x\n", "b", r"target column 'b' has one class \('x'\)"),
        ("a,b\n1,x\n2,\n3,y\n", "b", r"target column 'b' is empty on line\(s\) 3"),
        ("a,b,split\n1,x,train\n2,y,dev\n", "b", r"column 'split' has value\(s\) 'dev'; use train, val, test"),
        ("a,b,split\n1,x,val\n2,y,test\n", "b", r"column 'split' marks no row as 'train'"),
        ("b\nx\ny\n", "b", r"no feature columns besides the target 'b'"),
        ("a,b,split\n1,x,train\n2,x,train\n3,y,test\n", "b", r"the test split has labels the training split lacks: 1"),
    ],
)
def test_invalid_csv(tmp_path: Path, text: str, target: str | None, match: str) -> None:
    path = tmp_path / "nums.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        datasets.load(path, target=target)


def test_csv_target_is_part_of_the_cache_key(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": np.arange(30.0), "a": ["p", "q"] * 15, "b": ["r", "s", "t"] * 10})
    path = _write(df, tmp_path / "two.csv")
    by_a, by_b = datasets.load(path, target="a"), datasets.load(path, target="b")
    assert by_a.num_classes == 2 and by_b.num_classes == 3
    assert datasets.load(path, target="a") is by_a
