"""What ``automl.search`` and ``automl.load`` return: a view of one stored search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store import SearchRecord, Store, TrialRecord, safe_url

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SearchResult", "trials_frame"]


def trials_frame(trials: list[TrialRecord]) -> pd.DataFrame:
    """A row per trial: number, status, value, metrics (one column each), arch, timings."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for t in trials:
        row: dict[str, Any] = {
            "number": t.number,
            "status": t.status.value,
            "value": t.value,
            "proposer": t.proposer,
            "parent": t.parent,
        }
        for k, v in t.metrics.items():
            row.setdefault(k, v)
        row.update(
            arch=dict(t.arch),
            arch_key=t.arch_key,
            error=t.error,
            worker=t.worker,
            started_at=t.started_at,
            finished_at=t.finished_at,
            duration_s=t.duration,
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["number", "status", "value", "proposer", "parent", "arch"])
    return frame


@dataclass(frozen=True)
class SearchResult:
    """A stored search. Reads the database each time a property is used, so it stays current.

    >>> res = automl.load("demo")                      # doctest: +SKIP
    >>> res.best.number, res.best.arch, res.best.metrics  # doctest: +SKIP
    """

    name: str
    storage: str
    search: SearchRecord

    def _store(self) -> Store:
        return Store(self.storage, read_only=True)

    @property
    def best(self) -> TrialRecord | None:
        """The completed trial with the best objective value (None before any completes)."""
        from store import queries

        store = self._store()
        try:
            top = queries.leaderboard(store, self.search.id, 1)
        finally:
            store.close()
        return top[0] if top else None

    @property
    def trials(self) -> pd.DataFrame:
        """pandas DataFrame, one row per trial (see :func:`trials_frame`)."""
        store = self._store()
        try:
            return trials_frame(store.trials(self.search.id))
        finally:
            store.close()

    def counts(self) -> dict[str, int]:
        store = self._store()
        try:
            return {s.value: n for s, n in store.counts(self.search.id).items()}
        finally:
            store.close()

    def __repr__(self) -> str:
        return f"SearchResult(name={self.name!r}, storage={safe_url(self.storage)!r})"
