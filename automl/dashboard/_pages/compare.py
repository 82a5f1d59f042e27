"""``/compare?s=a&s=b``: searches side by side and their best-so-far curves overlaid."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from automl.dashboard import _figures as figures
from automl.dashboard._pages._shared import MAX_COMPARE, versions
from automl.dashboard._web import dashboard
from store import queries

__all__ = ["router"]

router = APIRouter()
SHOWN = 6  # the newest searches compared when none is chosen


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, s: Annotated[list[str] | None, Query(max_length=MAX_COMPARE)] = None) -> Response:
    board = dashboard(request)
    store = board.store
    with store.snapshot():
        every = store.list_searches()
        names = list(dict.fromkeys(s or [x.name for x in every][-SHOWN:]))
        summaries = queries.compare(store, names) if names else []
        timed = [queries.best_so_far(store, x.search.id, by="time") for x in summaries]
        url = "/api/version?" + urlencode([("s", n) for n in names])
        refresh = versions(store, url, [x.search.id for x in summaries])
    figs = {
        "by_number": figures.compare_curves([x.curve for x in summaries], "number") if summaries else None,
        "by_time": figures.compare_curves(timed, "time") if summaries else None,
    }
    return board.page(
        "compare.html",
        request,
        title="compare",
        every=every,
        chosen=set(names),
        summaries=summaries,
        figs=figs,
        **refresh,
    )
