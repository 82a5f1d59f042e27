"""Schema revisions: bring a database to the head Alembic revision, or refuse it in one line."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from store._errors import SchemaError
from store._models import Base

__all__ = ["alembic_config", "head_revision", "prepare"]

MIGRATIONS = Path(__file__).with_name("_migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An in-memory Alembic config (no alembic.ini) that runs on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The head revision and every revision this code knows (the files do not change at runtime)."""
    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head() or "", frozenset(rev.revision for rev in script.walk_revisions())


def head_revision() -> str:
    return _revisions()[0]


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def prepare(connection: Connection, safe_url: str, *, read_only: bool) -> None:
    """Upgrade the database to head (or, read-only, check it is there). Runs in the caller's
    transaction, which the caller commits; never commits itself.
    """
    head, known = _revisions()
    if _current(connection) == (head,):
        return
    if connection.dialect.name == "postgresql" and not read_only:
        # Two processes opening one fresh database must not both create the tables: wait for
        # the other one, then look again.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('automl-schema:' || coalesce(current_schema(), '')))")
        )
    current = _current(connection)
    if current == (head,):
        return
    ours = set(Base.metadata.tables)
    tables = set(inspect(connection).get_table_names())
    unknown = [rev for rev in current if rev not in known]
    if unknown and "searches" not in tables:
        raise SchemaError(f"database {safe_url} has revision {unknown[0]} and no automl tables; not an automl db")
    if unknown:
        raise SchemaError(
            f"database {safe_url} has schema revision {unknown[0]}, newer than this automl knows "
            f"(head {head}); upgrade automl"
        )
    if not current and tables & ours:
        found = ", ".join(sorted(tables & ours))
        raise SchemaError(f"database {safe_url} has tables ({found}) but no automl schema revision; not an automl db")
    if read_only and not current:
        raise SchemaError(f"database {safe_url} has no automl tables; open it once without read_only to create them")
    if read_only:
        raise SchemaError(
            f"database {safe_url} has schema revision {current[0]}, older than {head}; "
            "open it once without read_only to upgrade it"
        )
    command.upgrade(alembic_config(connection), "head")
