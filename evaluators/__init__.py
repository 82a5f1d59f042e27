"""Evaluators: architecture -> metrics (train it, or look it up), never touching the database."""

from __future__ import annotations

from evaluators._base import Evaluator, FunctionEvaluator, Infeasible, Pruned, Report, TransientError, as_evaluator

__all__ = ["Evaluator", "FunctionEvaluator", "Infeasible", "Pruned", "Report", "TransientError", "as_evaluator"]
