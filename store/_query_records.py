"""Frozen records returned by ``store.queries`` (re-exported there)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store._records import SearchRecord, StepRecord, TrialRecord

__all__ = [
    "Curve",
    "CurvePoint",
    "DecisionStat",
    "DecisionStats",
    "ParetoPoint",
    "SearchSummary",
    "TrialDetail",
]


@dataclass(frozen=True)
class CurvePoint:
    """A trial that set a new best: from it on, ``value`` is the best so far."""

    number: int
    value: float
    result_seq: int | None = None
    elapsed: float | None = None  # seconds from the search's creation to the trial's result


@dataclass(frozen=True)
class Curve:
    """The best-so-far step curve of a search: its improvements, and where it ends."""

    search: SearchRecord
    by: str  # "number" or "time"
    points: tuple[CurvePoint, ...]
    last_number: int | None  # the last completed trial (the curve is flat from the last point to it)
    last_elapsed: float | None

    def best_at(self, x: float) -> float | None:
        """The best value among completed trials numbered ``<= x`` (``by="number"``) or finished
        within ``x`` seconds (``by="time"``); None before the first."""
        best = None
        for p in self.points:
            at = p.number if self.by == "number" else p.elapsed
            if at is None or at > x:
                break
            best = p.value
        return best


@dataclass(frozen=True)
class ParetoPoint:
    """A trial on the front: no other is at least as cheap and strictly better, or cheaper and as good."""

    number: int
    value: float
    cost: float


@dataclass(frozen=True)
class TrialDetail:
    search: SearchRecord
    trial: TrialRecord
    steps: tuple[StepRecord, ...]
    parent: TrialRecord | None
    children: tuple[TrialRecord, ...]  # the first ``children_limit`` by number
    children_total: int


@dataclass(frozen=True)
class DecisionStat:
    """How often ``option`` was chosen for decision ``name``: among the top k and among all."""

    name: str
    option: Any  # the JSON value
    top: int  # top-k trials that chose it
    top_share: float  # of the top-k trials that have this decision
    completed: int  # completed trials that chose it
    share: float  # of the completed trials that have this decision

    @property
    def lift(self) -> float:
        """``top_share / share``: above 1, the best trials prefer this option."""
        return self.top_share / self.share if self.share else math.nan


@dataclass(frozen=True)
class DecisionStats:
    search: SearchRecord
    k: int  # top-k trials looked at (fewer when fewer completed)
    completed: int
    rows: tuple[DecisionStat, ...]  # in the space's decision and option order when it is known


@dataclass(frozen=True)
class SearchSummary:
    search: SearchRecord
    counts: Mapping[str, int]  # trials per status
    best: float | None
    best_number: int | None
    median: float | None
    curve: Curve
