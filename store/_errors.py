"""The store's exceptions (re-exported by ``store._storage`` and ``store``).

They live in their own module so that the engine layer can raise them without importing the
``Store`` class.
"""

from __future__ import annotations

__all__ = ["NotFound", "SchemaError", "SearchBusy", "StorageError"]


class StorageError(RuntimeError):
    """The database failed (after retries): e.g. its server stayed unreachable for longer than
    the outage window (``AUTOML_DB_OUTAGE_SECONDS``); the message names the database, passwords
    hidden."""


class NotFound(LookupError):
    """No search or trial by that name or number; the message names it."""


class SchemaError(StorageError):
    """The database has a schema this version does not know (newer), or is not an automl db."""


class SearchBusy(RuntimeError):
    """Another live driver holds the search; the message names it and says what to do."""
