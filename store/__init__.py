"""The store: SQLAlchemy models, migrations, frozen records and the queries over them."""

from __future__ import annotations

from store import _queries as queries
from store._records import SearchRecord, StepRecord, TrialRecord, TrialStatus
from store._storage import NotFound, SchemaError, SearchBusy, StorageError, Store

__all__ = [
    "NotFound",
    "SchemaError",
    "SearchBusy",
    "SearchRecord",
    "StepRecord",
    "StorageError",
    "Store",
    "TrialRecord",
    "TrialStatus",
    "queries",
]
