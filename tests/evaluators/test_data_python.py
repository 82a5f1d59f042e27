"""Data from a Python function ``file.py:fn``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluators import DatasetError, datasets

_SOURCE = """
import types
import numpy as np
import torch

def full():
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.normal(size=(30, 2, 2)), "y_train": np.arange(30) % 3,
        "x_val": rng.normal(size=(6, 2, 2)), "y_val": np.arange(6) % 3,
        "x_test": rng.normal(size=(9, 2, 2)), "y_test": np.arange(9) % 3,
        "classes": ["a", "b", "c"],
    }

def train_only():  # an object with attributes, lists and tensors
    return types.SimpleNamespace(x_train=torch.arange(40.0).reshape(20, 2), y_train=[0, 1] * 10)

def broken():
    raise RuntimeError("disk on fire")

def nothing():
    return {"x": 1}

NOT_A_FUNCTION = 3
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "maker.py"
    path.write_text(_SOURCE)
    return path


def test_function_with_every_split(source: Path) -> None:
    d = datasets.load(f"{source}:full")
    assert d.name == "maker:full" and d.classes == ("a", "b", "c") and d.input_shape == (2, 2)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (30, 6, 9)


def test_function_with_only_train_gets_the_other_splits(source: Path) -> None:
    d = datasets.load(f"{source}:train_only")
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (12, 4, 4) and d.num_classes == 2
    assert d.x_train.dtype == np.float32


@pytest.mark.parametrize(
    ("attr", "match"),
    [
        ("broken", r"dataset '.*maker\.py:broken' raised RuntimeError: disk on fire"),
        ("nothing", r"dataset '.*maker\.py:nothing' returned a dict without x_train and y_train"),
        ("NOT_A_FUNCTION", r"dataset '.*maker\.py:NOT_A_FUNCTION' is a int, not a function"),
        ("missing", r"dataset file '.*maker\.py' defines no 'missing'"),
    ],
)
def test_bad_functions(source: Path, attr: str, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        datasets.load(f"{source}:{attr}")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"dataset file '.*nope\.py' does not exist"):
        datasets.load(f"{tmp_path}/nope.py:make")


def test_file_that_fails_to_import(tmp_path: Path) -> None:
    path = tmp_path / "syntax.py"
    path.write_text("def make(:\n")
    with pytest.raises(DatasetError, match=r"dataset file '.*syntax\.py' raised SyntaxError"):
        datasets.load(f"{path}:make")
