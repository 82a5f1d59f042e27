"""Database outages: a PostgreSQL server that goes away for a while does not end a search.

The server is reached through a loopback TCP proxy (``tests/store/_proxy.py``) that refuses
connections and resets the open ones, as a restart or a failover does; the shared server itself is
never touched. ``$AUTOML_DB_OUTAGE_SECONDS`` sets short outage windows, to keep the tests fast.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import automl
from store import SearchConfig, SearchRecord, StorageError, Store, TrialStatus
from store._engine import DEFAULT_OUTAGE_SECONDS, OUTAGE_ENV, Database, is_outage
from store._models import SearchModel
from tests.store._proxy import TcpProxy

N = 8
PASSWORD = "s3cret"  # ignored by a trust-auth server; must never show in a message


@pytest.fixture
def proxy(pg_server: str) -> Iterator[TcpProxy]:
    server = make_url(pg_server)
    p = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def proxy_url(pg_url: str, proxy: TcpProxy) -> str:
    """``pg_url`` (the test's own schema) through the proxy, with a password when it had none."""
    url = make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    if url.password is None:
        url = url.set(password=PASSWORD)
    return url.render_as_string(hide_password=False)


def _search(store: Store, name: str = "s") -> SearchRecord:
    return store.create_search(name, SearchConfig(space="toy", strategy="random", objectives=("acc",)))


def _score(arch: Any) -> float:
    return float(sum(len(str(v)) for v in dict(arch).values()) % 17)


# -- the outage window ----------------------------------------------------------------------------------
def test_outage_window_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTAGE_ENV, raising=False)
    windows = []
    for seconds in (None, 3, 0):
        db = Database("sqlite://", outage_seconds=seconds)
        windows.append(db.outage_seconds)
        db.close()
    monkeypatch.setenv(OUTAGE_ENV, "7.5")
    db = Database("sqlite://")
    windows.append(db.outage_seconds)
    db.close()
    assert windows == [DEFAULT_OUTAGE_SECONDS, 3.0, 0.0, 7.5]
    assert DEFAULT_OUTAGE_SECONDS >= 60


def test_a_store_takes_its_outage_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "7")
    with Store(f"sqlite:///{tmp_path / 'a.db'}", outage_seconds=90) as store:
        assert store._db.outage_seconds == 90
    with Store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        assert store._db.outage_seconds == 7


