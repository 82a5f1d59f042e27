"""The store: every search, trial, intermediate report and proposer checkpoint.

All methods take and return plain values and frozen records (``store._records``), never ORM
rows. All methods are safe to call from several threads; several processes and machines may
share one database (SQLite file: WAL + busy timeout, "database is locked" never reaches the
user; PostgreSQL: row locks). A method that changes rows commits before it returns.

Implementation notes. Each public method is one unit of work: a closure over the session, run by
``Database.run`` (``store._engine``), which commits, or rolls back and re-runs it on a dropped
connection or a locked database. Trial numbers and result sequence numbers come from counters on
the search row (``UPDATE ... SET n = n + 1 RETURNING n``), which also serializes the units that
take them. Lock order, to rule out deadlocks on PostgreSQL: a unit that locks trial rows and the
search row locks the trial rows first, and holds the search row for as short a time as it can.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import _checks
from store._config import SearchConfig
from store._engine import Database
from store._errors import NotFound, SchemaError, SearchBusy, StorageError
from store._finals import FinalsMixin
from store._models import CheckpointModel, SearchModel, StepModel, TrialModel
from store._records import CHECKPOINT_KEY, SearchRecord, StepRecord, TrialRecord, TrialStatus, held_checkpoint
from store._schema import prepare

__all__ = [
    "CHECKPOINT_KEY",
    "LEASE_SECONDS",
    "NotFound",
    "SchemaError",
    "SearchBusy",
    "StorageError",
    "Store",
    "safe_url",
]


def safe_url(url: str) -> str:
    """``url`` with any password hidden: for messages, tables, logs and reprs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: still never show what looks like a password
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", str(url))


# A driver (or a running trial) whose heartbeat is older than this is taken for dead.
LEASE_SECONDS = 30.0

T = TypeVar("T")
KEEP_CHECKPOINTS = 3
_RUNNING = TrialStatus.RUNNING.value


