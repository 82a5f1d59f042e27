"""The dashboard in Chromium: its tables and plots show the numbers in the database.

Each page is also saved as a screenshot (see conftest: ``$AUTOML_SCREENSHOTS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from automl.cli._render import fmt
from store import SearchConfig, Store, TrialStatus, queries
from tests.browser.conftest import PRUNED_TRIALS, add_pruned_search

pytestmark = pytest.mark.browser

_FIGURES_DRAWN = "n => document.querySelectorAll('.figure.drawn').length >= n"


def _traces(page: Any, figure: str) -> dict[str, dict[str, Any]]:
    """The drawn plotly traces of a figure, by name: their number of points and x, y values."""
    return page.evaluate(
        """id => {
            const el = document.querySelector(`[data-figure="${id}"]`);
            const out = {};
            for (const t of el.data) {
                out[t.name] = {n: t.x ? t.x.length : 0, x: Array.from(t.x || []), y: Array.from(t.y || [])};
            }
            return out;
        }""",
        figure,
    )


def _open(page: Any, url: str, figures: int) -> None:
    page.goto(url)
    page.wait_for_function(_FIGURES_DRAWN, arg=figures, timeout=20_000)


def _requests(page: Any) -> list[str]:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    return requested


def test_index_lists_the_searches_with_their_best(page: Any, server: str, db_url: str, screenshots: Path) -> None:
    requested = _requests(page)
    page.goto(server + "/")
    rows = page.locator("#searches tbody tr")
    names = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    assert {"nb201-evo", "nb201-random", "cnn-random"} <= set(names)
    with Store(db_url, read_only=True) as store:
        best = queries.leaderboard(store, "nb201-evo", 1)[0]
    row = rows.nth(names.index("nb201-evo"))
    assert row.locator("td.best").inner_text() == fmt(best.value)
    page.screenshot(path=str(screenshots / "index.png"), full_page=True)
    assert all(url.startswith(server) for url in requested), requested
    assert page.errors == []


def test_search_page_shows_the_stored_numbers(page: Any, server: str, db_url: str, screenshots: Path) -> None:
    requested = _requests(page)
    _open(page, server + "/search/nb201-evo", 5)
    with Store(db_url, read_only=True) as store:
        top = queries.leaderboard(store, "nb201-evo", 15)
        curve = queries.best_so_far(store, "nb201-evo")
        front = queries.pareto(store, "nb201-evo", "params")
        completed = store.counts(store.get_search("nb201-evo").id)[TrialStatus.COMPLETED]
        trials = [t.number for t in store.trials(store.get_search("nb201-evo").id, statuses=[TrialStatus.COMPLETED])]
        best_steps = store.steps(store.get_search("nb201-evo").id, top[0].number)
    first = page.locator("#leaderboard tbody tr").first
    assert first.locator("td.value").inner_text() == fmt(top[0].value)
    assert first.locator("td").nth(1).inner_text() == str(top[0].number)
    assert page.locator("#best-value").inner_text() == fmt(top[0].value)
    assert page.locator("#count-completed").inner_text() == str(completed)
    assert page.locator("#leaderboard tbody tr").count() == len(top)

    best = _traces(page, "fig-best-number")
    assert best["completed trials"]["n"] == completed  # fewer than the thinning limit: every one
    assert best["improvements"]["x"] == [p.number for p in curve.points]
    assert best["improvements"]["y"] == pytest.approx([p.value for p in curve.points])
    pareto = _traces(page, "fig-pareto")
    assert pareto["Pareto front"]["x"] == pytest.approx([p.cost for p in front])
    assert pareto["Pareto front"]["y"] == pytest.approx([p.value for p in front])
    assert pareto["completed trials"]["n"] == completed
    decisions = _traces(page, "fig-decisions")
    assert set(decisions) == {"top 6", "all completed"}  # k = 10% of 60
    curves = _traces(page, "fig-curves")
    assert {n for n in curves if n.startswith("trial ")} == {f"trial {n}" for n in trials}  # every finished one
    assert curves[f"trial {top[0].number}"]["y"] == pytest.approx([s.value for s in best_steps])

    # The failed trial's error is shown as text: no script ran, no element was injected.
    assert "<script>window.__xss = 1</script>" in page.locator("#failures").inner_text()
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=str(screenshots / "search-nb201-evo.png"), full_page=True)
    assert all(url.startswith(server) for url in requested), requested  # plotly.js comes from us
    assert page.errors == []  # no CSP violation, no script error


def test_trial_page_draws_the_cell_and_the_learning_curve(
    page: Any, server: str, db_url: str, screenshots: Path
) -> None:
    with Store(db_url, read_only=True) as store:
        search = store.get_search("nb201-evo")
        child = next(t for t in store.trials(search.id, statuses=[TrialStatus.COMPLETED]) if t.parent is not None)
        steps = store.steps(search.id, child.number)
    _open(page, f"{server}/search/nb201-evo/trial/{child.number}", 2)
    assert page.locator("#trial-value").inner_text() == fmt(child.value)
    assert page.locator("#parent-link").inner_text() == f"trial {child.parent}"
    cells = page.locator("#decisions tbody tr td:nth-child(2)")
    assert [cells.nth(i).inner_text() for i in range(cells.count())] == list(child.arch.values())
    edges = _traces(page, "fig-arch")
    assert {f"{i}->{j}" for j, i in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))} <= set(edges)
    labels = page.evaluate(
        "() => document.querySelector('[data-figure=\"fig-arch\"]').layout.annotations.map(a => a.text)"
    )
    assert sorted(t.removeprefix("<b>").removesuffix("</b>") for t in labels if t.startswith("<b>")) == sorted(
        child.arch.values()
    )
    curve = _traces(page, "fig-curve")
    assert curve["accuracy"]["x"] == [s.step for s in steps]
    assert curve["accuracy"]["y"] == pytest.approx([s.metrics["accuracy"] for s in steps])
    page.screenshot(path=str(screenshots / "trial-nb201.png"), full_page=True)
    assert page.errors == []


def test_cnn_trial_draws_the_layer_stack(page: Any, server: str, db_url: str, screenshots: Path) -> None:
    with Store(db_url, read_only=True) as store:
        best = queries.leaderboard(store, "cnn-random", 1)[0]
    _open(page, f"{server}/search/cnn-random/trial/{best.number}", 1)
    texts = page.evaluate(
        "() => document.querySelector('[data-figure=\"fig-arch\"]').layout.annotations.map(a => a.text)"
    )
    layers = [t for t in texts if t.startswith("<b>layer")]
    assert len(layers) == best.arch["depth"]
    assert f"{best.arch['layer0.width']} channels" in layers[0]
    page.screenshot(path=str(screenshots / "trial-cnn.png"), full_page=True)
    assert page.errors == []


def test_compare_overlays_the_searches(page: Any, server: str, db_url: str, screenshots: Path) -> None:
    _open(page, f"{server}/compare?s=nb201-evo&s=nb201-random", 2)
    lines = _traces(page, "fig-compare-number")
    assert set(lines) == {"nb201-evo (evolution)", "nb201-random (random)"}
    with Store(db_url, read_only=True) as store:
        for name in ("nb201-evo", "nb201-random"):
            curve = queries.best_so_far(store, name)
            assert lines[f"{name} ({curve.search.strategy})"]["y"][-1] == pytest.approx(curve.points[-1].value)
    assert page.locator("#comparison tbody tr").count() == 2
    page.screenshot(path=str(screenshots / "compare.png"), full_page=True)
    assert page.errors == []


def test_the_learning_curves_mark_pruned_trials(page: Any, server: str, db_url: str, screenshots: Path) -> None:
    with Store(db_url) as store:
        add_pruned_search(store, "asha-live")
        try:
            _open(page, f"{server}/search/asha-live", 4)
            curves = _traces(page, "fig-curves")
            assert {n for n in curves if n.startswith("trial ")} == {f"trial {i}" for i in range(len(PRUNED_TRIALS))}
            assert curves["stopped by the pruner"]["x"] == [4, 2, 2]
            drawn = page.evaluate(
                """() => {
                    const el = document.querySelector('[data-figure="fig-curves"]');
                    return {lines: el.querySelectorAll('.scatterlayer .trace').length,
                            crosses: el.querySelectorAll('.scatterlayer path.point').length,
                            rungs: el.querySelectorAll('.shapelayer path').length};
                }"""
            )
            assert drawn["lines"] >= len(PRUNED_TRIALS) and drawn["crosses"] >= 3 and drawn["rungs"] == 2, drawn
            page.locator('[data-figure="fig-curves"]').screenshot(path=str(screenshots / "curves-asha.png"))
            assert page.errors == []
        finally:
            store.delete_search("asha-live")


def test_pages_refresh_while_a_search_runs(page: Any, server: str, db_url: str, screenshots: Path) -> None:
    with Store(db_url) as store:
        search = store.create_search("live", SearchConfig(space="nb201", strategy="random", objectives=("accuracy",)))
        try:
            page.goto(f"{server}/search/live")
            assert page.locator("#count-completed").inner_text() == "0"
            trial = store.add_trial(search.id, arch={"1<-0": "none"}, arch_key="k", proposer="random")
            store.start_trial(search.id, trial.number)
            store.finish_trial(search.id, trial.number, TrialStatus.COMPLETED, metrics={"accuracy": 0.5}, value=0.5)
            page.wait_for_function(
                "() => document.getElementById('count-completed').textContent === '1'", timeout=10_000
            )
            assert page.locator("#best-value").inner_text() == "0.5"
        finally:
            store.delete_search("live")


def test_bad_addresses_are_escaped_errors(page: Any, server: str) -> None:
    response = page.goto(server + "/search/" + "%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D3%22%3E")
    assert response.status == 404
    assert "no search named '<img src=x onerror=\"window.__xss=3\">'" in page.locator("#error-message").inner_text()
    assert page.goto(server + "/nowhere").status == 404 and page.locator("#error-message").count() == 1
    assert page.evaluate("window.__xss") is None
    assert page.goto(server + "/search/nb201-evo/trial/nope").status == 400
    assert page.goto(server + "/search/nb201-evo?cost=accuracy").status == 400
    assert page.goto(server + "/static/..%2F_app.py").status == 404
