"""Faults under the local executor: each ends with every completed result kept and N reached.

A worker killed (SIGKILL), the driver killed, an evaluator that raises, returns NaN or runs out of
CUDA memory, PostgreSQL connections dropped mid-search, a SQLite file under several processes, and
a second driver started on a running search.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import automl
from automl.cli import main
from store import Store, TrialStatus
from tests.automl import _evaluators as evs

from .conftest import ROOT

N = 8


def _trials(url: str, name: str):  # type: ignore[no-untyped-def]
    with Store(url) as store:
        found = store.find_search(name)
        return [] if found is None else store.trials(found.id)


def _completed(url: str, name: str) -> dict[int, float | None]:
    return {t.number: t.value for t in _trials(url, name) if t.status is TrialStatus.COMPLETED}


def _wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the driver ended early ({proc.returncode}): {err}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie waiting for init to reap it is dead too


def _cli(user_files: Path, url: str, name: str, n: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "automl.cli", "search", "nb201", "--evaluator", f"{user_files}/user_eval.py:score",
        "--storage", url, "--name", name, "--trials", str(n), "--strategy", "random", "--no-progress",
        "--executor", "local", "--workers", "2", *extra,
    ]  # fmt: skip


# -- workers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("retries", [2, 0])
def test_worker_killed_mid_trial(sqlite_url: str, tmp_path: Path, retries: int) -> None:
    marker = tmp_path / "killed"
    automl.search(
        "nb201", evs.KillOnce(str(marker), sleep=0.05), strategy="random", trials=N, storage=sqlite_url, name="wk",
        executor="local", workers=2, retries=retries, seed=0,
    )  # fmt: skip
    trials = _trials(sqlite_url, "wk")
    killed = f"{socket.gethostname()}:{int(marker.read_text())}"
    completed = [t for t in trials if t.status is TrialStatus.COMPLETED]
    assert len(completed) == N and all(t.value == evs.score(t.arch)["accuracy"] for t in completed)
    assert killed not in {t.worker for t in completed}  # it never answered again
    if retries:  # a lost worker is a transient failure: its trial ran again, on a live worker
        assert len(trials) == N
        assert sorted(t.attempts for t in trials) == [1] * (N - 1) + [2]
    else:  # no retries left: failed with the reason, and the search went on
        (failed,) = [t for t in trials if t.status is TrialStatus.FAILED]
        assert failed.error.startswith("worker process died (signal 9, SIGKILL) after ")
        assert failed.worker == killed and f"on trial {failed.number} ({killed})" in failed.error
        assert len(trials) == N + 1


def test_evaluator_errors_nan_and_oom_fail_their_trials_only(sqlite_url: str, tmp_path: Path) -> None:
    automl.search(
        "nb201", evs.Faulty(str(tmp_path)), strategy="random", trials=N, storage=sqlite_url, name="ev",
        executor="local", workers=2, max_failures=100, seed=4,
    )  # fmt: skip
    trials = _trials(sqlite_url, "ev")
    expected = {
        "none": "ValueError: evaluator exploded",
        "skip_connect": "metric 'accuracy' is nan",
        "avg_pool_3x3": "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    }
    failed = [t for t in trials if t.status is TrialStatus.FAILED]
    assert {t.arch["1<-0"] for t in failed} == set(expected)  # each kind happened
    for t in failed:
        assert expected[t.arch["1<-0"]] in t.error and t.attempts == 1  # not retried: it would fail again
    completed = [t for t in trials if t.status is TrialStatus.COMPLETED]
    assert len(completed) == N and len(trials) == N + len(failed)
    retried = [t for t in completed if t.arch["1<-0"] == "nor_conv_1x1"]
    assert retried and all(t.attempts == 2 for t in retried)  # TransientError: run again, then completed


# -- the driver -------------------------------------------------------------------------------------------
def test_driver_killed_then_rerun_gives_exactly_n(user_files: Path, sqlite_url: str) -> None:
    n = 12
    env = {**os.environ, "AUTOML_TEST_SLEEP": "0.25"}
    proc = subprocess.Popen(
        _cli(user_files, sqlite_url, "crash", n), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(lambda: len(_completed(sqlite_url, "crash")) >= 4, proc)
    workers = {t.worker for t in _trials(sqlite_url, "crash") if t.worker}
    proc.kill()
    proc.wait(timeout=30)
    before = _completed(sqlite_url, "crash")
    assert 4 <= len(before) < n
    pids = {int(w.rsplit(":", 1)[1]) for w in workers}
    assert proc.pid not in pids and len(pids) == 2
    _wait_for(lambda: all(_process_gone(p) for p in pids), timeout=10)  # the workers died with their driver

    assert main(_cli(user_files, sqlite_url, "crash", n)[3:]) == 0  # the same command again (in this process)
    after = _completed(sqlite_url, "crash")
    assert len(after) == n and all(after[k] == v for k, v in before.items())  # exactly N, earlier ones kept
    trials = _trials(sqlite_url, "crash")
    assert [t.number for t in trials] == list(range(len(trials))) and len(trials) == n


def test_second_driver_is_refused_and_status_shows_the_workers(user_files: Path, sqlite_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "AUTOML_TEST_SLEEP": "0.5"}
    first = subprocess.Popen(
        _cli(user_files, sqlite_url, "busy", 200), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: any(t.status is TrialStatus.RUNNING for t in _trials(sqlite_url, "busy")), first)
        capsys.readouterr()
        assert main(_cli(user_files, sqlite_url, "busy", 200)[3:]) == 2  # the same command, a second driver
        (line,) = capsys.readouterr().err.strip().splitlines()
        host = socket.gethostname()
        assert line.startswith(f"automl: error: search 'busy' is being run by {host}:{first.pid} ")
        assert "wait for it to finish, or stop it" in line

        assert main(["status", "--json", "--storage", sqlite_url]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["state"] == "running" and row["driver"] == f"{host}:{first.pid}"
        workers = {r["worker"] for r in row["running"]}
        assert workers and all(w.startswith(f"{host}:") and w != row["driver"] for w in workers)
        assert main(["status", "--storage", sqlite_url]) == 0
        table = capsys.readouterr().out
        assert "running trials" in table and next(iter(workers)) in table
    finally:
        first.send_signal(signal.SIGINT)
        code = first.wait(timeout=60)
    assert code == 130
    assert not [t for t in _trials(sqlite_url, "busy") if t.status is TrialStatus.RUNNING]  # put back


# -- the database ------------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_connections_dropped_mid_search(pg_url: str, pg_schema: str, pg_admin) -> None:  # type: ignore[no-untyped-def]
    stop, killed = threading.Event(), []

    def killer() -> None:
        while not stop.wait(0.3):
            rows = pg_admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [pg_schema]
            ).fetchall()
            killed.extend(r for r in rows if r[0])

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        automl.search(
            "nb201", evs.Probe(steps=3, sleep=0.1), strategy="evolution", trials=12, storage=pg_url, name="pg",
            executor="local", workers=2, seed=0,
        )  # fmt: skip
    finally:
        stop.set()
        thread.join()
    assert len(killed) >= 3  # connections really were dropped while it ran
    with Store(pg_url) as store:
        sid = store.get_search("pg").id
        trials = store.trials(sid)
        steps = {t.number: store.steps(sid, t.number) for t in trials}
    assert [t.number for t in trials] == list(range(12))  # no duplicate proposal
    assert all(t.status is TrialStatus.COMPLETED and t.attempts == 1 for t in trials)
    assert sorted(t.result_seq for t in trials) == list(range(1, 13))  # each result stored once
    assert all([s.step for s in steps[t.number]] == [1, 2, 3] for t in trials)


STEPS_EVALUATOR = """
def fn(arch, report):
    ops = list(arch.values())
    for step in range(1, 6):
        report(step, {"accuracy": step * 0.1})
    return {"accuracy": ops.count("nor_conv_3x3") * 1.0}
