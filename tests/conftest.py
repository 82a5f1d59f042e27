"""Shared fixtures: a private PostgreSQL schema per test.

``pg_url`` is a SQLAlchemy URL whose connections see only a fresh schema ``automl_t_<hex>``
(``?options=-csearch_path%3D<schema>``; alembic_version and the trigger functions land there
too), dropped with CASCADE after the test. The server comes from ``AUTOML_TEST_POSTGRES_URL``
(default: trust auth on 127.0.0.1:5432, database ``test``). When it cannot be reached the tests
that use it are skipped, except under ``CI=true``, where they fail.

PostgreSQL tests are hermetic: they create everything in their own schema and look only there,
never at ``public`` or at what else lives on the server (an automl database in ``public``, other
test runs' schemas), so they pass on a shared server and leave nothing behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

try:
    import psycopg
except ImportError:  # pragma: no cover - psycopg is a dependency
    psycopg = None

PG_SERVER_URL = os.environ.get("AUTOML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL (query options kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server URL, once checked reachable (skip, or fail under CI=true)."""
    shown = make_url(PG_SERVER_URL).render_as_string(hide_password=True)
    reason = "psycopg is not installed"
    if psycopg is not None:
        try:
            with psycopg.connect(pg_conninfo(PG_SERVER_URL), connect_timeout=3):
                return PG_SERVER_URL
        except psycopg.Error as e:
            reason = " ".join(str(e).split())
    message = f"PostgreSQL at {shown} is not reachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: PostgreSQL tests are required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _pg_superuser(pg_server: str) -> Iterator[psycopg.Connection]:
    """One autocommit connection that creates and drops the test schemas."""
    with psycopg.connect(pg_conninfo(pg_server), autocommit=True, application_name="automl_test_setup") as conn:
        yield conn


@pytest.fixture
def pg_schema(_pg_superuser: psycopg.Connection) -> Iterator[str]:
    """A fresh schema, dropped (with everything in it) after the test."""
    schema = f"automl_t_{secrets.token_hex(6)}"
    _pg_superuser.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        # Connections a test left open (their application_name is the schema) would hold locks.
        _pg_superuser.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            [schema],
        )
        _pg_superuser.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url(pg_server: str, pg_schema: str) -> str:
    """A SQLAlchemy URL on the test's own schema; its connections' application_name is the schema."""
    # synchronous_commit=off: commits do not wait for the WAL flush (fast tests; durability is
    # not under test). Both settings apply to every connection the store opens.
    options = f"-csearch_path={pg_schema} -csynchronous_commit=off"
    url = make_url(pg_server).update_query_dict({"options": options, "application_name": pg_schema})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_admin(pg_url: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit psycopg connection to the test's schema (not counted as the store's)."""
    with psycopg.connect(pg_conninfo(pg_url), autocommit=True, application_name="automl_test_admin") as conn:
        yield conn