class Store(FinalsMixin):
    """A database of searches. ``Store(url)`` opens (and migrates) it.

    ``url`` is any SQLAlchemy URL: ``sqlite:///automl.db`` (default), or
    ``postgresql+psycopg://user@host/db``. A malformed URL raises ``ValueError`` naming it.
    ``read_only=True`` opens without migrating and refuses writes (the dashboard).
    ``outage_seconds``: how long a database server may stay unreachable (a restart, a failover)
    before a call gives up with :class:`StorageError`; by default ``$AUTOML_DB_OUTAGE_SECONDS``,
    else 60 s. A server unreachable at the very first connection fails at once.
    """

    def __init__(
        self, url: str = "sqlite:///automl.db", *, read_only: bool = False, outage_seconds: float | None = None
    ) -> None:
        self.url = url
        self.read_only = read_only
        self._db = Database(url, read_only=read_only, outage_seconds=outage_seconds)
        try:
            self._db.run(lambda s: prepare(s.connection(), self._db.safe_url, read_only=read_only), write=not read_only)
        except BaseException:
            self._db.close()
            raise

    url: str

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden: for messages and tables."""
        return self._db.safe_url

    def __repr__(self) -> str:
        return f"Store({self._db.safe_url!r}{', read_only=True' if self.read_only else ''})"

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """``with store.snapshot():`` every read of this thread in the block sees one state of the
        database, so counts, leaderboards and curves read for one page or report agree."""
        return self._db.snapshot()

    # -- plumbing ---------------------------------------------------------------------------
    def _read(self, work: Callable[[Session], T]) -> T:
        return self._db.run(work)

    def _write(self, what: str, work: Callable[[Session], T]) -> T:
        if self.read_only:
            raise StorageError(f"{self._db.safe_url} is open read-only; cannot {what}")
        return self._db.run(work, write=True)

    def _search(self, session: Session, search_id: int, *, for_update: bool = False) -> SearchModel:
        row = SearchModel.find(session, search_id, for_update=for_update)
        if row is None:
            raise NotFound(f"no search with id {search_id} in {self._db.safe_url}")
        return row

    def _trial(self, session: Session, search_id: int, number: int, *, for_update: bool = False) -> TrialModel:
        row = TrialModel.find(session, search_id, number, for_update=for_update)
        if row is None:
            name = self._search(session, search_id).name
            raise NotFound(f"search {name!r} has no trial {number}")
        return row

    # -- searches -----------------------------------------------------------------------
    def create_search(self, name: str | None, config: SearchConfig, *, stem: str | None = None) -> SearchRecord:
        """A new search. Raises ``ValueError`` if ``name`` is taken.

        ``name=None`` names it ``<stem>-<n>`` with the first free ``n``, chosen in the transaction
        that creates it, so searches started at once never get the same name.
        """
        if name is not None:
            name = _checks.search_name(name)
        if not isinstance(config, SearchConfig):
            raise TypeError(f"config must be a SearchConfig, but got {config!r}")
        _checks.short_text(config.strategy, "strategy")
        stem = _checks.short_text(stem or "search", "stem", limit=_checks.NAME_LENGTH - 10)  # room for "-<n>"
        names = _checks.objectives(config.objectives)
        cfg = config.to_dict()

        def insert(s: Session, chosen: str) -> SearchRecord | None:
            row = SearchModel(
                name=chosen, space=config.space, strategy=config.strategy, objectives=names, config=cfg,
                created_at=_now(), trial_count=0, result_count=0,
            )  # fmt: skip
            try:
                with s.begin_nested():  # a savepoint: a name taken meanwhile leaves the transaction usable
                    s.add(row)
            except IntegrityError:
                return None
            return row.to_record()

        def work(s: Session) -> SearchRecord:
            if name is not None:
                record = None if SearchModel.find_by_name(s, name) is not None else insert(s, name)
                if record is None:
                    where = self._db.safe_url
                    raise ValueError(
                        f"a search named {name!r} already exists in {where}; pick another name, or resume it"
                    )
                return record
            taken = set(s.scalars(select(SearchModel.name).where(SearchModel.name.like(f"{stem}-%"))))
            n = 1
            while True:
                if f"{stem}-{n}" not in taken and (record := insert(s, f"{stem}-{n}")) is not None:
                    return record
                n += 1

        return self._write("create a search", work)

    def find_search(self, name: str) -> SearchRecord | None:
        def work(s: Session) -> SearchRecord | None:
            row = SearchModel.find_by_name(s, name)
            return None if row is None else row.to_record()

        return self._read(work)

    def get_search(self, name: str) -> SearchRecord:
        """Raises :class:`NotFound` ("no search named 'x' in <url>")."""
        record = self.find_search(name)
        if record is None:
            raise NotFound(f"no search named {name!r} in {self._db.safe_url}")
        return record

    def list_searches(self) -> list[SearchRecord]:
        """All searches, oldest first."""
        return self._read(lambda s: [r.to_record() for r in s.scalars(select(SearchModel).order_by(SearchModel.id))])

    def delete_search(self, name: str) -> None:
        """Remove a search and all its rows (trials, steps, checkpoints)."""

        def work(s: Session) -> None:
            row = SearchModel.find_by_name(s, name)
            if row is None:
                raise NotFound(f"no search named {name!r} in {self._db.safe_url}")
            trial_ids = select(TrialModel.id).where(TrialModel.search_id == row.id)
            # Explicit, in dependency order (the foreign keys also cascade).
            s.execute(delete(StepModel).where(StepModel.trial_id.in_(trial_ids)))
            s.execute(delete(TrialModel).where(TrialModel.search_id == row.id))
            s.execute(delete(CheckpointModel).where(CheckpointModel.search_id == row.id))
            s.execute(delete(SearchModel).where(SearchModel.id == row.id))

        self._write("delete a search", work)

    def update_search_config(self, search_id: int, config: SearchConfig) -> None:
        """Store ``config`` as the search's (what a resume with new targets or options changed)."""
        if not isinstance(config, SearchConfig):
            raise TypeError(f"config must be a SearchConfig, but got {config!r}")

        def work(s: Session) -> None:
            row = self._search(s, search_id, for_update=True)
            if (config.space, config.strategy, list(config.objectives)) != (row.space, row.strategy, row.objectives):
                raise ValueError(f"search {row.name!r}: its space, strategy and objectives cannot change")
            row.config = config.to_dict()

        self._write("update a search", work)

    # -- driver lease: one live driver per search ---------------------------------------
    def acquire_search(self, search_id: int, driver: str, *, lease_seconds: float = LEASE_SECONDS) -> None:
        """Take the search for ``driver`` ("host:pid").

        Succeeds if nobody holds it, the holder's heartbeat is older than ``lease_seconds``,
        the holder is ``driver`` itself, or the holder is a process on this host that no
        longer exists. Otherwise raises :class:`SearchBusy`. Atomic (row lock / transaction).
        """
        driver = _checks.short_text(driver, "driver")

        def work(s: Session) -> None:
            row = self._search(s, search_id, for_update=True)
            now = _now()
            holder, beat = row.driver, row.driver_heartbeat_at
            if holder is not None and holder != driver:
                age = None if beat is None else (now - beat).total_seconds()
                if age is not None and age <= lease_seconds and not _is_dead_here(holder):
                    raise SearchBusy(
                        f"search {row.name!r} is being run by {holder} (last heartbeat {age:.0f} s ago); "
                        "wait for it to finish, or stop it"
                    )
            row.driver, row.driver_heartbeat_at = driver, now

        self._write("acquire a search", work)

    def heartbeat(self, search_id: int, driver: str, running: Iterable[int] = ()) -> None:
        """Refresh the driver's lease and the ``heartbeat_at`` of the listed running trials."""
        driver = _checks.short_text(driver, "driver")
        numbers = sorted({int(n) for n in running})

        def work(s: Session) -> None:
            now = _now()
            if numbers:  # trial rows before the search row (lock order)
                s.execute(
                    update(TrialModel)
                    .where(TrialModel.search_id == search_id, TrialModel.number.in_(numbers))
                    .where(TrialModel.status == _RUNNING)
                    .values(heartbeat_at=now)
                )
            row = self._search(s, search_id, for_update=True)
            if row.driver is not None and row.driver != driver:  # raising rolls the trials back too
                raise SearchBusy(
                    f"search {row.name!r} was taken over by {row.driver} (the lease of {driver} expired); "
                    "stop this driver"
                )
            row.driver, row.driver_heartbeat_at = driver, now

        self._write("heartbeat", work)

    def release_search(self, search_id: int, driver: str) -> None:
        """Give the search up (only if ``driver`` holds it)."""
        driver = _checks.short_text(driver, "driver")

        def work(s: Session) -> None:
            row = self._search(s, search_id, for_update=True)
            if row.driver == driver:
                row.driver, row.driver_heartbeat_at = None, None

        self._write("release a search", work)

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
        start: bool = False,
        worker: str | None = None,
    ) -> TrialRecord:
        """Store a proposal (status ``proposed``) with the next trial number (0, 1, ...).

        ``start=True`` stores it already ``running`` on ``worker`` (as :meth:`start_trial` would),
        in the same transaction: one write less per trial for the search loop.
        """
        arch_json = _checks.arch(arch)
        arch_key = _checks.short_text(arch_key, "arch_key")
        proposer = _checks.short_text(proposer, "proposer")
        worker = _checks.optional_short_text(worker, "worker")
        info_json = _checks.json_object(info, "info")
        parent = None if parent is None else int(parent)

        def work(s: Session) -> TrialRecord:
            count = SearchModel.bump_counter(s, search_id, "trial_count")
            if count is None:
                raise NotFound(f"no search with id {search_id} in {self._db.safe_url}")
            row = TrialModel(
                search_id=search_id, number=count - 1, status=TrialStatus.PROPOSED.value, arch=arch_json,
                arch_key=str(arch_key), proposer=str(proposer), parent=parent, info=info_json, metrics={},
                attempts=0, created_at=_now(),
            )  # fmt: skip
            if start:
                row.status, row.started_at, row.heartbeat_at = _RUNNING, row.created_at, row.created_at
                row.attempts, row.worker = 1, worker
            s.add(row)
            s.flush()
            return row.to_record()

        return self._write("add a trial", work)

    def start_trial(self, search_id: int, number: int, *, worker: str | None = None) -> TrialRecord:
        """``proposed`` -> ``running``; sets started_at, heartbeat_at, attempts += 1."""
        worker = _checks.optional_short_text(worker, "worker")

        def work(s: Session) -> TrialRecord:
            row = self._trial(s, search_id, number, for_update=True)
            if row.status != TrialStatus.PROPOSED.value:
                name = self._search(s, search_id).name
                raise ValueError(f"trial {number} of search {name!r} is {row.status}, not proposed; cannot start it")
            now = _now()
            row.status, row.started_at, row.heartbeat_at = _RUNNING, now, now
            row.attempts += 1
            row.worker = worker
            return row.to_record()

        return self._write("start a trial", work)

    def report_step(
        self, search_id: int, number: int, step: int, metrics: Mapping[str, Any], value: float | None
    ) -> None:
        """Store (or replace) an intermediate report of a running trial."""
        metrics_json = _checks.json_object(metrics, "metrics")
        value = _checks.optional_float(value, "value")
        step = int(step)

        def work(s: Session) -> None:
            row = self._trial(s, search_id, number, for_update=True)
            if row.status == TrialStatus.PROPOSED.value:
                # A late report of an attempt that was requeued since: dropped, so that it cannot
                # mix with the next attempt's reports. (A report that arrives just after the
                # result, from a running or finished trial, is kept.)
                return
            existing = s.get(StepModel, (row.id, step))
            if existing is None:
                s.add(StepModel(trial_id=row.id, step=step, metrics=metrics_json, value=value, created_at=_now()))
            else:
                existing.metrics, existing.value, existing.created_at = metrics_json, value, _now()

        self._write("report a step", work)

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
        status = _checks.status(status)
        if not status.is_finished():
            raise ValueError(
                f"finish_trial needs a finished status (completed, failed, pruned, infeasible), got {status.value!r}"
            )
        metrics_json = _checks.json_object(metrics, "metrics")
        value = _checks.optional_float(value, "value")

        def work(s: Session) -> TrialRecord:
            row = self._trial(s, search_id, number, for_update=True)
            if TrialStatus(row.status).is_finished():
                if row.status == status.value:
                    return row.to_record()
                name = self._search(s, search_id).name
                raise ValueError(
                    f"trial {number} of search {name!r} is already {row.status}; cannot mark it {status.value}"
                )
            # From running, or straight from proposed (e.g. an infeasible proposal never starts).
            # The counter's UPDATE locks the search row (after the trial row: see the lock order).
            row.result_seq = SearchModel.bump_counter(s, search_id, "result_count")
            row.status, row.metrics, row.value, row.error = status.value, metrics_json, value, error
            row.finished_at = _now()
            return row.to_record()

        return self._write("finish a trial", work)

    def promote_trial(self, search_id: int, number: int, *, worker: str | None = None) -> TrialRecord:
        """A paused trial (``pruned`` with a :data:`CHECKPOINT_KEY` metric) -> ``running`` on ``worker``.

        Its metrics (the checkpoint's path among them) and reports stay as they are until it
        finishes again; ``attempts`` starts again at 1 (retries count per run).
        """
        worker = _checks.optional_short_text(worker, "worker")

        def work(s: Session) -> TrialRecord:
            row = self._trial(s, search_id, number, for_update=True)
            if row.status != TrialStatus.PRUNED.value or held_checkpoint(row.metrics) is None:
                name = self._search(s, search_id).name
                raise ValueError(
                    f"trial {number} of search {name!r} is {row.status} with no checkpoint; cannot promote it"
                )
            now = _now()
            row.status, row.started_at, row.heartbeat_at, row.finished_at = _RUNNING, now, now, None
            row.attempts, row.worker = 1, worker
            return row.to_record()

        return self._write("promote a trial", work)

    def requeue_trials(self, search_id: int, numbers: Iterable[int] | None = None) -> list[TrialRecord]:
        """``running`` -> ``proposed`` (all running trials of the search if ``numbers`` is None).

        Used on resume (orphans of a dead driver) and for retries. A promoted trial (one that
        still holds its :data:`CHECKPOINT_KEY`) goes back to ``pruned`` instead, paused at its
        checkpoint again, with the reports made after it dropped. Returns them by number.
        """
        wanted = None if numbers is None else sorted({int(n) for n in numbers})

        def work(s: Session) -> list[TrialRecord]:
            search = self._search(s, search_id)
            stmt = select(TrialModel).where(TrialModel.search_id == search_id).order_by(TrialModel.number)
            if wanted is None:
                stmt = stmt.where(TrialModel.status == _RUNNING)
            else:
                stmt = stmt.where(TrialModel.number.in_(wanted))
            rows = list(s.scalars(stmt.with_for_update()))
            if wanted is not None:
                missing = sorted(set(wanted) - {r.number for r in rows})
                if missing:
                    raise NotFound(f"search {search.name!r} has no trial {missing[0]}")
                # Listed trials that are no longer running (finished, or requeued already by
                # another driver) are left as they are and not returned.
                rows = [r for r in rows if r.status == _RUNNING]
            fresh = [r for r in rows if held_checkpoint(r.metrics) is None]
            for r in fresh:
                r.status, r.worker, r.started_at, r.heartbeat_at = TrialStatus.PROPOSED.value, None, None, None
            if fresh:  # the re-run starts from scratch: drop the old attempt's intermediate reports
                s.execute(delete(StepModel).where(StepModel.trial_id.in_([r.id for r in fresh])))
            for r in rows:
                if r in fresh:
                    continue
                r.status, r.worker, r.heartbeat_at, r.finished_at = TrialStatus.PRUNED.value, None, None, _now()
                after = int(r.metrics[CHECKPOINT_KEY].get("step", 0))
                s.execute(delete(StepModel).where(StepModel.trial_id == r.id, StepModel.step > after))
            return [r.to_record() for r in rows]

        return self._write("requeue trials", work)

    def get_trial(self, search_id: int, number: int) -> TrialRecord:
        """Raises :class:`NotFound` ("search 'x' has no trial 7")."""
        return self._read(lambda s: self._trial(s, search_id, number).to_record())

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
        A leading ``-`` ("-number", "-result_seq") reverses the order: newest first.
        """
        order = _checks.order(order)
        wanted = None if statuses is None else _checks.statuses(statuses)
        if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
            raise ValueError(f"limit must be None or >= 0, but got {limit!r}")
        stmt = select(TrialModel).where(TrialModel.search_id == search_id)
        if wanted is not None:
            stmt = stmt.where(TrialModel.status.in_(wanted))
        if after_seq is not None:
            stmt = stmt.where(TrialModel.result_seq > int(after_seq))
        key = TrialModel.number if order.endswith("number") else TrialModel.result_seq
        by = [key.desc(), TrialModel.number.desc()] if order.startswith("-") else [key, TrialModel.number]
        if key is TrialModel.result_seq:
            by.insert(0, TrialModel.result_seq.is_(None))  # trials without a result last, on every backend
        stmt = stmt.order_by(*by)
        if limit is not None:
            stmt = stmt.limit(int(limit))

        def work(s: Session) -> list[TrialRecord]:
            self._search(s, search_id)
            return [r.to_record() for r in s.scalars(stmt)]

        return self._read(work)

    def counts(self, search_id: int) -> dict[TrialStatus, int]:
        """Number of trials per status (every status present, zeros included)."""

        def work(s: Session) -> dict[TrialStatus, int]:
            self._search(s, search_id)
            rows = s.execute(
                select(TrialModel.status, func.count())
                .where(TrialModel.search_id == search_id)
                .group_by(TrialModel.status)
            )
            found = {status: n for status, n in rows}
            return {status: int(found.get(status.value, 0)) for status in TrialStatus}

        return self._read(work)

    def steps(self, search_id: int, number: int) -> list[StepRecord]:
        """Intermediate reports of a trial, by step."""

        def work(s: Session) -> list[StepRecord]:
            trial = self._trial(s, search_id, number)
            rows = s.scalars(select(StepModel).where(StepModel.trial_id == trial.id).order_by(StepModel.step))
            return [StepRecord(number, r.step, dict(r.metrics), r.value, r.created_at) for r in rows]

        return self._read(work)

    # -- proposer checkpoints -----------------------------------------------------------
    def save_checkpoint(self, search_id: int, result_seq: int, state: Mapping[str, Any]) -> None:
        """Store the proposer's state as it was after hearing results up to ``result_seq``.

        Keeps the few most recent checkpoints of the search.
        """
        state_json = _checks.json_object(state, "state")
        seq = int(result_seq)
        if seq < 0:
            raise ValueError(f"result_seq must be >= 0, but got {result_seq!r}")

        def work(s: Session) -> None:
            self._search(s, search_id)
            s.add(CheckpointModel(search_id=search_id, result_seq=seq, state=state_json, created_at=_now()))
            s.flush()
            keep = (
                select(CheckpointModel.id)
                .where(CheckpointModel.search_id == search_id)
                .order_by(CheckpointModel.result_seq.desc(), CheckpointModel.id.desc())
                .limit(KEEP_CHECKPOINTS)
            )
            s.execute(
                delete(CheckpointModel).where(
                    CheckpointModel.search_id == search_id, CheckpointModel.id.not_in(keep.scalar_subquery())
                )
            )

        self._write("save a checkpoint", work)

    def load_checkpoint(self, search_id: int) -> tuple[int, dict[str, Any]] | None:
        """The latest checkpoint: ``(result_seq, state)``, or None."""

        def work(s: Session) -> tuple[int, dict[str, Any]] | None:
            self._search(s, search_id)
            row = s.scalars(
                select(CheckpointModel)
                .where(CheckpointModel.search_id == search_id)
                .order_by(CheckpointModel.result_seq.desc(), CheckpointModel.id.desc())
                .limit(1)
            ).first()
            return None if row is None else (row.result_seq, dict(row.state))

        return self._read(work)


# -- helpers (none of them commits) ---------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _is_dead_here(holder: str) -> bool:
    """Whether ``holder`` ("host:pid") names a process on this host that no longer exists."""
    host, _, pid = holder.rpartition(":")
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit() or int(pid) <= 0:
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists, under another user
        return False
    return False
