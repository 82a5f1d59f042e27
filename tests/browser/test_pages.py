"""The search, trial and compare pages over HTTP (TestClient): learning curves of every trial,
pruning reasons, final trainings, budget and time, one color per compared search, binned range
decisions in order."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from automl.dashboard import create_app
from automl.dashboard._curves import COMPLETED_OPACITY, PRUNED_OPACITY
from automl.dashboard._figures import ORANGE, decision_bars
from store import Store, queries
from tests.browser.conftest import PRUNED_TRIALS, add_pruned_search

LOCAL = "http://127.0.0.1:8000"
# (trial number, seed, test accuracy) of the finals of the search "learned"
FINALS = [(0, 0, 0.91), (0, 1, 0.93), (0, 2, 0.95), (1, 0, 0.97), (1, 1, 0.96), (2, 0, 0.80)]


def learned_space(a: Any, input_shape: Any = (1, 8, 8), num_classes: int = 10) -> Any:
    import torch.nn as nn

    width = a.choice("width", [8, 16])
    a.float("lr", 1e-4, 1e-1, log=True)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Linear(width, num_classes))


def learned_score(arch: Mapping[str, Any]) -> dict[str, float]:
    return {"accuracy": round(0.9 - abs(arch["lr"] - 0.01) + arch["width"] / 1000, 4)}


def make_pages_database(path: Path) -> str:
    """ "pruned": an ASHA search with budget and time, completed and pruned trials with steps;
    "learned": a python-evaluator search over a float and a choice, with final trainings."""
    import automl
    from search_spaces import space

    url = f"sqlite:///{path}"
    with Store(url) as store:
        add_pruned_search(store, "pruned")
    automl.search(space(learned_space, name="learned"), learned_score, strategy="random", trials=30, name="learned",
                  seed=3, storage=url, progress=False)  # fmt: skip
    with Store(url) as store:
        learned = store.get_search("learned")
        for number, seed, acc in FINALS:
            metrics = {"test_accuracy": acc, "test_loss": round(1 - acc, 3), "train_seconds": 12.5}
            store.add_final(learned.id, number, seed=seed, epochs=20, metrics=metrics)
    return url


@pytest.fixture(scope="module")
def pages_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_pages_database(tmp_path_factory.mktemp("pages") / "pages.db")


@pytest.fixture(scope="module")
def client(pages_url: str) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(pages_url), base_url=LOCAL) as c:
        yield c


def _figure(html: str, figure: str) -> dict[str, Any]:
    m = re.search(rf'<script type="application/json" id="{figure}">(.*?)</script>', html, re.S)
    assert m is not None, f"no {figure} in the page"
    return json.loads(m.group(1))


def _color(trace: Mapping[str, Any]) -> str | None:
    return (trace.get("line") or {}).get("color") or (trace.get("marker") or {}).get("color")


# -- learning curves --------------------------------------------------------------------------
def test_the_curves_show_every_trial_pruned_ones_faded_with_an_x(client: Any) -> None:
    fig = _figure(client.get("/search/pruned").text, "fig-curves")
    trials = {t["name"]: t for t in fig["data"] if t["name"].startswith("trial ")}
    assert set(trials) == {f"trial {i}" for i in range(len(PRUNED_TRIALS))}  # one trace per trial
    for i, (values, pruned, _) in enumerate(PRUNED_TRIALS):
        t = trials[f"trial {i}"]
        assert t["x"] == list(range(1, len(values) + 1)) and t["y"] == pytest.approx(values)
        assert t["customdata"] == [i] * len(values)  # a click opens the trial
        if i != 3:
            assert t["opacity"] == (PRUNED_OPACITY if pruned else COMPLETED_OPACITY)
    assert PRUNED_OPACITY < COMPLETED_OPACITY
    best = trials["trial 3"]  # the best: highlighted
    assert best["opacity"] == 1 and best["line"]["color"] == ORANGE
    assert best["line"]["width"] > trials["trial 0"]["line"]["width"]

    (x,) = [t for t in fig["data"] if t["name"] == "stopped by the pruner"]
    assert x["marker"]["symbol"] == "x"
    assert x["customdata"] == [1, 2, 4]
    assert x["x"] == [4, 2, 2] and x["y"] == pytest.approx([0.9139, 0.52, 0.45])
    assert x["text"][0] == "accuracy 0.9139 < 0.9502"
    rungs = sorted(s["x0"] for s in fig["layout"]["shapes"] if s["line"]["dash"] == "dot")
    assert rungs == [2, 4]  # where the pruner's records say it judged


def test_the_curves_read_only_recent_trials_and_the_best(pages_url: str) -> None:
    from automl.dashboard._pages._steps import trial_curves

    with Store(pages_url, read_only=True) as store:
        search = store.get_search("pruned")
        assert [c.number for c in trial_curves(store, search, limit=2)] == [3, 4]  # the last two finished
        assert [c.number for c in trial_curves(store, search, limit=2, also=[0])] == [0, 3, 4]
        curves = {c.number: c for c in trial_curves(store, search)}
    assert curves[1].pruned and curves[1].rung == 4 and curves[1].reason["threshold"] == 0.9502
    assert not curves[0].pruned and curves[0].reason is None and curves[4].reason is None


def test_without_records_the_rungs_come_from_the_pruner_settings() -> None:
    from automl.dashboard._curves import rungs_of
    from automl.dashboard._pages._shared import _asha_rungs
    from automl.dashboard._pages._steps import TrialCurve

    assert _asha_rungs("asha", {"reduction_factor": 2}, 8) == (1, 2, 4)  # below max_resource = epochs
    assert _asha_rungs("asha", {"min_resource": 3, "max_resource": 100}, None) == (3, 12, 48)
    assert _asha_rungs("asha", {}, None) == () and _asha_rungs("median", {}, 8) == ()
    curve = TrialCurve(0, False, (1, 2, 3), (0.1, 0.2, 0.3))
    assert rungs_of([curve], (1, 2, 4)) == [1, 2]  # up to the last step drawn


# -- the pruned sentence, budget and time -------------------------------------------------------
def test_a_pruned_trial_says_why(client: Any) -> None:
    one = client.get("/search/pruned/trial/1").text
    assert (
        'id="pruned-reason">pruned at step 4: accuracy 0.9139 &lt; 0.9502 (the threshold at that rung, bracket 1)'
        in one
    )
    two = client.get("/search/pruned/trial/2").text
    assert "pruned at step 2: accuracy 0.52 &lt; 0.71 (the threshold at that rung)<" in two
    assert "pruned-reason" not in client.get("/search/pruned/trial/4").text  # no record: nothing said
    assert "pruned-reason" not in client.get("/search/pruned/trial/0").text


def test_a_paused_trial_and_a_promoted_one_say_so(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    import automl
    from store import CHECKPOINT_KEY
    from tests.automl import _evaluators as evs

    url = f"sqlite:///{tmp_path / 'paused.db'}"
    automl.search(
        "nb201", evs.PausableCurves(steps=9, fade=0.97), strategy="random", trials=30, storage=url, name="pp",
        seed=1, pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    with Store(url) as store:
        trials = store.trials(store.get_search("pp").id)
    promoted = next(t for t in trials if t.metrics.get("resumed_from"))
    paused = next(t for t in trials if CHECKPOINT_KEY in t.metrics)
    with TestClient(create_app(url), base_url=LOCAL) as c:
        text = c.get(f"/search/pp/trial/{promoted.number}").text
        assert f"paused at step {promoted.metrics['resumed_from']}: accuracy" in text
        assert "promoted, it went on from its checkpoint" in text
        text = c.get(f"/search/pp/trial/{paused.number}").text
        step = paused.metrics[CHECKPOINT_KEY]["step"]
        assert f"paused: its training state after step {step} is kept; a promotion goes on from it" in text
        assert "_checkpoint" not in text


def test_the_header_shows_budget_and_time_spent(client: Any) -> None:
    html = client.get("/search/pruned").text
    limits = re.search(r'<span id="limits">(.*?)</span>', html, re.S)
    assert limits is not None
    assert re.sub(r"<[^>]+>|\s+", "", limits.group(1)) == "·budget56/50·time5:02/20:00"
    assert 'id="limits"' not in client.get("/search/learned").text  # trials only: no limits shown


# -- final training -----------------------------------------------------------------------------
def _rows(html: str, table_id: str) -> list[list[str]]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    ]


def test_the_search_page_ranks_the_final_trainings(client: Any, pages_url: str) -> None:
    with Store(pages_url, read_only=True) as store:
        sid = store.get_search("learned").id
        values = {n: store.get_trial(sid, n).value for n, _, _ in FINALS}
    rows = _rows(client.get("/search/learned").text, "finals-20")
    expected = []
    for n in (1, 0, 2):  # best mean first
        accs = [a for m, _, a in FINALS if m == n]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        expected.append([str(n), f"{statistics.fmean(accs):.4f} ± {std:.4f}", str(len(accs)), f"{values[n]:.4g}"])
    assert [r[1:5] for r in rows] == expected
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert "Final training" not in client.get("/search/pruned").text  # no finals: no table


def test_the_trial_page_lists_its_final_runs_seed_by_seed(client: Any) -> None:
    rows = _rows(client.get("/search/learned/trial/0").text, "finals")
    assert [r[:5] for r in rows] == [["0", "20", "0.91", "0.09", "12.5"], ["1", "20", "0.93", "0.07", "12.5"],
                                     ["2", "20", "0.95", "0.05", "12.5"]]  # fmt: skip
    assert 'id="finals"' not in client.get("/search/learned/trial/5").text


# -- continuous decisions -----------------------------------------------------------------------
def test_binned_decisions_are_drawn_low_to_high(client: Any) -> None:
    fig = _figure(client.get("/search/learned").text, "fig-decisions")
    lr = [t for t in fig["data"] if t["hovertemplate"].startswith("lr =")]
    assert lr and all(t["customdata"] for t in lr)
    lows = [float(label[1:].split(",")[0]) for label in lr[0]["customdata"]]
    assert lows == sorted(lows) and len(lows) >= 3
    axis = fig["layout"][f"xaxis{lr[0]['xaxis'][1:]}"]
    assert axis["type"] == "category" and axis["categoryarray"] == lr[0]["x"]


def test_bins_sort_by_their_lower_edge_not_as_text() -> None:
    from store import SearchRecord

    rows = tuple(
        queries.DecisionStat("lr", label, 1, 0.5, 1, 0.25)
        for label in ("[0.01, 0.0316)", "[0.0001, 0.000316)", "[1e-05, 3.16e-05)", "[0.0316, 0.1]")
    )
    fake = SearchRecord.__new__(SearchRecord)
    fig = decision_bars(queries.DecisionStats(fake, 4, 4, rows)).to_plotly_json()
    assert list(fig["data"][0]["x"]) == [
        "1e-05\u20133.16e-05",
        "0.0001\u20130.000316",
        "0.01\u20130.0316",
        "0.0316\u20130.1",
    ]


# -- compare: one color per search ----------------------------------------------------------------
def test_each_compared_search_keeps_one_color_in_every_figure(client: Any) -> None:
    html = client.get("/compare", params=[("s", "pruned"), ("s", "learned")]).text
    figures = ["fig-compare-number", "fig-compare-time", "fig-compare-curves"]
    seen: dict[str, set[str]] = {"pruned": set(), "learned": set()}
    for figure in figures:
        fig = _figure(html, figure)
        legend = {t["name"] for t in fig["data"] if t.get("showlegend", True)}
        assert legend == {"pruned (random)", "learned (random)"}, figure
        for trace in fig["data"]:
            seen[trace["legendgroup"]].add(_color(trace))
    assert len(seen["pruned"]) == len(seen["learned"]) == 1 and seen["pruned"] != seen["learned"]
    swatches = re.findall(r'data-color="([^"]+)"', html)
    assert swatches == [*seen["pruned"], *seen["learned"]]  # the table's legend


def test_compare_draws_each_pareto_front_in_its_search_color(db_url: str) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(db_url), base_url=LOCAL) as c:
        html = c.get("/compare", params=[("s", "nb201-evo"), ("s", "nb201-random"), ("cost", "flops")]).text
    colors = {}
    for figure in ("fig-compare-number", "fig-compare-pareto", "fig-compare-curves"):
        for trace in _figure(html, figure)["data"]:
            colors.setdefault(trace["legendgroup"], set()).add(_color(trace))
    assert set(colors) == {"nb201-evo", "nb201-random"}
    assert all(len(c) == 1 for c in colors.values()) and colors["nb201-evo"] != colors["nb201-random"]
    assert 'class="here">flops<' in html


# -- one read transaction -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/search/pruned", "/search/learned", "/search/pruned/trial/1", "/search/learned/trial/0",
     "/compare?s=pruned&s=learned&cost=params"],
)  # fmt: skip
def test_each_new_page_reads_in_one_transaction(pages_url: str, path: str) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(pages_url), base_url=LOCAL) as c:
        begun: list[object] = []
        event.listen(c.app.state.store._db.engine, "begin", begun.append)
        assert c.get(path).status_code == 200
        assert len(begun) == 1
