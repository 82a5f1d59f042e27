"""Result queries: completed_trials and decision_counts, kept by triggers; trials(search_id, parent).

See ``store._query_tables`` for what the tables hold. The triggers follow every insert, update
and delete of a trial that is or was ``completed``: on SQLite row triggers whose WHEN clause
skips the other rows (heartbeats of running trials fire nothing); on PostgreSQL statement
triggers over transition tables that filter those rows. On SQLite and PostgreSQL only: on another
database the tables are created but stay empty, and ``store.queries`` refuses to run there.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Written out in full: a migration is frozen. A test checks that store.queries computes the same
# option text (the query side of decision statistics) as these triggers.
_COSTS = ("params", "flops", "latency_ms")
_COLUMNS = "trial_id, search_id, number, result_seq, value, params, flops, latency_ms"

# -- SQLite -------------------------------------------------------------------------------------
# json_each gives SQL values: a JSON string is turned back into JSON text with json_quote, true /
# false / null keep their JSON spelling (json_each would give 1 / 0 / NULL), numbers and arrays
# are their text.
_SQLITE_OPTION = (
    "CASE WHEN j.type IN ('true', 'false', 'null') THEN j.type "
    "WHEN j.type = 'text' THEN json_quote(j.value) ELSE CAST(j.value AS TEXT) END"
)


def _sqlite_num(row: str, key: str) -> str:
    path = f"{row}.metrics, '$.{key}'"
    return f"CASE WHEN json_type({path}) IN ('integer', 'real') THEN json_extract({path}) END"


def _sqlite_add(row: str, guard: str = "") -> str:
    costs = ", ".join(_sqlite_num(row, k) for k in _COSTS)
    where = f" WHERE {guard}" if guard else ""
    return f"""
    INSERT INTO completed_trials ({_COLUMNS})
    SELECT {row}.id, {row}.search_id, {row}.number, {row}.result_seq, {row}.value, {costs}{where};
    INSERT INTO decision_counts (search_id, name, value, completed)
    SELECT {row}.search_id, j.key, {_SQLITE_OPTION}, 1 FROM json_each({row}.arch) AS j WHERE {guard or "true"}
    ON CONFLICT (search_id, name, value) DO UPDATE SET completed = completed + 1;"""


def _sqlite_remove(row: str, guard: str = "") -> str:
    extra = f"{guard} AND " if guard else ""
    return f"""
    DELETE FROM completed_trials WHERE trial_id = {row}.id;
    UPDATE decision_counts SET completed = completed - 1
    WHERE {extra}search_id = {row}.search_id
      AND (name, value) IN (SELECT j.key, {_SQLITE_OPTION} FROM json_each({row}.arch) AS j);"""


_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER trg_trials_completed_insert AFTER INSERT ON trials
    WHEN NEW.status = 'completed' BEGIN {_sqlite_add("NEW")}
    END""",
    f"""CREATE TRIGGER trg_trials_completed_update AFTER UPDATE ON trials
    WHEN OLD.status = 'completed' OR NEW.status = 'completed' BEGIN
    {_sqlite_remove("OLD", "OLD.status = 'completed'")}
    {_sqlite_add("NEW", "NEW.status = 'completed'")}
    END""",
    f"""CREATE TRIGGER trg_trials_completed_delete AFTER DELETE ON trials
    WHEN OLD.status = 'completed' BEGIN {_sqlite_remove("OLD")}
    END""",
)

# -- PostgreSQL ---------------------------------------------------------------------------------
# Statement-level triggers over transition tables: one aggregated change per statement. (Row-level
# upserts of the same few counter rows in one transaction would leave ever longer chains of row
# versions to walk: quadratic for a bulk insert or a delete_search of 100k trials.) The arch column
# is json (not jsonb), so json_each's values keep the text they were stored with.


def _pg_num(row: str, key: str) -> str:
    number = f"({row}.metrics ->> '{key}')::double precision"
    return f"CASE WHEN json_typeof({row}.metrics -> '{key}') = 'number' THEN {number} END"


