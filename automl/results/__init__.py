"""Results out of the store: pandas queries (leaderboard, best so far, Pareto front, decision
statistics, comparison) and model export."""

from __future__ import annotations

from automl.results._export import FORMATS, export, export_trial, load_pt
from automl.results._queries import best_so_far, compare, decision_stats, leaderboard, pareto

__all__ = [
    "FORMATS",
    "best_so_far",
    "compare",
    "decision_stats",
    "export",
    "export_trial",
    "leaderboard",
    "load_pt",
    "pareto",
]
