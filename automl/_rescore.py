"""A weight-sharing search's winners chosen on its final pool (ENAS's last step).

A shared-weights search scores each child on the pool as it was at that moment. The pool keeps
training, so a child evaluated late scores higher than the same child would have early, and the
search's leaderboard favours late children. Before the final training, the best ``n`` of the
search are scored again side by side on the pool the search left
(:meth:`evaluators.SharedWeightsEvaluator.rescore`), and the final step takes the best of those.

The scores are kept in ``<pool_dir>/rescore.json`` with the pool's age: ``automl final`` run again
re-scores only architectures it has not scored on this pool (none, unless the search has trained
the pool further since).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from automl._errors import UsageError
from automl._files import atomic_write
from automl._resolve import evaluator_from_spec, resolve_space
from search_spaces import Arch
from store import SearchRecord, TrialRecord

__all__ = ["rescored"]

_CACHE = "rescore.json"


def _pool_dir(search: SearchRecord) -> Path | None:
    """The folder of the pool of a search run with ``--evaluator shared:DIR``; None otherwise."""
    if not search.config.evaluator.startswith("shared"):
        return None
    folder = dict(search.config.evaluator_info.get("config", {})).get("pool_dir")
    return Path(folder) if folder else None


def rescored(search: SearchRecord, candidates: list[TrialRecord]) -> dict[int, float]:
    """``{trial number: validation accuracy on the final pool}`` for ``candidates``."""
    folder = _pool_dir(search)
    if folder is None:
        raise UsageError(
            f"--rescore scores architectures on a search's weight pool; search {search.name!r} has none on disk "
            f"(it used --evaluator {search.config.evaluator}; keep one with --evaluator shared:DIR)"
        )
    evaluator = _evaluator(search, folder)
    if not evaluator.pool_path.is_file():  # the evaluator names its pool file; without it the pool would be new
        raise UsageError(f"the pool of search {search.name!r} is not at {evaluator.pool_path}; give --rescore 0")
    age = evaluator.pool.steps
    cache = _read(folder / _CACHE, age)
    todo = [t for t in candidates if t.arch_key not in cache]
    if todo:
        for t, m in zip(todo, evaluator.rescore([Arch(t.arch) for t in todo]), strict=True):
            cache[t.arch_key] = m["accuracy"]
        blob = json.dumps({"pool_steps": age, "accuracy": cache}, indent=1, sort_keys=True)
        atomic_write(folder / _CACHE, lambda tmp: tmp.write_text(blob))
    return {t.number: cache[t.arch_key] for t in candidates}


def _evaluator(search: SearchRecord, folder: Path) -> Any:
    c = search.config
    space, _ = resolve_space(c.space)  # the folder as resolved when the search began, wherever this runs
    return evaluator_from_spec(f"shared:{folder}", space, dataset=c.dataset, seed=c.seed, recipe=c.recipe)


def _read(path: Path, age: int) -> dict[str, float]:
    """The scores kept for a pool of this age (steps); none for another age or an unreadable file."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("pool_steps") != age or not isinstance(kept.get("accuracy"), dict):
        return {}
    return {str(k): float(v) for k, v in kept["accuracy"].items()}
