"""`automl top / show / compare / export json` and the DataFrame API over a real stored search.

The commands run in-process through ``automl.cli.main`` (a subprocess costs seconds of imports);
one test runs the real ``automl`` process end to end.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import automl
from automl.cli._show import sparkline
from automl.results._views import arch_changes
from store import Store, TrialStatus

from .conftest import Ran, run_cli


def score(arch: Mapping[str, Any], report: Any) -> dict[str, Any]:
    """A cheap evaluator with per-epoch reports and cost metrics."""
    ops = list(arch.values())
    acc = round(ops.count("nor_conv_3x3") / 6 + 0.01 * ops.count("skip_connect") + 0.001 * ops.count("none"), 4)
    for epoch in (1, 2, 3):
        report(epoch, {"accuracy": acc * epoch / 3, "loss": 1 - acc * epoch / 3})
    params = 1000 + 900 * ops.count("nor_conv_3x3") + 100 * ops.count("nor_conv_1x1")
    return {"accuracy": acc, "loss": 1 - acc, "params": params, "flops": 64 * params}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two searches: evolution (with parents) and random, on nb201."""
    url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'automl.db'}"
    options = {"population_size": 8, "sample_size": 3}
    common = {"storage": url, "progress": False}
    automl.search(
        "nb201", score, strategy="evolution", trials=30, name="evo", seed=1, strategy_options=options, **common
    )
    automl.search("nb201", score, strategy="random", trials=20, name="rnd", seed=2, **common)
    return url


def _json(cli: Callable[..., Ran], *args: str) -> Any:
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_top_is_the_leaderboard_query(stored: str, cli: Callable[..., Ran]) -> None:
    rows = _json(cli, "top", "evo", "-n", "5", "--json", "--storage", stored)
    frame = automl.leaderboard("evo", storage=stored, k=5)
    assert [r["number"] for r in rows] == list(frame["number"]) and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    with Store(stored) as store:
        done = store.trials(store.get_search("evo").id, statuses=[TrialStatus.COMPLETED])
    assert rows[0]["value"] == max(t.value for t in done if t.value is not None)
    assert _json(cli, "top", "evo", "--proposer", "nobody", "--json", "--storage", stored) == []
    table = cli("top", "evo", "-n", "3", "--storage", stored)
    assert "top 3 of evo by accuracy" in table.stdout and "params" in table.stdout


def test_show_has_parent_changes_children_and_the_curve(stored: str, cli: Callable[..., Ran]) -> None:
    with Store(stored) as store:
        trials = store.trials(store.get_search("evo").id)
    child = next(t for t in trials if t.parent is not None)
    detail = _json(cli, "show", f"evo/{child.number}", "--json", "--storage", stored)
    assert detail["parent_trial"]["number"] == child.parent
    parent = next(t for t in trials if t.number == child.parent)
    assert detail["parent_trial"]["changes"] == [
        {"decision": k, "from": a, "to": b} for k, a, b in arch_changes(child.arch, parent.arch)
    ]
    assert [s["step"] for s in detail["steps"]] == [1, 2, 3]
    of_parent = _json(cli, "show", f"evo/{child.parent}", "--json", "--storage", stored)
    assert child.number in [c["number"] for c in of_parent["children"]]
    assert of_parent["children_total"] == sum(t.parent == child.parent for t in trials)
    text = cli("show", f"evo/{child.number}", "--storage", stored).stdout
    assert f"parent {child.parent}" in text and "accuracy by step:" in text and "per step" in text


def test_compare_two_searches(stored: str, cli: Callable[..., Ran]) -> None:
    rows = _json(cli, "compare", "evo", "rnd", "--json", "--storage", stored)
    assert [r["search"] for r in rows] == ["evo", "rnd"]
    with Store(stored) as store:
        for row in rows:
            done = [t for t in store.trials(store.get_search(row["search"]).id) if t.status is TrialStatus.COMPLETED]
            values = [t.value for t in done]
            assert row["best"] == max(values) and row["median"] == pytest.approx(statistics.median(values))
            assert row["best_so_far"][-1]["value"] == row["best"]
    table = cli("compare", "evo", "rnd", "--storage", stored).stdout
    assert "searches compared" in table and "best of first 10" in table


def test_dataframe_api(stored: str) -> None:
    curve = automl.best_so_far("evo", storage=stored)
    assert list(curve.columns) == ["number", "value", "result_seq", "elapsed_s"]
    assert curve["value"].is_monotonic_increasing and curve["number"].is_monotonic_increasing
    front = automl.pareto("evo", storage=stored, cost="params")
    assert list(front.columns) == ["number", "value", "params"] and front["params"].is_monotonic_increasing
    assert front["value"].is_monotonic_increasing  # cheaper is worse along a front
    stats = automl.decision_stats("evo", storage=stored, k=5)
    assert set(stats["decision"]) == {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}
    assert stats.groupby("decision")["share"].sum().round(6).eq(1).all() and stats.attrs["k"] == 5
    both = automl.compare(["evo", "rnd"], storage=stored)
    assert isinstance(both, pd.DataFrame) and list(both["search"]) == ["evo", "rnd"]
    everyone = automl.leaderboard(None, storage=stored, k=3)
    assert set(everyone["search"]) <= {"evo", "rnd"} and everyone["value"].is_monotonic_decreasing
    with pytest.raises(automl.UsageError, match="cost must be one of"):
        automl.pareto("evo", storage=stored, cost="accuracy")


BAD = [
    (["compare", "evo", "ghost"], "no search named 'ghost'"),
    (["top", "evo", "--status", "great"], "--status must be one of"),
    (["top", "evo", "-n", "0"], "-n must be a positive integer"),
    (["show", "evo/999"], "has no trial 999"),
    (["export", "evo/1", "--format", "keras", "-o", "{tmp}/m"], "unknown format 'keras'"),
    (["export", "ghost/1", "-o", "{tmp}/m.json", "--format", "json"], "no search named 'ghost'"),
    (["export", "evo/999", "-o", "{tmp}/m.json", "--format", "json"], "has no trial 999"),
    (["export", "evo/1", "-o", "{tmp}/nowhere/m.json", "--format", "json"], "does not exist"),
    (["export", "evo/1", "-o", "{tmp}", "--format", "json"], "is a directory"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(
    stored: str, tmp_path: Path, args: list[str], message: str, cli: Callable[..., Ran]
) -> None:
    r = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], "--storage", stored)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_export_json_is_the_decisions_as_a_real_process(stored: str, tmp_path: Path) -> None:
    out = tmp_path / "best.json"
    top = automl.leaderboard("evo", storage=stored, k=1)
    r = run_cli("export", f"evo/{top['number'][0]}", "--format", "json", "-o", str(out), "--storage", stored)
    assert r.returncode == 0, r.stderr
    payload = json.loads(out.read_text())
    assert payload["arch"] == top["arch"][0] and payload["space"] == "nb201" and payload["value"] == top["accuracy"][0]


def test_dashboard_refuses_a_missing_database_and_a_bad_port(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    missing = cli("dashboard", "--storage", f"sqlite:///{tmp_path / 'missing.db'}")
    assert missing.returncode == 2 and "no database file" in missing.stderr and not (tmp_path / "missing.db").exists()
    port = cli("dashboard", "--port", "70000", "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    assert port.returncode == 2 and "--port must be in 1..65535" in port.stderr


def test_sparkline_and_changes() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█" and sparkline([]) == ""
    assert arch_changes({"a": 1, "b": 2}, {"a": 1, "b": 3}) == [("b", 3, 2)]