"""


def test_sqlite_several_processes_never_locked(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "steps_eval.py").write_text(STEPS_EVALUATOR)
    n = 20

    def driver(i: int, executor: str) -> subprocess.Popen:  # type: ignore[type-arg]
        args = [
            sys.executable, "-m", "automl.cli", "search", "nb201", "--evaluator", f"{tmp_path}/steps_eval.py:fn",
            "--storage", sqlite_url, "--name", f"load{i}", "--trials", str(n), "--strategy", "random",
            "--no-progress", "--executor", executor, "--workers", "2", "--seed", str(i),
        ]  # fmt: skip
        return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    drivers = [driver(0, "local"), driver(1, "inline")]  # two writers; the local one's workers never write
    reads, errors = 0, []
    while any(d.poll() is None for d in drivers):  # a reader too, like `automl status` or the dashboard
        try:
            with Store(sqlite_url) as store:
                for s in store.list_searches():
                    store.counts(s.id)
                    store.trials(s.id)
            reads += 1
        except Exception as e:
            errors.append(repr(e))
        time.sleep(0.05)
    outputs = [d.communicate() for d in drivers]
    for d, (_, err) in zip(drivers, outputs, strict=True):
        assert d.returncode == 0, err
        assert "locked" not in err
    assert errors == [] and reads > 0
    with Store(sqlite_url) as store:
        for i in range(2):
            sid = store.get_search(f"load{i}").id
            assert store.counts(sid)[TrialStatus.COMPLETED] == n
            assert all(len(store.steps(sid, t.number)) == 5 for t in store.trials(sid))
