"""The JSON API: ``/api/version`` (pages poll it and reload when it changes), ``/api/searches``,
``/api/search/{name}/leaderboard``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from automl.dashboard._pages._shared import MAX_COMPARE, MAX_NUMBER, search_row, version
from automl.dashboard._web import dashboard
from store import SearchRecord, queries

__all__ = ["router"]

router = APIRouter(prefix="/api")


@router.get("/version")
def version_api(
    request: Request,
    s: Annotated[list[str] | None, Query(max_length=MAX_COMPARE)] = None,
    t: Annotated[int | None, Query(ge=0, le=MAX_NUMBER)] = None,
) -> dict[str, str]:
    store = dashboard(request).store
    with store.snapshot():
        ids = [queries.resolve(store, name).id for name in s or []]
        return {"version": version(store, ids, t)}


@router.get("/searches")
def searches(request: Request) -> list[dict[str, Any]]:
    store = dashboard(request).store
    with store.snapshot():
        return [_jsonable(search_row(store, x)) for x in store.list_searches()]


@router.get("/search/{name}/leaderboard")
def leaderboard(request: Request, name: str, k: Annotated[int, Query(ge=1, le=1000)] = 10) -> list[dict[str, Any]]:
    store = dashboard(request).store
    with store.snapshot():
        top = queries.leaderboard(store, queries.resolve(store, name).id, k)
    return [
        {"rank": i + 1, "number": t.number, "value": t.value, "arch": dict(t.arch), "metrics": dict(t.metrics)}
        for i, t in enumerate(top)
    ]


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    s: SearchRecord = row["search"]
    best = row["best"]
    return {
        "name": s.name,
        "space": s.space,
        "strategy": s.strategy,
        "objective": s.objectives[0],
        "created_at": s.created_at.isoformat(),
        "state": row["state"],
        "target": row["target"],
        "counts": row["counts"],
        "best": None if best is None else {"number": best.number, "value": best.value},
    }
