"""Evaluators named by text: a dataset, ``table[:PATH]`` or ``path/file.py:function``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from automl._checks import UsageError
from evaluators import Evaluator, as_evaluator
from search_spaces import Space

__all__ = ["evaluator_from_spec", "load_from_file"]


def load_from_file(spec: str, what: str) -> Any:
    """The object ``function`` of ``path/file.py:function``; errors name the problem."""
    path_text, _, attr = spec.rpartition(":")
    path = Path(path_text)
    if not attr or not path_text:
        raise UsageError(f"{what} {spec!r}: expected 'path/to/file.py:function'")
    if not path.is_file():
        raise UsageError(f"{what} file {path_text!r} does not exist")
    mod_name = f"_automl_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(mod_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise UsageError(f"{what} file {path_text!r} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[mod_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        raise UsageError(f"{what} file {path_text!r} raised {type(e).__name__}: {e}") from e
    if not hasattr(module, attr):
        raise UsageError(f"{what} file {path_text!r} defines no {attr!r}")
    return getattr(module, attr)


def evaluator_from_spec(
    spec: str,
    space: Space,
    *,
    dataset: str = "digits",
    epochs: int | None = None,
    seed: int | None = None,
    weights_dir: str | None = None,
) -> Evaluator:
    """``train`` (train on ``dataset``), a dataset name or ``.npz`` path (train on it),
    ``table`` / ``table:PATH`` (NAS-Bench-201 lookup) or ``path/file.py:function``."""
    if spec == "table" or spec.startswith("table:"):
        from evaluators import TabularEvaluator

        path = spec.partition(":")[2] or None
        try:
            return TabularEvaluator.nb201(path)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(str(e)) from e
    if ".py:" in spec:
        return as_evaluator(load_from_file(spec, "evaluator"))
    from evaluators import DatasetError, TrainConfig, TrainingEvaluator

    options: dict[str, Any] = {"epochs": epochs, "seed": seed, "weights_dir": weights_dir}
    config = TrainConfig(**{k: v for k, v in options.items() if v is not None})
    try:
        return TrainingEvaluator(space, dataset if spec == "train" else spec, config=config)
    except DatasetError as e:
        raise UsageError(str(e)) from e
