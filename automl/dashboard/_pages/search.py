"""``/search/{name}``: what it spent of its budget and time, best so far (by trial and by time),
the learning curves of its recent trials, its final trainings (test accuracy over seeds), the
Pareto front against a cost, the leaderboard, what the search learned (options the best trials
prefer), running trials, failures."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from automl._final import FinalSummary, summarize
from automl.dashboard import _curves as curves
from automl.dashboard import _figures as figures
from automl.dashboard._pages._shared import facts, limits, state, versions
from automl.dashboard._pages._steps import trial_curves
from automl.dashboard._web import dashboard
from store import FinalRecord, NotFound, SearchRecord, Store, TrialRecord, TrialStatus, queries

__all__ = ["router"]

router = APIRouter()
Cost = Literal["params", "flops", "latency_ms"]
COST_COLUMNS = ("params", "flops", "latency_ms", "train_seconds")  # leaderboard columns, when present
CLOUD = 1500  # trials drawn at most in a scatter cloud (a thinned sample beyond)
CURVES = 200  # most recent finished trials whose learning curves are drawn
FAILED = (TrialStatus.FAILED, TrialStatus.INFEASIBLE)


@router.get("/search/{name}", response_class=HTMLResponse)
def search_page(
    request: Request,
    name: str,
    cost: Annotated[Cost | None, Query()] = None,
    k: Annotated[int | None, Query(ge=1, le=1000)] = None,
    n: Annotated[int, Query(ge=1, le=200)] = 15,
) -> Response:
    board = dashboard(request)
    with board.store.snapshot():
        shown = _read(board.store, name, cost, k, n)
    search, stats, top = shown["search"], shown["stats"], shown["top"]
    enriched = sorted((r for r in stats.rows if r.top and r.lift > 1), key=lambda r: (-r.lift, r.name))[:10]
    return board.page(
        "search.html",
        request,
        title=search.name,
        figs=_figures(search, shown),
        columns=[c for c in COST_COLUMNS if any(c in t.metrics for t in top)],
        enriched=enriched,
        n=n,
        dataset=facts(search).dataset,
        limits=limits(search, shown["spent"]),
        **shown,
    )


def _read(store: Store, name: str, cost: str | None, k: int | None, n: int) -> dict[str, Any]:
    """Everything the page shows, read from the store (call it inside one snapshot)."""
    search = queries.resolve(store, name)
    sid = search.id
    summary = queries.summary(store, sid)
    costs = queries.available_costs(store, sid)
    chosen = cost if cost in costs else (costs[0] if costs else None)
    finals = store.finals(sid)
    return {
        "search": search,
        "summary": summary,
        "state": state(search, summary.counts),
        "by_time": queries.best_so_far(store, sid, by="time"),
        "cloud": queries.value_points(store, sid, limit=CLOUD),
        "costs": costs,
        "cost": chosen,
        "front": queries.pareto(store, sid, chosen) if chosen else [],
        "cost_cloud": queries.cost_points(store, sid, chosen, limit=CLOUD) if chosen else [],
        "top": queries.leaderboard(store, sid, n),
        "stats": queries.decision_stats(store, sid, k),
        "failures": store.trials(sid, statuses=list(FAILED), order="-number", limit=5),
        "running": store.trials(sid, statuses=[TrialStatus.RUNNING], limit=20),
        "curves": trial_curves(store, search, limit=CURVES, also=[n for n in [summary.best_number] if n is not None]),
        "spent": queries.spent(store, sid) if facts(search).budget is not None else None,
        "finals": _final_tables(finals, _trials(store, sid, {f.number for f in finals})),
        **versions(store, "/api/version?" + urlencode({"s": search.name}), [sid]),
    }


def _figures(search: SearchRecord, shown: dict[str, Any]) -> dict[str, Any]:
    objective, cloud = search.objective, shown["cloud"]
    figs: dict[str, Any] = {
        "best_number": figures.best_so_far(shown["summary"].curve, cloud, objective),
        "best_time": figures.best_so_far(shown["by_time"], cloud, objective),
        "decisions": figures.decision_bars(shown["stats"]),
        "curves": None,
    }
    if shown["curves"]:
        figs["curves"] = curves.trial_curves(
            shown["curves"],
            objective,
            maximize=search.maximize,
            best=shown["summary"].best_number,
            rungs=curves.rungs_of(shown["curves"], facts(search).rungs),
        )
    if shown["cost"] is not None:
        figs["pareto"] = figures.pareto_front(shown["cost_cloud"], shown["front"], objective, shown["cost"])
    return figs


def _trials(store: Store, sid: int, numbers: set[int]) -> dict[int, TrialRecord]:
    """The trials numbered ``numbers`` (a few: those retrained), by number."""
    out = {}
    for n in sorted(numbers):
        try:
            out[n] = store.get_trial(sid, n)
        except NotFound:  # a final training of a trial that is gone: shown without its search value
            continue
    return out


def _final_tables(finals: list[FinalRecord], trials: dict[int, TrialRecord]) -> list[tuple[int, list[FinalSummary]]]:
    """The final trainings grouped by their epochs (most first), each group best mean first."""
    return [(e, summarize(finals, trials, e)) for e in sorted({f.epochs for f in finals}, reverse=True)]
