"""The learning curves of many trials at once: one SELECT over the steps of a search's most recent
finished trials (the figures of the search and compare pages).

It runs through ``store._read``, so inside a page's ``store.snapshot()`` it joins that page's read
transaction. The most recent ``limit`` finished trials come from the ``(search_id, result_seq)``
index and their steps from the ``trial_steps`` primary key, so it reads the same few rows at 10
trials or 100,000.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from store import SearchRecord, Store, TrialStatus
from store._models import StepModel, TrialModel

__all__ = ["TrialCurve", "trial_curves"]

FINISHED = (TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value)
PRUNED_KEY = "_pruned"  # a pruned trial's last step: {"rung", "value", "threshold", "bracket"}


@dataclass(frozen=True)
class TrialCurve:
    """One finished trial's objective by step."""

    number: int
    pruned: bool  # stopped early by the pruner
    steps: tuple[int, ...]
    values: tuple[float, ...]  # the objective at each step (steps without it are left out)
    reason: Mapping[str, Any] | None = None  # the last step's "_pruned" record, when the pruner left one

    @property
    def rung(self) -> int | None:
        """The rung the pruner stopped it at, when it said so."""
        rung = (self.reason or {}).get("rung")
        return rung if isinstance(rung, int) and not isinstance(rung, bool) else None


def trial_curves(store: Store, search: SearchRecord, *, limit: int = 200, also: Iterable[int] = ()) -> list[TrialCurve]:
    """The curves of the ``limit`` most recently finished (completed or pruned) trials of
    ``search``, plus those of the trials numbered ``also`` (e.g. the best), by trial number.
    Trials without steps are left out."""
    extra = sorted({int(n) for n in also})

    def work(s: Session) -> list[TrialCurve]:
        recent = (
            select(TrialModel.id)
            .where(TrialModel.search_id == search.id, TrialModel.status.in_(FINISHED))
            .order_by(TrialModel.result_seq.desc())
            .limit(limit)
        )
        chosen = TrialModel.id.in_(recent.scalar_subquery())
        if extra:
            chosen = or_(chosen, and_(TrialModel.search_id == search.id, TrialModel.number.in_(extra),
                                      TrialModel.status.in_(FINISHED)))  # fmt: skip
        stmt = (
            select(TrialModel.number, TrialModel.status, StepModel.step, StepModel.value, StepModel.metrics[PRUNED_KEY])
            .join(StepModel, StepModel.trial_id == TrialModel.id)
            .where(chosen)
            .order_by(TrialModel.number, StepModel.step)
        )
        return _gather(s.execute(stmt))

    return store._read(work)


def _gather(rows: Iterable[Any]) -> list[TrialCurve]:
    """Rows ``(number, status, step, value, _pruned)`` ordered by number then step, as curves."""
    out: list[TrialCurve] = []
    number, status, steps, values, reason = None, None, [], [], None
    for n, st, step, value, why in [*rows, (None, None, None, None, None)]:
        if n != number:
            if number is not None and steps:
                out.append(TrialCurve(number, status == TrialStatus.PRUNED.value, tuple(steps), tuple(values), reason))
            number, status, steps, values, reason = n, st, [], [], None
        if n is None:
            break
        if value is not None:
            steps.append(int(step))
            values.append(float(value))
        reason = why if isinstance(why, Mapping) else None  # the last step's
    return out
