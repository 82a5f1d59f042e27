"""A driver killed with SIGKILL mid-search: the same command again ends with exactly N trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from store import Store, TrialStatus

from .conftest import ROOT, run_cli, search_args


def _completed(url: str, name: str) -> dict[int, float]:
    store = Store(url)
    try:
        found = store.find_search(name)
        if found is None:
            return {}
        return {t.number: t.value for t in store.trials(found.id, statuses=[TrialStatus.COMPLETED])}
    finally:
        store.close()


def _command(user_files, url, n, strategy):
    return search_args(user_files, url, "--name", "crash", "--trials", str(n), "--strategy", strategy)


def _kill_midway_then_resume(user_files, url, strategy, sig):
    n = 14
    env = {**os.environ, "AUTOML_TEST_SLEEP": "0.15"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "automl.cli", *_command(user_files, url, n, strategy)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(_completed(url, "crash")) < 5:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    before = _completed(url, "crash")
    assert 5 <= len(before) < n

    again = run_cli(*_command(user_files, url, n, strategy), env={"AUTOML_TEST_SLEEP": "0"})
    assert again.returncode == 0, again.stderr
    after = _completed(url, "crash")
    assert len(after) == n  # exactly N: none lost, none doubled
    assert all(after[k] == v for k, v in before.items())  # earlier results kept as they were
    store = Store(url)
    sid = store.get_search("crash").id
    trials = store.trials(sid)
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.status is TrialStatus.COMPLETED for t in trials)
    store.close()
    return proc.returncode


def test_sigkill_then_rerun_gives_exactly_n(user_files, sqlite_url):
    code = _kill_midway_then_resume(user_files, sqlite_url, "random", signal.SIGKILL)
    assert code == -signal.SIGKILL


def test_ctrl_c_stops_cleanly_and_resumes(user_files, sqlite_url):
    code = _kill_midway_then_resume(user_files, sqlite_url, "evolution", signal.SIGINT)
    assert code == 130
