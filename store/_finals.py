"""Final trainings and run time: the part of :class:`store.Store` that ``automl final`` and
``--time`` use (a mixin, so that ``_storage.py`` stays one screenful per concern)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store import _checks
from store._models import FinalModel, SearchModel
from store._records import FinalRecord

__all__ = ["FinalsMixin"]

T = TypeVar("T")


class FinalsMixin:
    """Needs ``_read``, ``_write`` and ``_search`` from :class:`store.Store`."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _search: Callable[..., SearchModel]

    def add_final(
        self, search_id: int, number: int, *, seed: int, epochs: int, metrics: Mapping[str, Any]
    ) -> FinalRecord:
        """Store (or replace) the final training of trial ``number`` with ``seed`` for ``epochs``."""
        values = _checks.json_object(metrics, "metrics")
        for label, v in (("number", number), ("seed", seed), ("epochs", epochs)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{label} must be an int >= 0, but got {v!r}")

        def work(s: Session) -> FinalRecord:
            self._search(s, search_id)
            row = s.scalars(
                select(FinalModel).where(
                    FinalModel.search_id == search_id,
                    FinalModel.number == number,
                    FinalModel.seed == seed,
                    FinalModel.epochs == epochs,
                )
            ).one_or_none()
            if row is None:
                row = FinalModel(search_id=search_id, number=number, seed=seed, epochs=epochs, metrics=values,
                                 created_at=dt.datetime.now(dt.timezone.utc))  # fmt: skip
                s.add(row)
            else:
                row.metrics, row.created_at = values, dt.datetime.now(dt.timezone.utc)
            s.flush()
            return row.to_record()

        return self._write("store a final training", work)

    def finals(self, search_id: int) -> list[FinalRecord]:
        """Every final training of the search, by trial, then seed."""

        def work(s: Session) -> list[FinalRecord]:
            self._search(s, search_id)
            stmt = select(FinalModel).where(FinalModel.search_id == search_id)
            return [r.to_record() for r in s.scalars(stmt.order_by(FinalModel.number, FinalModel.seed, FinalModel.id))]

        return self._read(work)

    def add_elapsed(self, search_id: int, seconds: float) -> float:
        """Add ``seconds`` of driver wall-clock time to the search; the new total."""
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"seconds must be a number >= 0, but got {seconds!r}")

        def work(s: Session) -> float:
            s.execute(
                update(SearchModel)
                .where(SearchModel.id == search_id)
                .values(elapsed_seconds=SearchModel.elapsed_seconds + float(seconds))
            )
            return float(self._search(s, search_id).elapsed_seconds)

        return self._write("record run time", work)
