"""Frozen records handed out by the store (never ORM rows)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from store._config import SearchConfig

__all__ = ["FinalRecord", "SearchRecord", "StepRecord", "TrialRecord", "TrialStatus"]


class TrialStatus(str, enum.Enum):
    """Life cycle: proposed -> running -> completed | failed | pruned | infeasible."""

    PROPOSED = "proposed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PRUNED = "pruned"
    INFEASIBLE = "infeasible"

    def is_finished(self) -> bool:
        return self not in (TrialStatus.PROPOSED, TrialStatus.RUNNING)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SearchRecord:
    """One search: its name, its :class:`SearchConfig` and who drives it now."""

    id: int
    name: str
    config: SearchConfig
    created_at: dt.datetime
    driver: str | None = None  # "host:pid" of the driver holding the search, if any
    driver_heartbeat_at: dt.datetime | None = None
    elapsed_seconds: float = 0.0  # wall-clock seconds drivers have run it, over every resume

    @property
    def space(self) -> str:
        """Built-in space name or "path/file.py:function"."""
        return self.config.space

    @property
    def strategy(self) -> str:
        return self.config.strategy

    @property
    def objectives(self) -> tuple[str, ...]:
        """Metric names, a leading ``-`` meaning minimize."""
        return self.config.objectives

    @property
    def objective(self) -> str:
        """The primary objective's metric name (without the ``-``)."""
        return self.config.objective

    @property
    def maximize(self) -> bool:
        return self.config.maximize


CHECKPOINT_KEY = "_checkpoint"
"""The reserved metric of a paused trial (status ``pruned``): ``{"path": ..., "step": k}``, the
file with its training state after report ``k``. ``Store.promote_trial`` resumes it."""


def held_checkpoint(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The checkpoint that trial ``metrics`` name (a paused trial's, or a promoted one's while it runs)."""
    held = (metrics or {}).get(CHECKPOINT_KEY)
    return held if isinstance(held, dict) else None


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search. ``value`` is the primary objective's raw metric (not negated)."""

    search_id: int
    number: int  # 0, 1, 2, ... within its search
    status: TrialStatus
    arch: Mapping[str, Any]
    arch_key: str
    proposer: str
    parent: int | None = None  # number of the parent trial (evolution)
    info: Mapping[str, Any] = field(default_factory=dict)  # proposer's JSON (e.g. RL log-probs)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    value: float | None = None
    error: str | None = None
    worker: str | None = None
    attempts: int = 0  # times it was started
    result_seq: int | None = None  # order in which results were stored (1, 2, ...)
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    heartbeat_at: dt.datetime | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def checkpoint(self) -> dict[str, Any] | None:
        """``{"path", "step"}`` of a paused trial (``pruned``, its training state kept); else None."""
        return held_checkpoint(self.metrics) if self.status is TrialStatus.PRUNED else None


@dataclass(frozen=True)
class StepRecord:
    """An intermediate report (e.g. one epoch) of a trial."""

    number: int
    step: int
    metrics: Mapping[str, Any]
    value: float | None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class FinalRecord:
    """One final training: trial ``number``'s architecture retrained on train+val with ``seed``."""

    search_id: int
    number: int
    seed: int
    epochs: int
    metrics: Mapping[str, Any]  # test_accuracy, test_loss, train_seconds, weights (a path), ...
    created_at: dt.datetime | None = None

    @property
    def test_accuracy(self) -> float | None:
        value = self.metrics.get("test_accuracy")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
