"""automl: neural architecture search over a PyTorch search-space DSL, results in SQL.

>>> import automl
>>> res = automl.search("cnn", "digits", strategy="evolution", trials=20)   # doctest: +SKIP
>>> res.best.arch, res.best.metrics["accuracy"]                              # doctest: +SKIP
"""

from __future__ import annotations

from automl._api import load, search
from automl._checks import UsageError
from automl._export import export, load_pt
from automl._result import SearchResult
from automl._results_api import best_so_far, compare, decision_stats, leaderboard, pareto

__all__ = [
    "SearchResult",
    "UsageError",
    "best_so_far",
    "compare",
    "decision_stats",
    "export",
    "leaderboard",
    "load",
    "load_pt",
    "pareto",
    "search",
]
__version__ = "0.1.0"
