"""Several processes on one database, dropped connections, a locked SQLite file."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import store._engine
from store import SearchConfig, Store, TrialStatus
from tests.store._helpers import add_and_finish, open_store, run_sql

PROCESSES, PER_PROCESS = 4, 50


@pytest.fixture(scope="module")
def pool() -> Iterator[multiprocessing.pool.Pool]:
    """Spawned worker processes (no fork: each opens its own connections), shared by the tests."""
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as p:
        p.map(open_store, ["sqlite://"] * PROCESSES)  # wait until every worker has imported the store
        yield p


def test_processes_never_collide(pool: multiprocessing.pool.Pool, store_url: str) -> None:
    with Store(store_url) as s:
        search = s.create_search("race", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    jobs = [(store_url, search.id, PER_PROCESS, w) for w in range(PROCESSES)]
    results = [pair for chunk in pool.starmap(add_and_finish, jobs) for pair in chunk]
    total = PROCESSES * PER_PROCESS
    assert sorted(n for n, _ in results) == list(range(total))
    assert sorted(seq for _, seq in results) == list(range(1, total + 1))
    with Store(store_url) as s:
        assert s.counts(search.id)[TrialStatus.COMPLETED] == total
        by_seq = s.trials(search.id, order="result_seq")
        assert [t.result_seq for t in by_seq] == list(range(1, total + 1))
        # Each process saw its own results in increasing order.
        for w in range(PROCESSES):
            seqs = [t.result_seq for t in by_seq if t.arch["worker"] == w]
            assert seqs == sorted(seqs) and len(seqs) == PER_PROCESS


def test_processes_opening_a_fresh_database_at_once(pool: multiprocessing.pool.Pool, store_url: str) -> None:
    assert pool.starmap(open_store, [(store_url,)] * PROCESSES) == [0] * PROCESSES
    assert len(run_sql(store_url, "SELECT version_num FROM alembic_version")) == 1


@pytest.mark.postgres
def test_dropped_connection_between_calls_is_transparent(pg_url: str, pg_schema: str, pg_admin) -> None:  # type: ignore[no-untyped-def]
    with Store(pg_url) as s:
        search = s.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
        s.add_trial(search.id, arch={}, arch_key="k", proposer="p")
        killed = pg_admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [pg_schema]
        ).fetchall()
        assert killed and all(ok for (ok,) in killed)
        assert s.add_trial(search.id, arch={}, arch_key="k", proposer="p").number == 1
        assert s.finish_trial(search.id, 1, TrialStatus.COMPLETED, value=1.0).result_seq == 1


@pytest.mark.postgres
def test_dropped_connection_inside_a_unit_of_work_reruns_it(pg_url: str, pg_admin) -> None:  # type: ignore[no-untyped-def]
    with Store(pg_url) as s:
        search = s.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
        attempts: list[int] = []

        def work(session):  # type: ignore[no-untyped-def]
            attempts.append(1)
            session.execute(text("UPDATE searches SET trial_count = trial_count + 1"))
            if len(attempts) == 1:  # the server drops us half-way through the first attempt
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
                pg_admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            return session.execute(text("SELECT trial_count FROM searches")).scalar()

        assert s._db.run(work, write=True) == 1  # the first attempt's UPDATE was rolled back
        assert len(attempts) == 2
        assert s.add_trial(search.id, arch={}, arch_key="k", proposer="p").number == 1


def test_locked_sqlite_never_reaches_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store._engine, "SQLITE_BUSY_TIMEOUT_MS", 50)  # give up waiting quickly, then retry
    path = tmp_path / "automl.db"
    with Store(f"sqlite:///{path}") as s:
        search = s.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for 0.4 s
        release = threading.Timer(0.4, other.execute, ["COMMIT"])
        release.start()
        start = time.monotonic()
        try:
            assert s.add_trial(search.id, arch={}, arch_key="k", proposer="p").number == 0
        finally:
            release.join()
            other.close()
        assert time.monotonic() - start >= 0.35
