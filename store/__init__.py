"""The store: SQLAlchemy models, migrations, frozen records and the queries over them."""

from __future__ import annotations

from store import _queries as queries
from store._config import ConfigError, SearchConfig
from store._records import FinalRecord, SearchRecord, StepRecord, TrialRecord, TrialStatus
from store._storage import (
    CHECKPOINT_KEY,
    LEASE_SECONDS,
    NotFound,
    SchemaError,
    SearchBusy,
    StorageError,
    Store,
    safe_url,
)

__all__ = [
    "CHECKPOINT_KEY",
    "LEASE_SECONDS",
    "ConfigError",
    "FinalRecord",
    "NotFound",
    "SchemaError",
    "SearchBusy",
    "SearchConfig",
    "SearchRecord",
    "StepRecord",
    "StorageError",
    "Store",
    "TrialRecord",
    "TrialStatus",
    "queries",
    "safe_url",
]
