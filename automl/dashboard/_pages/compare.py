"""``/compare?s=a&s=b``: searches side by side, their best-so-far curves, Pareto fronts and
learning curves overlaid; each search keeps one color in every figure."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from automl.dashboard import _curves as curves
from automl.dashboard import _figures as figures
from automl.dashboard._pages._shared import MAX_COMPARE, versions
from automl.dashboard._pages._steps import trial_curves
from automl.dashboard._web import dashboard
from store import Store, queries

__all__ = ["router"]

router = APIRouter()
SHOWN = 6  # the newest searches compared when none is chosen
CURVES = 240  # learning curves drawn at most, shared among the searches
CLOUD = 500  # trials per search in the faded cloud behind its Pareto front
Cost = Literal["params", "flops", "latency_ms"]


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    s: Annotated[list[str] | None, Query(max_length=MAX_COMPARE)] = None,
    cost: Annotated[Cost | None, Query()] = None,
) -> Response:
    board = dashboard(request)
    store = board.store
    with store.snapshot():
        every = store.list_searches()
        names = list(dict.fromkeys(s or [x.name for x in every][-SHOWN:]))
        summaries = queries.compare(store, names) if names else []
        shown = _read(store, summaries, cost)
        url = "/api/version?" + urlencode([("s", n) for n in names])
        refresh = versions(store, url, [x.search.id for x in summaries])
    colors = figures.search_colors([x.search.name for x in summaries])
    figs: dict[str, Any] = {"by_number": None, "by_time": None, "pareto": None, "curves": None}
    if summaries:
        figs["by_number"] = figures.compare_curves([x.curve for x in summaries], "number", colors)
        figs["by_time"] = figures.compare_curves(shown["timed"], "time", colors)
        if shown["cost"] is not None:
            figs["pareto"] = figures.compare_pareto(shown["fronts"], shown["cost"], colors)
        if any(c for _, c in shown["curves"]):
            figs["curves"] = curves.compare_trial_curves(shown["curves"], colors)
    return board.page(
        "compare.html",
        request,
        title="compare",
        every=every,
        chosen=set(names),
        names=names,
        summaries=summaries,
        colors=colors,
        figs=figs,
        costs=shown["costs"],
        cost=shown["cost"],
        **refresh,
    )


def _read(store: Store, summaries: list[queries.SearchSummary], cost: str | None) -> dict[str, Any]:
    """The figures' data of the searches compared (call it inside one snapshot): best so far by
    time, the Pareto fronts against one cost (``cost``, else the first any of them has), and
    the learning curves of their most recent trials."""
    searches = [x.search for x in summaries]
    available = {x.id: queries.available_costs(store, x.id) for x in searches}
    costs = [c for c in queries.COST_METRICS if any(c in a for a in available.values())]
    chosen = cost if cost in costs else (costs[0] if costs else None)
    fronts = [
        (x, queries.pareto(store, x.id, chosen), queries.cost_points(store, x.id, chosen, limit=CLOUD))
        for x in searches
        if chosen in available[x.id]
    ]
    each = max(20, CURVES // max(1, len(searches)))
    return {
        "timed": [queries.best_so_far(store, x.id, by="time") for x in searches],
        "costs": costs,
        "cost": chosen,
        "fronts": fronts,
        "curves": [(x, trial_curves(store, x, limit=each)) for x in searches],
    }
