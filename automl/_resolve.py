"""Evaluators named by text: a dataset, ``table[:PATH]`` or ``path/file.py:function``."""

from __future__ import annotations

from typing import Any

from automl._checks import UsageError
from evaluators import Evaluator, as_evaluator
from search_spaces import Space, SpaceError, import_file_attribute

__all__ = ["evaluator_from_spec", "load_from_file"]


def load_from_file(spec: str, what: str) -> Any:
    """The object ``function`` of ``path/to/file.py:function``; errors name the problem."""
    try:
        obj, _, _ = import_file_attribute(spec, what, "_automl_user_eval_")
    except SpaceError as e:
        raise UsageError(str(e)) from e
    return obj


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
