"""Opening a database: URLs, migrations, schema revisions, read-only mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from store import NotFound, SchemaError, SearchConfig, StorageError, Store, TrialStatus
from store._models import Base
from store._schema import alembic_config, head_revision
from tests.store._helpers import run_sql

TABLES = {"alembic_version", "searches", "trials", "trial_steps", "checkpoints"}


@pytest.mark.parametrize("url", ["not a url", "foo://x", "", "sqlite:x.db", "postgresql+nodriver://u@h/db"])
def test_malformed_url_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError) as e:
        Store(url)
    message = str(e.value)
    assert "\n" not in message
    assert repr(url) in message and "sqlite:///automl.db" in message


def test_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StorageError) as e:
        Store("postgresql+psycopg://someone:s3cret@127.0.0.1:1/db")
    message = str(e.value)
    assert message.startswith("cannot connect to postgresql+psycopg://someone:***@127.0.0.1:1/db")
    assert "s3cret" not in message and "\n" not in message


def test_default_url_is_automl_db_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        assert store.url == "sqlite:///automl.db"
    assert (tmp_path / "automl.db").is_file()


def test_sqlite_creates_missing_directories_and_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'automl.db'}"
    with Store(url) as store, store._db.session() as s:
        pragmas = ("journal_mode", "foreign_keys", "busy_timeout")
        assert [s.execute(text(f"PRAGMA {p}")).scalar() for p in pragmas] == ["wal", 1, 30000]
        assert s.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_fresh_database_is_at_head_and_matches_the_models(store: Store, store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
            context = MigrationContext.configure(conn)
            assert context.get_current_heads() == (head_revision(),)
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_older_database_is_upgraded(store_url: str) -> None:
    with Store(store_url):
        pass
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert not (TABLES - {"alembic_version"}) & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    with Store(store_url) as store:
        store.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    assert run_sql(store_url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_newer_schema_is_refused(store_url: str) -> None:
    with Store(store_url):
        pass
    run_sql(store_url, "UPDATE alembic_version SET version_num = 'f00d_future'")
    for read_only in (False, True):
        with pytest.raises(SchemaError) as e:
            Store(store_url, read_only=read_only)
        assert str(e.value) == (
            f"database {store_url} has schema revision f00d_future, newer than this automl knows "
            f"(head {head_revision()}); upgrade automl"
        )


def test_someone_elses_database_is_refused(store_url: str) -> None:
    run_sql(store_url, "CREATE TABLE trials (id INTEGER PRIMARY KEY, payload TEXT)")
    with pytest.raises(SchemaError, match=r"has tables \(trials\) but no automl schema revision"):
        Store(store_url)


def test_read_only_sqlite_needs_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(NotFound) as e:
        Store(f"sqlite:///{path}", read_only=True)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not path.exists()


def test_read_only_refuses_an_empty_database(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        run_sql(store_url, "CREATE TABLE unrelated (x INTEGER)")
    with pytest.raises(SchemaError, match="no automl tables; open it once without read_only"):
        Store(store_url, read_only=True)


def test_read_only_reads_and_refuses_writes(store_url: str) -> None:
    with Store(store_url) as store:
        search = store.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
        store.add_trial(search.id, arch={}, arch_key="k", proposer="p")
    with Store(store_url, read_only=True) as ro:
        assert ro.get_search("a") == search
        assert ro.counts(search.id)[TrialStatus.PROPOSED] == 1
        writes = [
            lambda: ro.create_search("b", SearchConfig(space="toy", strategy="random", objectives=("acc",))),
            lambda: ro.add_trial(search.id, arch={}, arch_key="k", proposer="p"),
            lambda: ro.finish_trial(search.id, 0, TrialStatus.FAILED),
            lambda: ro.acquire_search(search.id, "me:1"),
            lambda: ro.save_checkpoint(search.id, 0, {}),
            lambda: ro.delete_search("a"),
        ]
        for write in writes:
            with pytest.raises(StorageError, match="open read-only"):
                write()
        # The database itself refuses too, not only the Store's methods.
        with pytest.raises(StorageError, match=r"read-only|readonly"):
            ro._db.run(lambda s: s.execute(text("DELETE FROM trials")), write=True)
    with Store(store_url) as store:
        assert store.counts(search.id)[TrialStatus.PROPOSED] == 1


@pytest.mark.postgres
def test_search_path_option_puts_everything_in_the_schema(pg_url: str, pg_schema: str, pg_admin) -> None:  # type: ignore[no-untyped-def]
    # Hermetic: only the test's own schema is looked at. Another automl database in ``public``,
    # or other tests' schemas, may live on the same server at the same time.
    name = f"only-in-{pg_schema}"
    with Store(pg_url) as store:
        store.create_search(name, SearchConfig(space="toy", strategy="random", objectives=("acc",)))
        query = text("SELECT current_schema(), current_setting('search_path')")
        where = store._db.run(lambda s: s.execute(query).all())
    assert where == [(pg_schema, pg_schema)]  # unqualified names resolve to the schema, and only there
    tables = pg_admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [pg_schema]
    ).fetchall()
    assert {t for (t,) in tables} >= TABLES | {"completed_trials", "decision_counts"}
    functions = pg_admin.execute(
        "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname LIKE 'automl%%'",
        [pg_schema],
    ).fetchall()
    assert len(functions) == 3  # the trigger functions, too
    assert pg_admin.execute(f'SELECT name FROM "{pg_schema}".searches').fetchall() == [(name,)]
    assert pg_admin.execute(f'SELECT version_num FROM "{pg_schema}".alembic_version').fetchall() == [(head_revision(),)]


def test_in_memory_sqlite_works() -> None:
    with Store("sqlite://") as store:
        search = store.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
        assert store.add_trial(search.id, arch={}, arch_key="k", proposer="p").number == 0
    with pytest.raises(ValueError, match="read_only needs a database file"):
        Store("sqlite://", read_only=True)