@pytest.mark.parametrize("bad", ["-1", "soon", "inf", "nan"])
def test_a_bad_outage_window_in_the_environment_is_refused(
    bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(OUTAGE_ENV, bad)
    with pytest.raises(ValueError) as e:
        Store(f"sqlite:///{tmp_path / 'a.db'}")
    assert str(e.value) == f"${OUTAGE_ENV} must be a number of seconds >= 0, but got {bad!r}"


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_a_bad_outage_window_argument_is_refused(bad: float) -> None:
    with pytest.raises(ValueError) as e:
        Database("sqlite://", outage_seconds=bad)
    assert str(e.value) == f"outage_seconds must be a number of seconds >= 0, but got {bad!r}"
    for wrong in ("3", True):
        with pytest.raises(TypeError, match=r"^outage_seconds must be a number of seconds, but got"):
            Database("sqlite://", outage_seconds=wrong)  # type: ignore[arg-type]


def _wrapped(orig: Exception) -> exc.DBAPIError:
    return exc.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("orig", "outage"),
    [
        (psycopg.OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused'), True),
        (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"), True),
        (psycopg.OperationalError("connection timeout expired"), True),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.errors.ConnectionFailure("connection failure"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),
        (psycopg.errors.SerializationFailure("could not serialize access"), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
    ],
)
def test_outage_errors_are_told_from_the_others(orig: Exception, outage: bool) -> None:
    assert is_outage(_wrapped(orig)) is outage


def test_an_invalidated_connection_is_an_outage() -> None:
    e = _wrapped(psycopg.OperationalError("whatever the driver said"))
    assert not is_outage(e)
    e.connection_invalidated = True
    assert is_outage(e)


# -- through the proxy ----------------------------------------------------------------------------------
@pytest.mark.postgres
def test_writes_go_on_after_an_outage(proxy: TcpProxy, proxy_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "20")
    with Store(proxy_url) as store:
        search = _search(store)
        store.add_trial(search.id, arch={"i": -1}, arch_key="k", proposer="p")  # a live pooled connection
        proxy.outage(3.0)
        started = time.monotonic()
        for i in range(5):
            t = store.add_trial(search.id, arch={"i": i}, arch_key=f"k{i}", proposer="p", start=True, worker="w")
            store.report_step(search.id, t.number, 1, {"acc": i / 10}, i / 10)
            store.finish_trial(search.id, t.number, TrialStatus.COMPLETED, metrics={"acc": i}, value=float(i))
        store.save_checkpoint(search.id, 5, {"seen": 5})
        took = time.monotonic() - started
        trials = store.trials(search.id)
        assert store.load_checkpoint(search.id) == (5, {"seen": 5})
        assert [len(store.steps(search.id, n)) for n in range(1, 6)] == [1] * 5
    assert 2.9 <= took < 20  # the first write waited for the server to come back
    assert [t.number for t in trials] == list(range(6))  # each write done once
    assert [t.status for t in trials] == [TrialStatus.PROPOSED] + [TrialStatus.COMPLETED] * 5
    assert [t.result_seq for t in trials[1:]] == [1, 2, 3, 4, 5]


@pytest.mark.postgres
def test_a_unit_of_work_cut_half_way_runs_again_whole(
    proxy: TcpProxy, proxy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "20")
    with Store(proxy_url) as store:
        search = _search(store)
        calls = []

        def work(s: Session) -> int:
            n = SearchModel.bump_counter(s, search.id, "trial_count")
            calls.append(n)
            if len(calls) == 1:
                proxy.outage(1.0)  # the server goes away in the middle of the transaction
            s.execute(text("SELECT 1"))
            return n

        assert store._db.run(work, write=True) == 1  # the first try's bump was rolled back
        assert calls == [1, 1]
        assert store._db.run(lambda s: SearchModel.find(s, search.id).trial_count) == 1


@pytest.mark.postgres
def test_an_outage_longer_than_the_window_is_a_storage_error_naming_the_database(
    proxy: TcpProxy, proxy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "2")
    with Store(proxy_url) as store:
        search = _search(store)
        proxy.outage(10.0)
        started = time.monotonic()
        with pytest.raises(StorageError) as e:
            store.add_trial(search.id, arch={}, arch_key="k", proposer="p")
        took = time.monotonic() - started
        message = str(e.value)
        assert 2.0 <= took < 4.0
        assert message.startswith(f"database {store.safe_url} unreachable for 2.")
        assert "outage window 2 s" in message and OUTAGE_ENV in message
        assert PASSWORD not in message and "\n" not in message
        # Still down: the next unit tries once, without waiting out another window.
        started = time.monotonic()
        with pytest.raises(StorageError, match="unreachable"):
            store.counts(search.id)
        assert time.monotonic() - started < 1.0
        proxy.up()  # back before the outage's 10 s: the store works again, nothing half-written
        assert store.counts(search.id)[TrialStatus.PROPOSED] == 0
        assert store.add_trial(search.id, arch={}, arch_key="k", proposer="p").number == 0


@pytest.mark.postgres
def test_a_server_down_at_the_first_connection_fails_at_once(
    proxy: TcpProxy, proxy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "20")
    proxy.down()
    started = time.monotonic()
    with pytest.raises(StorageError) as e:
        Store(proxy_url)
    assert time.monotonic() - started < 2.0
    assert str(e.value).startswith(f"cannot connect to {make_url(proxy_url).render_as_string(hide_password=True)}")


# -- a search through an outage -------------------------------------------------------------------------
@pytest.mark.postgres
def test_a_search_rides_out_an_outage(
    proxy: TcpProxy, proxy_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "20")
    seen: list[int] = []

    def evaluate(arch: Any, report: Any) -> dict[str, float]:
        seen.append(1)
        if len(seen) == 3:
            proxy.outage(3.0)  # between the trial's start and its report and result
        report(1, {"accuracy": _score(arch) / 2})
        return {"accuracy": _score(arch)}

    started = time.monotonic()
    automl.search("nb201", evaluate, strategy="evolution", trials=N, storage=proxy_url, name="outage", seed=0)
    assert time.monotonic() - started >= 2.9
    with Store(pg_url) as store:
        search = store.get_search("outage")
        trials = store.trials(search.id)
        steps = [len(store.steps(search.id, t.number)) for t in trials]
        assert search.driver is None  # released
    assert [t.number for t in trials] == list(range(N))  # no proposal stored twice
    assert all(t.status is TrialStatus.COMPLETED and t.attempts == 1 for t in trials)
    assert sorted(t.result_seq for t in trials) == list(range(1, N + 1))  # each result stored once
    assert steps == [1] * N and len(seen) == N


@pytest.mark.postgres
def test_a_search_ended_by_an_outage_stops_cleanly_and_resumes(
    proxy: TcpProxy, proxy_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTAGE_ENV, "2")
    seen: list[int] = []

    def evaluate(arch: Any) -> dict[str, float]:
        seen.append(1)
        if len(seen) == 3:
            proxy.down()  # and it stays down past the window
        return {"accuracy": _score(arch)}

    with pytest.raises(StorageError) as e:
        automl.search("nb201", evaluate, strategy="evolution", trials=N, storage=proxy_url, name="cut", seed=0)
    # The error that ended the search is the one raised, not one of the clean-up's.
    assert "unreachable for 2." in str(e.value)
    assert not isinstance(e.value.__context__, StorageError)
    assert "finish_trial" in [frame.name for frame in traceback.extract_tb(e.value.__traceback__)]
    with Store(pg_url) as store:
        search = store.get_search("cut")
        trials = store.trials(search.id)
    assert [(t.number, t.status) for t in trials] == [
        (0, TrialStatus.COMPLETED),
        (1, TrialStatus.COMPLETED),
        (2, TrialStatus.RUNNING),  # its result was never stored: left running for the next driver
    ]
    assert search.driver is not None  # could not be released: the lease lapses instead

    proxy.up()
    automl.search("nb201", evaluate, strategy="evolution", trials=N, storage=proxy_url, name="cut", seed=0)
    with Store(pg_url) as store:
        search = store.get_search("cut")
        trials = store.trials(search.id)
    assert [t.number for t in trials] == list(range(N))
    assert all(t.status is TrialStatus.COMPLETED for t in trials)
    assert [t.attempts for t in trials] == [1, 1, 2] + [1] * (N - 3)  # trial 2 ran again
    assert sorted(t.result_seq for t in trials) == list(range(1, N + 1))
    assert search.driver is None
