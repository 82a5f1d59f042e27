"""Alembic environment for the automl store.

At runtime ``store._schema`` runs the migrations itself: it passes an open connection (inside a
transaction that it commits) through ``config.attributes["connection"]``; no alembic.ini is
needed. For development (``alembic revision --autogenerate``) a plain ``sqlalchemy.url`` in the
config works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import store  # noqa: F401 - imports every module that declares tables on Base.metadata
from store._models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("the automl store does not support offline (--sql) migrations")

connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
