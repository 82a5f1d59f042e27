"""The store: every search, trial, intermediate report and proposer checkpoint.

CONTRACT (implementation to be filled in; signatures are fixed, other packages code against them).

All methods take and return plain values and frozen records (``store._records``), never ORM
rows. All methods are safe to call from several threads; several processes and machines may
share one database (SQLite file: WAL + busy timeout, "database is locked" never reaches the
user; PostgreSQL: row locks). A method that changes rows commits before it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from store._records import SearchRecord, StepRecord, TrialRecord, TrialStatus

__all__ = ["NotFound", "SchemaError", "SearchBusy", "StorageError", "Store"]


class StorageError(RuntimeError):
    """The database failed (after retries)."""


class NotFound(LookupError):
    """No search or trial by that name or number; the message names it."""


class SchemaError(StorageError):
    """The database has a schema this version does not know (newer), or is not an automl db."""


class SearchBusy(RuntimeError):
    """Another live driver holds the search; the message names it and says what to do."""


class Store:
    """A database of searches. ``Store(url)`` opens (and migrates) it.

    ``url`` is any SQLAlchemy URL: ``sqlite:///automl.db`` (default), or
    ``postgresql+psycopg://user@host/db``. A malformed URL raises ``ValueError`` naming it.
    ``read_only=True`` opens without migrating and refuses writes (the dashboard).
    """

    def __init__(self, url: str = "sqlite:///automl.db", *, read_only: bool = False) -> None:
        raise NotImplementedError

    url: str

    def close(self) -> None:
        """Dispose of the engine's connections."""
        raise NotImplementedError

    # -- searches -----------------------------------------------------------------------
    def create_search(
        self, name: str, *, space: str, strategy: str, objectives: Sequence[str], config: Mapping[str, Any]
    ) -> SearchRecord:
        """A new search. Raises ``ValueError`` if the name is taken."""
        raise NotImplementedError

    def find_search(self, name: str) -> SearchRecord | None:
        raise NotImplementedError

    def get_search(self, name: str) -> SearchRecord:
        """Raises :class:`NotFound` ("no search named 'x' in <url>")."""
        raise NotImplementedError

    def list_searches(self) -> list[SearchRecord]:
        """All searches, oldest first."""
        raise NotImplementedError

    def delete_search(self, name: str) -> None:
        """Remove a search and all its rows (trials, steps, checkpoints)."""
        raise NotImplementedError

    def update_search_config(self, search_id: int, config: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # -- driver lease: one live driver per search ---------------------------------------
    def acquire_search(self, search_id: int, driver: str, *, lease_seconds: float = 30.0) -> None:
        """Take the search for ``driver`` ("host:pid").

        Succeeds if nobody holds it, the holder's heartbeat is older than ``lease_seconds``,
        the holder is ``driver`` itself, or the holder is a process on this host that no
        longer exists. Otherwise raises :class:`SearchBusy`. Atomic (row lock / transaction).
        """
        raise NotImplementedError

    def heartbeat(self, search_id: int, driver: str, running: Iterable[int] = ()) -> None:
        """Refresh the driver's lease and the ``heartbeat_at`` of the listed running trials."""
        raise NotImplementedError

    def release_search(self, search_id: int, driver: str) -> None:
        """Give the search up (only if ``driver`` holds it)."""
        raise NotImplementedError

    # -- trials -------------------------------------------------------------------------
    def add_trial(
        self,
        search_id: int,
        *,
        arch: Mapping[str, Any],
        arch_key: str,
        proposer: str,
        parent: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> TrialRecord:
        """Store a proposal (status ``proposed``) with the next trial number (0, 1, ...)."""
        raise NotImplementedError

    def start_trial(self, search_id: int, number: int, *, worker: str | None = None) -> TrialRecord:
        """``proposed`` -> ``running``; sets started_at, heartbeat_at, attempts += 1."""
        raise NotImplementedError

    def report_step(self, search_id: int, number: int, step: int, metrics: Mapping[str, Any], value: float | None) -> None:
        """Store (or replace) an intermediate report of a running trial."""
        raise NotImplementedError

    def finish_trial(
        self,
        search_id: int,
        number: int,
        status: TrialStatus,
        *,
        metrics: Mapping[str, Any] | None = None,
        value: float | None = None,
        error: str | None = None,
    ) -> TrialRecord:
        """Record a result and give it the next ``result_seq`` of the search.

        Idempotent for a trial already finished with the same status (returns it unchanged),
        so a retried call after a dropped connection writes no duplicate.
        """
        raise NotImplementedError

    def requeue_trials(self, search_id: int, numbers: Iterable[int] | None = None) -> list[TrialRecord]:
        """``running`` -> ``proposed`` (all running trials of the search if ``numbers`` is None).

        Used on resume (orphans of a dead driver) and for retries. Returns them by number.
        """
        raise NotImplementedError

    def get_trial(self, search_id: int, number: int) -> TrialRecord:
        """Raises :class:`NotFound` ("search 'x' has no trial 7")."""
        raise NotImplementedError

    def trials(
        self,
        search_id: int,
        *,
        statuses: Iterable[TrialStatus] | None = None,
        after_seq: int | None = None,
        order: str = "number",
        limit: int | None = None,
    ) -> list[TrialRecord]:
        """Trials of a search. ``order``: "number" or "result_seq" (results in stored order).

        ``after_seq`` keeps results with result_seq > after_seq (requires finished trials).
        """
        raise NotImplementedError

    def counts(self, search_id: int) -> dict[TrialStatus, int]:
        """Number of trials per status (every status present, zeros included)."""
        raise NotImplementedError

    def steps(self, search_id: int, number: int) -> list[StepRecord]:
        """Intermediate reports of a trial, by step."""
        raise NotImplementedError

    # -- proposer checkpoints -----------------------------------------------------------
    def save_checkpoint(self, search_id: int, result_seq: int, state: Mapping[str, Any]) -> None:
        """Store the proposer's state as it was after hearing results up to ``result_seq``.

        Keeps the few most recent checkpoints of the search.
        """
        raise NotImplementedError

    def load_checkpoint(self, search_id: int) -> tuple[int, dict[str, Any]] | None:
        """The latest checkpoint: ``(result_seq, state)``, or None."""
        raise NotImplementedError


def _unused(x: TrialRecord | SearchRecord | StepRecord | TrialStatus) -> None:  # pragma: no cover
    """Keeps the record imports visible to readers of this contract."""