_PG_REMOVE = """
    DELETE FROM completed_trials AS c USING old_rows AS o WHERE c.trial_id = o.id AND o.status = 'completed';
    UPDATE decision_counts AS d SET completed = d.completed - x.n
    FROM (SELECT o.search_id, j.key, j.value::text AS value, count(*) AS n
          FROM old_rows AS o, json_each(o.arch) AS j WHERE o.status = 'completed' GROUP BY 1, 2, 3) AS x
    WHERE d.search_id = x.search_id AND d.name = x.key AND d.value = x.value;"""

_PG_ADD = f"""
    INSERT INTO completed_trials ({_COLUMNS})
    SELECT n.id, n.search_id, n.number, n.result_seq, n.value, {", ".join(_pg_num("n", k) for k in _COSTS)}
    FROM new_rows AS n WHERE n.status = 'completed';
    INSERT INTO decision_counts (search_id, name, value, completed)
    SELECT n.search_id, j.key, j.value::text, count(*)
    FROM new_rows AS n, json_each(n.arch) AS j WHERE n.status = 'completed' GROUP BY 1, 2, 3
    ON CONFLICT (search_id, name, value) DO UPDATE SET completed = decision_counts.completed + EXCLUDED.completed;"""

_PG_FUNCTIONS = {
    "insert": _PG_ADD,
    "update": _PG_REMOVE + _PG_ADD,  # a completed trial updated again: taken out, then put back
    "delete": _PG_REMOVE,
}
_PG_TABLES = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}


def _pg_statements() -> list[str]:
    out = []
    for event, body in _PG_FUNCTIONS.items():
        out.append(
            f"CREATE FUNCTION automl_trials_after_{event}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN{body}\n  RETURN NULL;\nEND $$"
        )
        out.append(
            f"CREATE TRIGGER trg_trials_completed_{event} AFTER {event.upper()} ON trials "
            f"REFERENCING {_PG_TABLES[event]} FOR EACH STATEMENT EXECUTE FUNCTION automl_trials_after_{event}()"
        )
    return out


def _backfill(dialect: str) -> None:
    if dialect == "sqlite":
        costs, option = ", ".join(_sqlite_num("t", k) for k in _COSTS), _SQLITE_OPTION
    else:
        costs, option = ", ".join(_pg_num("t", k) for k in _COSTS), "j.value::text"
    op.execute(
        f"INSERT INTO completed_trials ({_COLUMNS}) "
        f"SELECT t.id, t.search_id, t.number, t.result_seq, t.value, {costs} "
        "FROM trials AS t WHERE t.status = 'completed'"
    )
    op.execute(
        "INSERT INTO decision_counts (search_id, name, value, completed) "
        f"SELECT t.search_id, j.key, {option}, count(*) FROM trials AS t, json_each(t.arch) AS j "
        "WHERE t.status = 'completed' GROUP BY t.search_id, j.key, 3"
    )


def upgrade() -> None:
    op.create_table(
        "completed_trials",
        sa.Column("trial_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("result_seq", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("params", sa.Float(), nullable=True),
        sa.Column("flops", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("trial_id", name="pk_completed_trials"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_completed_trials_trial_id_trials", ondelete="CASCADE"
        ),
    )
    for columns in (("number", "value"), ("result_seq", "value"), ("value",), *((c, "value") for c in _COSTS)):
        name = "ix_completed_trials_search_id_" + "_".join(columns)
        op.create_index(name, "completed_trials", ["search_id", *columns])
    op.create_table(
        "decision_counts",
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("search_id", "name", "value", name="pk_decision_counts"),
        sa.ForeignKeyConstraint(
            ["search_id"], ["searches.id"], name="fk_decision_counts_search_id_searches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_trials_search_id_parent", "trials", ["search_id", "parent"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in _pg_statements():
            op.execute(statement)
    if dialect in ("sqlite", "postgresql"):
        _backfill(dialect)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name in ("insert", "update", "delete"):
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS trg_trials_completed_{name}")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS trg_trials_completed_{name} ON trials")
    if dialect == "postgresql":
        for event in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS automl_trials_after_{event}()")
    op.drop_index("ix_trials_search_id_parent", table_name="trials")
    op.drop_table("decision_counts")
    op.drop_table("completed_trials")
