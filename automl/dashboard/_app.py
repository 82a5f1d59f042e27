"""The read-only results dashboard: a FastAPI app over ``store.queries``, wired from its pages.

Pages (one module each in ``_pages/``): ``/`` (the searches), ``/search/{name}`` (best so far,
Pareto front, leaderboard, what the search learned), ``/search/{name}/trial/{number}`` (decisions,
metrics, learning curve, a drawing of the architecture), ``/compare?s=a&s=b`` (searches overlaid).
JSON: ``/api/version`` (pages poll it and reload when the results change), ``/api/searches``,
``/api/search/{name}/leaderboard``. Each page reads everything it shows in one read transaction
(``store.snapshot()``), so its figures agree while a search writes.

Safety: the database is opened read-only (``Store(url, read_only=True)``: SQLite's read-only
mode, PostgreSQL's ``default_transaction_read_only``); a request whose ``Host`` is not this
server's is refused (DNS rebinding, see ``_guards``); every parameter is validated (ints in
ranges, names from fixed sets, searches looked up by exact name); no SQL is built from text;
Jinja2 autoescapes every page, control characters are shown as visible marks, and figure JSON is
escaped for ``<script>``; responses carry a Content-Security-Policy that allows scripts from this
server only (plotly.js is served from the installed plotly package, never from a CDN). It never
imports a user's space file.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.engine import make_url
from starlette.middleware.gzip import GZipMiddleware

from automl.dashboard._guards import HeadAsGet, HostGuard, SecurityHeaders
from automl.dashboard._pages import ROUTERS
from automl.dashboard._web import Dashboard, install_error_pages
from store import Store

__all__ = ["create_app"]


def create_app(storage: str, *, refresh_seconds: float = 5.0, host: str = "127.0.0.1") -> FastAPI:
    """The dashboard over the database at ``storage``, opened read-only now (so a missing file or
    an unknown schema fails here, not at the first request). Pages poll every ``refresh_seconds``
    (0: never) and reload when results change. ``host`` is the address it listens on: requests
    must name it (or a loopback name) in their ``Host`` header."""
    store = Store(storage, read_only=True)
    shown_url = make_url(storage).render_as_string(hide_password=True)
    app = FastAPI(title="automl dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.dashboard = Dashboard.open(store, shown_url, refresh_seconds)
    app.router.on_shutdown.append(store.close)
    install_error_pages(app)
    for router in ROUTERS:
        app.include_router(router)
    # The last added runs first: Host check, then HEAD, then the headers, then compression.
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)
    app.add_middleware(HostGuard, host=host)
    return app
