"""``/search/{name}``: best so far (by trial and by time), the Pareto front against a cost, the
leaderboard, what the search learned (options the best trials prefer), running trials, failures."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from automl.dashboard import _figures as figures
from automl.dashboard._pages._shared import facts, state, versions
from automl.dashboard._web import dashboard
from store import SearchRecord, Store, TrialStatus, queries

__all__ = ["router"]

router = APIRouter()
Cost = Literal["params", "flops", "latency_ms"]
COST_COLUMNS = ("params", "flops", "latency_ms", "train_seconds")  # leaderboard columns, when present
CLOUD = 1500  # trials drawn at most in a scatter cloud (a thinned sample beyond)
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
        **shown,
    )


def _read(store: Store, name: str, cost: str | None, k: int | None, n: int) -> dict[str, Any]:
    """Everything the page shows, read from the store (call it inside one snapshot)."""
    search = queries.resolve(store, name)
    sid = search.id
    summary = queries.summary(store, sid)
    costs = queries.available_costs(store, sid)
    chosen = cost if cost in costs else (costs[0] if costs else None)
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
        **versions(store, "/api/version?" + urlencode({"s": search.name}), [sid]),
    }


def _figures(search: SearchRecord, shown: dict[str, Any]) -> dict[str, Any]:
    objective, cloud = search.objective, shown["cloud"]
    figs: dict[str, Any] = {
        "best_number": figures.best_so_far(shown["summary"].curve, cloud, objective),
        "best_time": figures.best_so_far(shown["by_time"], cloud, objective),
        "decisions": figures.decision_bars(shown["stats"]),
    }
    if shown["cost"] is not None:
        figs["pareto"] = figures.pareto_front(shown["cost_cloud"], shown["front"], objective, shown["cost"])
    return figs
