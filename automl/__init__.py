"""automl: neural architecture search over a PyTorch search-space DSL, results in SQL.

>>> import automl
>>> res = automl.search("cnn", "digits", strategy="evolution", trials=20)   # doctest: +SKIP
>>> res.best.arch, res.best.metrics["accuracy"]                              # doctest: +SKIP
"""

from __future__ import annotations

from automl._errors import UsageError
from automl._final import FinalSummary, final
from automl._loop import SearchFailed
from automl._result import SearchResult
from automl._search import Search, load, prepare, search
from automl._version import __version__
from automl.results import best_so_far, compare, decision_stats, export, leaderboard, load_pt, pareto
from store import SearchConfig

__all__ = [
    "Search",
    "SearchConfig",
    "SearchFailed",
    "SearchResult",
    "UsageError",
    "__version__",
    "best_so_far",
    "compare",
    "FinalSummary",
    "final",
    "decision_stats",
    "export",
    "leaderboard",
    "load",
    "load_pt",
    "pareto",
    "prepare",
    "search",
]
