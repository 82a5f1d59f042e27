"""What several pages read: a search's facts from its config, its state, its index row, versions.

:func:`facts` is the only place in the dashboard that reads ``search.config``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from automl._progress import clock
from automl.results._views import search_state
from store import SearchRecord, Store, queries

__all__ = [
    "MAX_COMPARE",
    "MAX_NUMBER",
    "Facts",
    "facts",
    "limits",
    "search_row",
    "state",
    "version",
    "versions",
]

MAX_COMPARE = 12  # searches on one compare page
MAX_NUMBER = 2**31 - 1  # largest trial number in a URL


class Facts(NamedTuple):
    """What the pages show from a search's config."""

    target: int | None  # finished trials it stops at
    dataset: str | None  # what it trains on, when it trains
    context: Mapping[str, Any] | None  # input shape and classes, for drawing a layer stack
    budget: float | None  # summed "cost" metric it stops at
    time: float | None  # driver seconds it stops at
    rungs: tuple[int, ...]  # steps where its pruner judges trials, when the config says (ASHA)


def facts(search: SearchRecord) -> Facts:
    """The :class:`Facts` of ``search`` (its config's trials, dataset, evaluator context, limits
    and pruner rungs)."""
    config = search.config
    dataset = config.evaluator_info.get("dataset") or (config.dataset if config.evaluator == "train" else None)
    return Facts(
        config.trials,
        None if dataset is None else str(dataset),
        config.context or None,
        config.budget,
        config.time,
        _asha_rungs(config.pruner, config.pruner_options, config.epochs),
    )


def _asha_rungs(pruner: str, options: Mapping[str, Any], epochs: int | None) -> tuple[int, ...]:
    """ASHA's rungs, ``min_resource * reduction_factor**k`` below ``max_resource`` (see
    :class:`automl._pruners.ASHAPruner`); none for another pruner or without an upper end."""
    if pruner != "asha":
        return ()
    low, factor = options.get("min_resource", 1), options.get("reduction_factor", 4)
    top = options.get("max_resource", epochs)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, factor, top)):
        return ()
    if low < 1 or factor < 2:
        return ()
    rungs, rung = [], low
    while rung < top:
        rungs.append(rung)
        rung *= factor
    return tuple(rungs)


def limits(search: SearchRecord, spent: float | None) -> list[str]:
    """What of its budget and time the search has spent: ``["budget 56/50", "time 5:02/20:00"]``."""
    known = facts(search)
    out = []
    if known.budget is not None:
        out.append(f"budget {spent or 0:,.0f}/{known.budget:,.0f}")
    if known.time is not None:
        out.append(f"time {clock(search.elapsed_seconds)}/{clock(known.time)}")
    return out


def state(search: SearchRecord, counts: Mapping[str, int]) -> str:
    """running, done or stopped (see :func:`automl.results._views.search_state`)."""
    return search_state(search, counts.get("completed", 0) + counts.get("pruned", 0), facts(search).target)


def search_row(store: Store, search: SearchRecord) -> dict[str, Any]:
    """A row of the index (and of /api/searches): counts, best trial, state, target, dataset."""
    counts = {k.value: v for k, v in store.counts(search.id).items()}
    top = queries.leaderboard(store, search.id, 1)
    known = facts(search)
    return {
        "search": search,
        "counts": counts,
        "best": top[0] if top else None,
        "state": state(search, counts),
        "target": known.target,
        "dataset": known.dataset,
    }


def version(store: Store, ids: Sequence[int], trial: int | None = None) -> str:
    """What changes when the results shown for the searches ``ids`` (all when empty) change."""
    if not ids:
        return queries.version(store)
    if trial is not None:  # a trial page: its search's counters and the trial's status and steps
        return queries.version(store, ids[0], trial)
    return "|".join(queries.version(store, i) for i in ids)


def versions(store: Store, url: str, ids: Sequence[int], trial: int | None = None) -> dict[str, str]:
    """What a page needs to refresh itself: the current version and the URL that polls it."""
    return {"version": version(store, ids, trial), "version_url": url}
