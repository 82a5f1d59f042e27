"""What a refused or read-only command leaves behind: nothing changed (issue 9, items 3, 4, 6, 10)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from store import SearchConfig, Store

from .conftest import ROOT, Ran, run_cli, search_args


def _ops(arch):  # type: ignore[no-untyped-def]
    ops = list(arch.values())
    return {"accuracy": ops.count("nor_conv_3x3") / 6, "params": 100 + ops.count("nor_conv_3x3")}


def _fails_some(arch):  # type: ignore[no-untyped-def]
    if list(arch.values()).count("none") >= 2:
        raise RuntimeError("too many nones")
    return _ops(arch)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    automl.search("nb201", _ops, strategy="random", trials=3, storage=url, name="s", seed=1, progress=False)
    return url


def test_a_refused_second_driver_leaves_the_target_alone(user_files: Path, cli: Callable[..., Ran]) -> None:
    url = f"sqlite:///{user_files / 'automl.db'}"
    args = search_args(user_files, url, "--name", "s", "--strategy", "random")
    assert cli(*args, "--trials", "2").returncode == 0
    with Store(url) as store:
        store.acquire_search(store.get_search("s").id, "elsewhere:4242")  # a live driver on another host
    r = cli(*args, "--trials", "50")
    assert r.returncode == 2 and "elsewhere:4242" in r.stderr, r.stderr
    assert automl.load("s", storage=url).search.config.trials == 2
    assert r.stdout == ""  # no header for a search this process never drove


@pytest.mark.parametrize("command", [["status"], ["top"], ["show", "s/0"], ["compare", "s"], ["top", "s"]])
def test_read_commands_never_create_a_database(tmp_path: Path, command: list[str], cli: Callable[..., Ran]) -> None:
    where = tmp_path / "new" / "automl.db"
    r = cli(*command, "--storage", f"sqlite:///{where}")
    assert r.returncode in (0, 2), r.stderr
    assert not where.parent.exists()


def test_read_commands_never_switch_a_file_to_wal(db: str, tmp_path: Path, cli: Callable[..., Ran]) -> None:
    path = tmp_path / "automl.db"
    with sqlite3.connect(path) as conn:  # the user's file, in rollback-journal mode
        conn.execute("PRAGMA journal_mode = DELETE")
    for command in (["status"], ["top", "s"], ["show", "s/0"], ["compare", "s"]):
        assert cli(*command, "--storage", db).returncode == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE mine (x)")
    r = cli("status", "--storage", f"sqlite:///{foreign}")
    assert r.returncode == 2
    with sqlite3.connect(foreign) as conn:
        assert [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["mine"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_searches_started_at_once_without_a_name_get_different_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    Store(url).close()
    names: list[str] = []

    def start() -> None:
        with Store(url) as store:
            names.append(store.create_search(None, SearchConfig(space="nb201"), stem="nb201-random").name)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(names) == [f"nb201-random-{i}" for i in range(1, 7)]


def test_top_lists_failed_trials_with_their_errors(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    automl.search("nb201", _fails_some, strategy="random", trials=6, storage=url, name="f", seed=0, progress=False,
                  max_failures=100)  # fmt: skip
    with Store(url) as store:
        failed = [t.number for t in store.trials(store.get_search("f").id) if t.status.value == "failed"]
    assert failed
    rows = json.loads(cli("top", "f", "--status", "failed", "--json", "--storage", url).stdout)
    assert [r["number"] for r in rows] == sorted(failed, reverse=True)[:10]
    text = cli("top", "f", "--status", "failed", "--storage", url).stdout
    assert "RuntimeError: too many nones" in text and f"latest {min(10, len(failed))} failed" in text


def test_leaderboard_as_documented(db: str) -> None:
    frame = automl.leaderboard(storage=db, k=2)  # no name: across searches
    assert list(frame["search"]) == ["s", "s"] and len(frame) == 2


def test_exported_json_trains_again(db: str, tmp_path: Path, cli: Callable[..., Ran]) -> None:
    out = tmp_path / "best.json"
    assert cli("export", "s/0", "--format", "json", "-o", str(out), "--storage", db).returncode == 0
    user = tmp_path / "score.py"
    user.write_text("def f(arch):\n    return {'accuracy': 1.0}\n")
    # `automl train` takes the exported file as it is; the space comes from the file.
    r = run_cli("train", "--arch", f"@{out}", "--dataset", "digits", "--epochs", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "completed"


def test_control_characters_in_errors_are_shown_not_obeyed(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"

    def evil(arch):  # type: ignore[no-untyped-def]
        raise RuntimeError("\x1b]0;owned\x07\x1b[2J gone")

    with pytest.raises(automl.SearchFailed, match="1 trials failed in a row"):
        automl.search("nb201", evil, strategy="random", trials=1, storage=url, name="e", max_failures=1, progress=False)
    r = cli("show", "e/0", "--storage", url)
    assert "\x1b" not in r.stdout and "\\x1b]0;owned\\x07" in r.stdout


# -- export: where it writes ------------------------------------------------------------------------
def _export(db: str, out: Path | str) -> subprocess.CompletedProcess[str]:
    return run_cli("export", "s/0", "--format", "json", "-o", str(out), "--storage", db)


def test_export_writes_through_a_symlink(db: str, tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert _export(db, link).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["trial"] == 0


def test_export_refuses_a_special_file(db: str) -> None:
    r = _export(db, "/dev/null")
    assert r.returncode == 2 and "not a regular file" in r.stderr and len(r.stderr.splitlines()) == 1
    assert Path("/dev/null").is_char_device()


def test_export_keeps_the_umask_mode(db: str, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    r = subprocess.run(
        ["bash", "-c", f"umask 027 && {sys.executable} -m automl.cli export s/0 --format json -o {out} --storage {db}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    out.chmod(0o604)  # an existing file keeps its own mode
    assert _export(db, out).returncode == 0 and stat.S_IMODE(out.stat().st_mode) == 0o604


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_export_to_an_unwritable_place_is_one_line(db: str, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    r = _export(db, locked / "x.json")
    assert r.returncode == 2 and "cannot write" in r.stderr and len(r.stderr.splitlines()) == 1


def test_export_to_a_read_only_file_system_is_one_line(db: str) -> None:
    r = _export(db, "/proc/version_automl.json")
    assert r.returncode == 2 and "cannot write" in r.stderr and len(r.stderr.splitlines()) == 1


def test_closed_pipe_is_one_line_exit_2(db: str) -> None:
    top = f"{sys.executable} -m automl.cli top s --json --storage {db} -n 3"
    cmd = f"{top} | head -c 1 >/dev/null; exit ${{PIPESTATUS[0]}}"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode in (0, 2), r.stderr  # 0 when everything fit in the pipe before head left
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) <= 1


def test_install_hints_name_this_checkout() -> None:
    from automl._errors import install_hint

    assert install_hint("dashboard") == f"pip install -e '{ROOT}[dashboard]'"


def test_table_path_is_a_flag(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    r = cli("search", "nb201", "--evaluator", "table", "--table", str(tmp_path / "nope.csv"), "--storage", url)
    assert r.returncode == 2 and "nope.csv" in r.stderr
    assert not (tmp_path / "automl.db").exists() or Store(url).list_searches() == []


def test_a_space_file_is_stored_absolute_so_export_works_from_elsewhere(tmp_path: Path) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "my_space.py").write_text(
        "import torch.nn as nn\nfrom search_spaces import space\n\n"
        "@space(input_shape=(1, 8, 8), num_classes=10)\n"
        "def net(a, input_shape, num_classes):\n"
        "    w = a.choice('w', [4, 8])\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, w), nn.ReLU(), nn.Linear(w, num_classes))\n"
    )
    (work / "score.py").write_text("def f(arch):\n    return {'accuracy': arch['w'] / 8}\n")
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    r = run_cli("search", "my_space.py:net", "--evaluator", "score.py:f", "--trials", "2", "--strategy", "random",
                "--name", "mine", "--no-progress", "--storage", url, cwd=work)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert automl.load("mine", storage=url).search.space == f"{work / 'my_space.py'}:net"
    assert f"automl top mine --storage '{url}'" in r.stdout  # the hints work from anywhere too
    out = elsewhere / "m.pt"
    r = run_cli("export", "mine/0", "--format", "pt", "-o", str(out), "--storage", url, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
