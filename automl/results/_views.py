"""Small readings of stored records that the CLI and the dashboard both show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from store import LEASE_SECONDS, SearchRecord

__all__ = ["arch_changes", "search_state"]


def search_state(search: SearchRecord, finished: int, target: int | None) -> str:
    """running (a live driver holds it), done (reached its target) or stopped."""
    beat = search.driver_heartbeat_at
    if search.driver and beat and (dt.datetime.now(dt.timezone.utc) - beat).total_seconds() < LEASE_SECONDS:
        return "running"
    return "done" if target and finished >= target else "stopped"


def arch_changes(arch: Mapping[str, Any], parent: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(decision, parent's value, this value) where they differ: what a mutation changed."""
    names = list(parent) + [k for k in arch if k not in parent]
    return [(k, parent.get(k, "-"), arch.get(k, "-")) for k in names if parent.get(k, "-") != arch.get(k, "-")]
