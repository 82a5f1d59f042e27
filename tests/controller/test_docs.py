"""The runnable examples in the proposers' docstrings still run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "module", ["controller._random", "controller._evolution", "controller._rl", "controller._optuna"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
