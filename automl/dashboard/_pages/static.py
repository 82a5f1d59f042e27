"""``/static/…``: the page script, the style sheet, and plotly.js from the installed plotly package."""

from __future__ import annotations

import functools

from fastapi import APIRouter
from fastapi.responses import Response

from automl.dashboard._web import HERE
from store import NotFound

__all__ = ["router"]

router = APIRouter()
_TYPES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}


@functools.cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly_js() -> Response:
    """plotly.js, never from a CDN (the Content-Security-Policy allows scripts from here only)."""
    return Response(_plotly_js(), media_type=_TYPES["dashboard.js"], headers={"Cache-Control": "max-age=86400"})


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """A file from a fixed list: no path from the request reaches the file system."""
    if name not in _TYPES:
        raise NotFound(f"no static file {name!r}")
    return Response((HERE / "static" / name).read_bytes(), media_type=_TYPES[name])
