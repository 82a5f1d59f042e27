"""Evaluators: architecture -> metrics (train it, or look it up), never touching the database.

>>> import evaluators
>>> evaluators.datasets.names()
['digits', 'mnist1d']
>>> ev = evaluators.as_evaluator(lambda arch: {"accuracy": arch["width"] / 100})
>>> ev({"width": 50})
{'accuracy': 0.5}

Training: ``evaluators.TrainingEvaluator(space, "digits", evaluators.TrainConfig(epochs=10))``.
Lookup: ``evaluators.TabularEvaluator.nb201()`` (NAS-Bench-201, CIFAR-10).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evaluators._base import (
    Evaluator,
    FunctionEvaluator,
    Infeasible,
    Paused,
    Pruned,
    Report,
    TransientError,
    as_evaluator,
)

if TYPE_CHECKING:
    from evaluators import datasets
    from evaluators._tabular import NotInTable, TabularEvaluator
    from evaluators._training import TrainConfig, TrainingEvaluator
    from evaluators.datasets import Dataset, DatasetError

# Imported on first use: torch and scikit-learn take seconds to import, and `automl --help`,
# the store and the dashboard need neither.
_LAZY = {
    "datasets": "evaluators.datasets",
    "Dataset": "evaluators.datasets",
    "DatasetError": "evaluators.datasets",
    "NotInTable": "evaluators._tabular",
    "PoolInUse": "evaluators._shared",
    "SharedConfig": "evaluators._shared",
    "SharedWeightsEvaluator": "evaluators._shared",
    "TabularEvaluator": "evaluators._tabular",
    "TrainConfig": "evaluators._training",
    "TrainingEvaluator": "evaluators._training",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'evaluators' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if name == "datasets" else getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "Dataset",
    "DatasetError",
    "Evaluator",
    "FunctionEvaluator",
    "Infeasible",
    "NotInTable",
    "Paused",
    "Pruned",
    "Report",
    "TabularEvaluator",
    "TrainConfig",
    "TrainingEvaluator",
    "TransientError",
    "as_evaluator",
    "datasets",
]
