"""Engines and units of work: URL checks, SQLite pragmas, the session scope, retries.

:class:`Database` owns one engine. :meth:`Database.session` is the one session scope: it
commits, or rolls back and re-raises. :meth:`Database.run` runs a unit of work (a function of
the session) inside that scope, re-running the *whole* unit when the database says "try again"
(a ``with`` block cannot re-run its own body, so the retry loop wraps the scope), and turns every
database error into :class:`StorageError` with one line that hides passwords.

Retried:

- SQLite "database is locked" (after the 30 s busy timeout, with backoff; it never reaches the
  user as such).
- A database server that cannot be reached: connection refused, reset or closed by the server,
  the server shutting down or starting up (a restart, a failover), a connection SQLAlchemy found
  invalidated. Re-tried with exponential backoff and jitter (0.1 s doubling, capped at 5 s) for
  the *outage window*: ``Database(url, outage_seconds=...)``, else the environment variable
  ``AUTOML_DB_OUTAGE_SECONDS``, else 60 s (0 turns the retries off). The window counts from the
  first failure and is shared by every unit of work of the :class:`Database`; any success ends
  the outage (so does 30 s without a try). After it, :class:`StorageError` names the database and
  how long it was unreachable, and further units try once until the database answers again (so
  clean-up code that runs after an outage fails fast instead of waiting out another window).
- Another server-side ``OperationalError`` (a deadlock, a serialization failure): a few times.

A database that cannot be reached at the very first connection is not retried: a wrong URL, host
or port fails at once with "cannot connect to <url>".
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from store._errors import NotFound, StorageError

__all__ = ["Database", "is_outage", "one_line", "outage_window", "parse_url"]

T = TypeVar("T")

EXAMPLE = "e.g. 'sqlite:///automl.db' or 'postgresql+psycopg://user@host/db'"
SQLITE_BUSY_TIMEOUT_MS = 30_000
LOCKED_RETRIES = 6  # each after a full busy timeout; backoff 0.1 s doubling, capped at 2 s
CONFLICT_RETRIES = 4  # deadlock, serialization failure: backoff 0.2, 0.4, 0.8, 1.6 s
OUTAGE_ENV = "AUTOML_DB_OUTAGE_SECONDS"
DEFAULT_OUTAGE_SECONDS = 60.0  # longer than a server restart or a managed failover takes
OUTAGE_FIRST_WAIT, OUTAGE_MAX_WAIT = 0.1, 5.0  # backoff while the server is unreachable (s)
OUTAGE_FORGET = 30.0  # a try that begins this long after the last failure starts a new outage (s)
# SQLSTATEs of a server that went away: class 08 (connection exception), admin / crash shutdown,
# "the database system is starting up" (PostgreSQL).
_OUTAGE_SQLSTATES = ("57P01", "57P02", "57P03")
# The same, as drivers word them when there is no SQLSTATE (the connection itself failed).
_OUTAGE_WORDS = (
    "connection refused",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "could not connect",
    "timeout expired",
    "the database system is",
    "no connection to the server",
    "connection is closed",
    "connection is lost",
    "connection already closed",
    "broken pipe",
    "eof detected",
    "could not receive data",
    "could not send data",
    "network is unreachable",
    "no route to host",
    "server has gone away",
    "lost connection",
)
_WRITE_OPTION = "automl_write"  # connection execution option: this unit of work writes

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_connections_in_child() -> None:
    """A forked child must not use its parent's sockets and file handles; it opens its own."""
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_in_child)


def one_line(error: BaseException | str) -> str:
    """The first non-empty line of an error message, whitespace collapsed."""
    text = str(error)
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(error).__name__ if isinstance(error, BaseException) else ""


