"""``/``: the searches of the database, newest first, with their counts, best value and state."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from automl.dashboard._pages._shared import search_row, versions
from automl.dashboard._web import dashboard

__all__ = ["router"]

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> Response:
    board = dashboard(request)
    store = board.store
    with store.snapshot():
        rows = [search_row(store, s) for s in store.list_searches()]
        refresh = versions(store, "/api/version", [])
    return board.page("index.html", request, title="searches", rows=rows[::-1], **refresh)
