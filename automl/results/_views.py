"""Small readings of stored records that the CLI and the dashboard both show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from automl.pruners import PRUNED_KEY
from store import LEASE_SECONDS, SearchRecord, StepRecord, TrialRecord, TrialStatus

__all__ = ["arch_changes", "search_state", "stops"]


def search_state(search: SearchRecord, finished: int, target: int | None) -> str:
    """running (a live driver holds it), done (reached its target) or stopped."""
    beat = search.driver_heartbeat_at
    if search.driver and beat and (dt.datetime.now(dt.timezone.utc) - beat).total_seconds() < LEASE_SECONDS:
        return "running"
    return "done" if target and finished >= target else "stopped"


def stops(trial: TrialRecord, steps: Sequence[StepRecord]) -> list[tuple[StepRecord, Mapping[str, Any], bool]]:
    """Each early stop in the trial's history: ``(step, the pruner's reason, promoted)``, where
    ``promoted`` says the stop was taken back (ASHA promoted the trial and it went on); only a
    pruned trial's last stop stands."""
    out = []
    for i, step in enumerate(steps):
        reason = step.metrics.get(PRUNED_KEY)
        if isinstance(reason, Mapping):
            out.append((step, reason, i < len(steps) - 1 or trial.status is not TrialStatus.PRUNED))
    return out


def arch_changes(arch: Mapping[str, Any], parent: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(decision, parent's value, this value) where they differ: what a mutation changed."""
    names = list(parent) + [k for k in arch if k not in parent]
    return [(k, parent.get(k, "-"), arch.get(k, "-")) for k in names if parent.get(k, "-") != arch.get(k, "-")]
