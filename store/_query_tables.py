"""Tables that exist only to make the result queries fast (``store.queries``), and their indexes.

Both tables are a projection of ``trials`` kept exact **by the database itself**: triggers
created in migration 0002 (SQLite triggers; a PL/pgSQL trigger function on PostgreSQL) add a
trial's rows when it becomes ``completed`` and take them away when it stops being completed or
is deleted. No Python code writes them, so every writer (any process, any machine, a bulk
``INSERT``) keeps them right, and the migration fills them for databases made before it.

- ``completed_trials``: one narrow row per completed trial (number, result order, objective
  value and the cost metrics ``params``, ``flops``, ``latency_ms`` pulled out of the metrics
  JSON), with covering indexes, so that best-so-far curves and Pareto fronts are index walks
  instead of JSON parsing over every trial.
- ``decision_counts``: for each search, decision and option (the option as JSON text), how many
  completed trials chose it; "among all completed trials" is then a read of a few dozen rows.

The index on ``trials (search_id, parent)`` (children of a trial) is declared here too, so that
``Base.metadata`` matches the migrations without touching ``store._models``.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store._models import Base, TrialModel

__all__ = ["COST_METRICS", "CompletedTrialModel", "DecisionCountModel"]

#: Metrics copied into ``completed_trials`` (when the trial's metrics hold them as numbers).
COST_METRICS = ("params", "flops", "latency_ms")


class CompletedTrialModel(Base):
    """A completed trial, as the result queries need it (written by triggers only)."""

    __tablename__ = "completed_trials"
    __table_args__ = (
        Index(None, "search_id", "number", "value"),  # best so far by trial number
        Index(None, "search_id", "result_seq", "value"),  # best so far by time (result order)
        Index(None, "search_id", "value"),  # best, median, count
        Index(None, "search_id", "params", "value"),  # Pareto fronts, one per cost metric
        Index(None, "search_id", "flops", "value"),
        Index(None, "search_id", "latency_ms", "value"),
    )

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    search_id: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    result_seq: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)  # the primary objective, raw (not negated)
    params: Mapped[float | None] = mapped_column(Float)
    flops: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)


class DecisionCountModel(Base):
    """How many completed trials of a search chose ``value`` for decision ``name``."""

    __tablename__ = "decision_counts"

    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)  # the option as JSON text ('"conv"', '3', 'true')
    completed: Mapped[int] = mapped_column(Integer)


# Children of a trial (``trials.parent`` holds the parent's number within the search).
Index(None, TrialModel.__table__.c.search_id, TrialModel.__table__.c.parent)
