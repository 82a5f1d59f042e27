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

from evaluators import datasets
from evaluators._base import Evaluator, FunctionEvaluator, Infeasible, Pruned, Report, TransientError, as_evaluator
from evaluators._tabular import NotInTable, TabularEvaluator
from evaluators._training import TrainConfig, TrainingEvaluator
from evaluators.datasets import Dataset, DatasetError

__all__ = [
    "Dataset",
    "DatasetError",
    "Evaluator",
    "FunctionEvaluator",
    "Infeasible",
    "NotInTable",
    "Pruned",
    "Report",
    "TabularEvaluator",
    "TrainConfig",
    "TrainingEvaluator",
    "TransientError",
    "as_evaluator",
    "datasets",
]
