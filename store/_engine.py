"""Engines and units of work: URL checks, SQLite pragmas, the session scope, retries.

:class:`Database` owns one engine. :meth:`Database.session` is the one session scope: it
commits, or rolls back and re-raises. :meth:`Database.run` runs a unit of work (a function of
the session) inside that scope, re-running the *whole* unit when the database says "try again"
(a ``with`` block cannot re-run its own body, so the retry loop wraps the scope), and turns every
database error into :class:`StorageError` with one line that hides passwords.

Retried: SQLite "database is locked" (after the 30 s busy timeout, with backoff; it never reaches
the user as such), and on other backends any ``OperationalError`` (a dropped connection, a
server restart, a deadlock or serialization failure), a few times with exponential backoff.
"""

from __future__ import annotations

import functools
import json
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

__all__ = ["Database", "one_line", "parse_url"]

T = TypeVar("T")

EXAMPLE = "e.g. 'sqlite:///automl.db' or 'postgresql+psycopg://user@host/db'"
SQLITE_BUSY_TIMEOUT_MS = 30_000
LOCKED_RETRIES = 6  # each after a full busy timeout; backoff 0.1 s doubling, capped at 2 s
DISCONNECT_RETRIES = 4  # backoff 0.2, 0.4, 0.8, 1.6 s
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

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        parsed = parse_url(url)
        self.url = parsed
        self.safe_url = _hide(parsed)
        self.read_only = read_only
        self.dialect_name = parsed.get_backend_name()
        self._connected_once = False
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
            if "connect_timeout" not in url.query:
                args["connect_timeout"] = 10
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

    def run(self, work: Callable[[Session], T], *, write: bool = False) -> T:
        """``work(session)`` in one transaction, re-run whole on a retryable database error."""
        attempt, waited = 0, 0.0
        while True:
            try:
                with self.session(write=write) as session:
                    return work(session)
            except (exc.DBAPIError, exc.DisconnectionError) as e:
                attempt += 1
                locked = self._is_locked(e)
                retries = LOCKED_RETRIES if locked else DISCONNECT_RETRIES
                if attempt > retries or not (locked or self._is_transient(e)):
                    raise StorageError(self._describe(e, locked, attempt, waited)) from e
                delay = min(2.0, 0.05 * 2**attempt) if locked else 0.1 * 2**attempt
                delay *= random.uniform(0.8, 1.2)  # de-synchronize processes that collided
                time.sleep(delay)
                waited += delay
            except exc.SQLAlchemyError as e:
                raise StorageError(f"database error in {self.safe_url}: {one_line(e)}") from e

    def _is_locked(self, e: exc.DBAPIError | exc.DisconnectionError) -> bool:
        message = str(getattr(e, "orig", e)).lower()
        return self.dialect_name == "sqlite" and ("database is locked" in message or "is busy" in message)

    def _is_transient(self, e: exc.DBAPIError | exc.DisconnectionError) -> bool:
        if isinstance(e, exc.DisconnectionError) or e.connection_invalidated:
            return True
        return self.dialect_name != "sqlite" and isinstance(e, exc.OperationalError)

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


def _on_sqlite_begin(connection: Connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")
