"""The store: SQLAlchemy models, migrations, frozen records and the queries over them."""

from __future__ import annotations

from store import _queries as queries
from store._config import ConfigError, SearchConfig
from store._records import (
    CHECKPOINT_KEY,
    FinalRecord,
    SearchRecord,
    StepRecord,
    TrialRecord,
    TrialStatus,
    held_checkpoint,
)
from store._storage import (
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
    "held_checkpoint",
    "queries",
    "safe_url",
]
