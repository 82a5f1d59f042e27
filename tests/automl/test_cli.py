"""The `automl` command as a user runs it: a real process, a real SQLite file."""

from __future__ import annotations

import json
import shutil

import pytest

from store import Store

from .conftest import EVALUATOR_CODE, run_cli, search_args


def _search(user_files, url, *extra):
    return run_cli(*search_args(user_files, url, "--strategy", "random", *extra))


def test_search_then_top_show_status(user_files, sqlite_url):
    r = _search(user_files, sqlite_url, "--trials", "6", "--name", "cli")
    assert r.returncode == 0, r.stderr
    assert "top 5 of cli by accuracy" in r.stdout
    assert "automl top cli" in r.stdout

    top = run_cli("top", "cli", "-n", "3", "--json", "--storage", sqlite_url)
    rows = json.loads(top.stdout)
    assert len(rows) == 3
    assert rows[0]["value"] >= rows[1]["value"] >= rows[2]["value"]

    show = run_cli("show", f"cli/{rows[0]['number']}", "--json", "--storage", sqlite_url)
    detail = json.loads(show.stdout)
    assert detail["arch"] == rows[0]["arch"] and detail["status"] == "completed"

    plain = run_cli("show", str(rows[0]["number"]), "--storage", sqlite_url)  # latest search
    assert plain.returncode == 0 and "decisions" in plain.stdout

    status = json.loads(run_cli("status", "--json", "--storage", sqlite_url).stdout)
    assert status[0]["name"] == "cli" and status[0]["counts"]["completed"] == 6


def test_spaces_lists_builtins_with_sizes():
    r = run_cli("spaces", "--json")
    assert r.returncode == 0, r.stderr
    by_name = {s["name"]: s for s in json.loads(r.stdout)}
    assert by_name["nb201"]["size"] == "15,625"
    assert {"cnn", "mlp", "nb201"} <= set(by_name)


BAD_INPUTS = [
    (["search", "nospace"], "unknown space 'nospace'"),
    (["search", "--strategy", "magic"], "unknown strategy 'magic'"),
    (["search", "--dataset", "imagenet"], "imagenet"),
    (["search", "--trials", "0"], "trials must be a positive integer, got 0"),
    (["search", "--trials", "ten"], "invalid int value: 'ten'"),
    (["search", "missing/file.py:fn"], "does not exist"),
    (["search", "{tmp}/space.py:nothere"], "defines no 'nothere'"),
    (["search", "{tmp}/raises.py:fn"], "raised RuntimeError: bad space file"),
    (["search", "--storage", "nonsense://"], "nonsense"),
    (["show", "ghost/3"], "no search named 'ghost'"),
    (["show", "known/99"], "has no trial 99"),
    (["top", "ghost"], "no search named 'ghost'"),
    (["train", "nb201", "--arch", '{"1<-0": "conv"}'], "decision '1<-0' got 'conv'"),
    (["train", "nb201", "--arch", "{nope"], "--arch is not valid JSON"),
    (["search", "--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # Found when the product was attacked (issue 9): each was "unexpected error", exit 1, or worse.
    (["search", "--option", "population_size=abc"], "`population_size` must be a positive int"),
    (["search", "--option", "population_size=-3"], "`population_size` must be a positive int"),
    (["search", "--option", "population_size=NaN"], "population_size: 'NaN' is not a finite number"),
    (["search", "--evaluator", "{tmp}/deco.py:net"], "is a search space, not an evaluator"),
    (["search", "--epochs", "-1"], "epochs must be a positive integer, got -1"),
    (["search", "--name", ""], "search name must be"),
    (["search", "--objective", "loss"], "objective 'loss' is better low: give '-loss'"),
    (["search", "--table", "x.csv"], "--table needs --evaluator table"),
    (["search", "nb201", "--evaluator", "table", "--table", "{tmp}/none.csv"], "none.csv"),
    (["show", "known/99999999999999999999"], "trial must be a number (0 to 2147483647)"),
    (["show", "known/\u0663"], "trial must be a number"),
    (["top", "\u00f1ame"], "search name must be"),
    (["top", "x" * 5000], "search name must be"),
    (["top", "known", "--status", "nope"], "--status must be one of"),
    (["train", "nb201", "--arch", "{}", "--epochs", "-2"], "epochs must be a positive integer, got -2"),
    (["search", "mlp", "--evaluator", "shared", "--workers", "2"], "use --executor inline"),
]


@pytest.fixture(scope="module")
def known_db(tmp_path_factory):
    """A database holding one search, 'known', with two trials; each test gets a copy."""
    d = tmp_path_factory.mktemp("known")
    (d / "user_eval.py").write_text(EVALUATOR_CODE)
    r = _search(d, f"sqlite:///{d / 'automl.db'}", "--trials", "2", "--name", "known")
    assert r.returncode == 0, r.stderr
    return d / "automl.db"


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_one_line_exit_2_database_untouched(tmp_path, known_db, args, message):
    (tmp_path / "space.py").write_text("def other(a):\n    return a.choice('x', [1])\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('bad space file')\n")
    decorated = "from search_spaces import space\n\n@space\ndef net(a):\n    return a.choice('x', [1])\n"
    (tmp_path / "deco.py").write_text(decorated)
    db = tmp_path / "automl.db"
    shutil.copy(known_db, db)
    url = f"sqlite:///{db}"
    before = _dump(url)

    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    needs_storage = args[0] not in ("train", "frobnicate") and not any(a.startswith("--storage") for a in args)
    r = run_cli(*args, *(["--storage", url] if needs_storage else []))
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert r.stdout == ""  # nothing is printed before the input it describes is checked
    assert "Traceback" not in r.stderr
    assert _dump(url) == before  # nothing stored was touched


def _dump(url: str) -> list:
    store = Store(url)
    try:
        return [
            (s.name, [(t.number, t.status, dict(t.metrics)) for t in store.trials(s.id)]) for s in store.list_searches()
        ]
    finally:
        store.close()


def test_failing_evaluator_is_reported_exit_1(user_files, sqlite_url):
    r = run_cli(
        "search",
        "nb201",
        "--evaluator",
        f"{user_files}/user_eval.py:broken",
        "--storage",
        sqlite_url,
        "--no-progress",
        "--max-failures",
        "3",
        "--trials",
        "5",
    )
    assert r.returncode == 1
    assert "3 trials failed in a row" in r.stderr and "RuntimeError: evaluator exploded" in r.stderr
    assert "Traceback" not in r.stderr
