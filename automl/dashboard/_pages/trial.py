"""``/search/{name}/trial/{number}``: one trial's decisions, metrics, learning curve and a drawing
of its architecture, with what changed from its parent."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from automl.cli._results import arch_changes
from automl.dashboard import _figures as figures
from automl.dashboard._pages._shared import MAX_NUMBER, facts, versions
from automl.dashboard._web import dashboard
from store import queries

__all__ = ["router"]

router = APIRouter()


@router.get("/search/{name}/trial/{number}", response_class=HTMLResponse)
def trial_page(request: Request, name: str, number: Annotated[int, PathParam(ge=0, le=MAX_NUMBER)]) -> Response:
    board = dashboard(request)
    store = board.store
    with store.snapshot():
        search = queries.resolve(store, name)
        detail = queries.trial_detail(store, search.id, number)
        url = "/api/version?" + urlencode({"s": search.name, "t": number})
        refresh = versions(store, url, [search.id], number)
    trial, parent, steps = detail.trial, detail.parent, detail.steps
    figs = {
        "arch": figures.architecture(trial.arch, facts(search).context),
        "curve": figures.learning_curve(steps, search.objective) if steps else None,
    }
    return board.page(
        "trial.html",
        request,
        title=f"{search.name} / {number}",
        search=search,
        detail=detail,
        trial=trial,
        parent_arch=parent.arch if parent is not None else {},
        changes=arch_changes(trial.arch, parent.arch) if parent is not None else [],
        figs=figs,
        metrics=sorted(trial.metrics.items()),
        **refresh,
    )