def parse_url(url: str | URL) -> URL:
    """A SQLAlchemy URL with a known dialect, or ``ValueError`` naming the string and an example."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError, TypeError) as e:
        raise ValueError(f"{url!r} is not a database URL ({one_line(e)}); {EXAMPLE}") from None
    try:
        dialect = parsed.get_dialect()
    except exc.NoSuchModuleError:
        raise ValueError(f"{_hide(parsed)!r}: unknown database kind {parsed.drivername!r}; {EXAMPLE}") from None
    if getattr(dialect, "is_async", False):
        raise ValueError(f"{_hide(parsed)!r} uses an asyncio driver; use a plain one, {EXAMPLE}")
    return parsed


def _hide(url: URL) -> str:
    return url.render_as_string(hide_password=True)


class Database:
    """One engine, its session scope and its retry policy."""

    def __init__(self, url: str, *, read_only: bool = False, outage_seconds: float | None = None) -> None:
        parsed = parse_url(url)
        self.url = parsed
        self.safe_url = _hide(parsed)
        self.read_only = read_only
        self.dialect_name = parsed.get_backend_name()
        self.outage_seconds = outage_window(outage_seconds)
        self._connected_once = False
        self._down_since: float | None = None  # time.monotonic() of the first failure of an outage
        self._last_failure = 0.0  # time.monotonic() of its latest failure
        self._memory = self.dialect_name == "sqlite" and parsed.database in (None, "", ":memory:")
        # An in-memory SQLite database is one shared connection: one unit of work at a time.
        self._serial: threading.Lock | nullcontext[None] = threading.Lock() if self._memory else nullcontext()
        kwargs: dict[str, Any] = {"json_serializer": functools.partial(json.dumps, allow_nan=False)}
        if self.dialect_name == "sqlite":
            parsed = self._sqlite_url(parsed)
            if self._memory:
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs.update(pool_pre_ping=True, connect_args=self._server_connect_args(parsed))
        try:
            self.engine = create_engine(parsed, **kwargs)
        except ImportError as e:
            raise ValueError(
                f"{self.safe_url!r}: its driver is not installed ({one_line(e)}); install it or use a URL {EXAMPLE}"
            ) from None
        except exc.ArgumentError as e:
            raise ValueError(f"{self.safe_url!r}: {one_line(e)}; {EXAMPLE}") from None
        if self.dialect_name == "sqlite":
            event.listen(self.engine, "connect", self._on_sqlite_connect)
            event.listen(self.engine, "begin", _on_sqlite_begin)
        _engines.add(self.engine)
        self._pinned = threading.local()  # .session: the snapshot's session, for reads in this thread

    # -- engine set-up ---------------------------------------------------------------------
    def _sqlite_url(self, url: URL) -> URL:
        if self._memory:
            if self.read_only:
                raise ValueError(f"{self.safe_url!r}: read_only needs a database file, not an in-memory one")
            return url
        if str(url.query.get("uri", "")).lower() in ("true", "1"):  # the caller's own file: URI
            return url.update_query_dict({"mode": "ro"}) if self.read_only else url
        path = Path(url.database or "")
        if self.read_only:
            if not path.is_file():
                raise NotFound(f"no database file {path} ({self.safe_url}); run a search first, or check the path")
            # The file must exist and is never written: SQLite's read-only URI mode.
            return url.set(database=path.resolve().as_uri()).update_query_dict({"uri": "true", "mode": "ro"})
        path.parent.mkdir(parents=True, exist_ok=True)
        # Absolute, so that a later chdir of the process cannot make new connections open another file.
        return url.set(database=str(path.resolve()))

    def _server_connect_args(self, url: URL) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.dialect_name == "postgresql":
            # A server that vanished without closing its connections (a failover, a cut cable)
            # is noticed within a minute by TCP keepalives, and a connect attempt gives up in 10 s.
            defaults = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10}
            args.update({k: v for k, v in defaults.items() if k not in url.query})
            if self.read_only:
                options = url.query.get("options", "")
                options = " ".join(options) if isinstance(options, tuple) else options
                args["options"] = f"{options} -c default_transaction_read_only=on".strip()
        return args

    def _on_sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (see _on_sqlite_begin), so pysqlite must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if self.read_only:
                cursor.execute("PRAGMA query_only = ON")
            elif not self._memory:
                cursor.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
                cursor.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode, much faster
        finally:
            cursor.close()

    # -- units of work ---------------------------------------------------------------------
    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed at the end, rolled back on any exception.

        ``write=True`` takes SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``), so that a
        transaction that reads then writes waits its turn instead of failing half-way.
        """
        with self._serial, self._connect() as connection:
            if write:
                connection.execution_options(**{_WRITE_OPTION: True})
            with Session(bind=connection, expire_on_commit=False, autoflush=True) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise

    def _connect(self) -> Connection:
        try:
            connection = self.engine.connect()
        except exc.DBAPIError as e:
            if not self._connected_once and not self._is_locked(e):  # never reachable: say so, at once
                raise StorageError(f"cannot connect to {self.safe_url}: {one_line(e.orig or e)}") from e
            raise
        self._connected_once = True
        return connection

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run every read of this thread inside the block in one read transaction.

        So the figures of one page or one report agree with each other while a search writes.
        PostgreSQL gets REPEATABLE READ (one snapshot for all statements); SQLite's deferred
        transaction holds its snapshot from the first read on. Nested snapshots join the outer one.
        """
        if getattr(self._pinned, "session", None) is not None:
            yield
            return
        with self._serial, self._connect() as connection:
            if self.dialect_name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with Session(bind=connection, expire_on_commit=False, autoflush=False) as session:
                self._pinned.session = session
                try:
                    yield
                finally:
                    self._pinned.session = None
                    session.rollback()  # it only read

    def run(self, work: Callable[[Session], T], *, write: bool = False) -> T:
        """``work(session)`` in one transaction, re-run whole on a retryable database error.

        Inside :meth:`snapshot`, reads run in the snapshot's transaction (writes are refused).
        """
        pinned = getattr(self._pinned, "session", None)
        if pinned is not None:
            if write:
                raise StorageError(f"{self.safe_url}: cannot write inside a read snapshot")
            try:
                return work(pinned)
            except exc.SQLAlchemyError as e:
                raise StorageError(f"database error in {self.safe_url}: {one_line(e)}") from e
        attempt, waited = 0, 0.0
        while True:
            begun = time.monotonic()
            try:
                with self.session(write=write) as session:
                    result = work(session)
                self._down_since = None  # the database answers: any outage is over
                return result
            except (exc.DBAPIError, exc.DisconnectionError) as e:
                attempt += 1
                kind = self._kind(e)
                if kind == "outage":
                    delay = self._outage_wait(e, attempt, begun)
                elif kind == "locked" and attempt <= LOCKED_RETRIES:
                    delay = min(2.0, 0.05 * 2**attempt) * random.uniform(0.8, 1.2)
                elif kind == "conflict" and attempt <= CONFLICT_RETRIES:
                    delay = 0.1 * 2**attempt * random.uniform(0.8, 1.2)  # de-synchronize the colliders
                else:
                    raise StorageError(self._describe(e, kind == "locked", attempt, waited)) from e
                time.sleep(delay)
                waited += delay
            except exc.SQLAlchemyError as e:
                raise StorageError(f"database error in {self.safe_url}: {one_line(e)}") from e

    def _outage_wait(self, e: exc.DBAPIError | exc.DisconnectionError, attempt: int, begun: float) -> float:
        """How long to wait before the next try (that began at ``begun``), or :class:`StorageError`
        once the outage window is over."""
        if self._down_since is None or begun - self._last_failure > OUTAGE_FORGET:
            self._down_since = begun  # a new outage (nobody had tried for a while: not the old one)
        now = self._last_failure = time.monotonic()
        elapsed = now - self._down_since
        left = self.outage_seconds - elapsed
        if left <= 0:
            tries = f"{attempt} {'try' if attempt == 1 else 'tries'}"
            raise StorageError(
                f"database {self.safe_url} unreachable for {elapsed:.1f} s ({tries}; outage window "
                f"{self.outage_seconds:g} s, set by outage_seconds or ${OUTAGE_ENV}): "
                f"{one_line(getattr(e, 'orig', None) or e)}"
            ) from e
        # Exponential backoff with jitter, so that many drivers do not all knock at once when the
        # server comes back; the last try falls at the end of the window.
        wait = min(OUTAGE_MAX_WAIT, OUTAGE_FIRST_WAIT * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        return min(wait, left)

    def _is_locked(self, e: exc.DBAPIError | exc.DisconnectionError) -> bool:
        message = str(getattr(e, "orig", e)).lower()
        return self.dialect_name == "sqlite" and ("database is locked" in message or "is busy" in message)

    def _kind(self, e: exc.DBAPIError | exc.DisconnectionError) -> str | None:
        """What went wrong: "locked" (SQLite), "outage" (the server went away), "conflict" (another
        server-side ``OperationalError``: deadlock, serialization failure), or None (not retried)."""
        if self._is_locked(e):
            return "locked"
        if self.dialect_name == "sqlite":
            return "conflict" if isinstance(e, exc.DisconnectionError) or e.connection_invalidated else None
        if is_outage(e):
            return "outage"
        return "conflict" if isinstance(e, exc.OperationalError) else None

    def _describe(self, e: exc.DBAPIError | exc.DisconnectionError, locked: bool, attempt: int, waited: float) -> str:
        if locked:
            total = attempt * SQLITE_BUSY_TIMEOUT_MS / 1000 + waited
            return (
                f"database {self.safe_url} stayed locked by another process for over {total:.0f} s; "
                "is a process stuck holding it?"
            )
        reason = one_line(getattr(e, "orig", None) or e)
        if self.read_only and "read" in reason.lower() and "only" in reason.lower():
            return f"database {self.safe_url} is open read-only: {reason}"
        tries = f" (after {attempt} tries)" if attempt > 1 else ""
        return f"database error in {self.safe_url}{tries}: {reason}"

    def close(self) -> None:
        self.engine.dispose()


def outage_window(seconds: float | None) -> float:
    """The outage window in seconds: ``seconds``, else ``$AUTOML_DB_OUTAGE_SECONDS``, else 60."""
    if seconds is None:
        text = os.environ.get(OUTAGE_ENV, "").strip()
        if not text:
            return DEFAULT_OUTAGE_SECONDS
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        where, got = f"${OUTAGE_ENV}", text
    else:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"outage_seconds must be a number of seconds, but got {seconds!r}")
        value, where, got = float(seconds), "outage_seconds", seconds
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{where} must be a number of seconds >= 0, but got {got!r}")
    return value


def is_outage(e: BaseException) -> bool:
    """Whether a database error says the server went away (rather than refused the statement)."""
    if isinstance(e, exc.DisconnectionError) or getattr(e, "connection_invalidated", False):
        return True
    orig = getattr(e, "orig", None) or e
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    if state.startswith("08") or state in _OUTAGE_SQLSTATES:
        return True
    if state:  # the server answered with another error: it is there
        return False
    message = str(orig).lower()
    return any(words in message for words in _OUTAGE_WORDS)


def _on_sqlite_begin(connection: Connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")
