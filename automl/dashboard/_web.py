"""What every page shares: the Jinja environment, the rendering of pages and error pages, and the
:class:`Dashboard` that the routes find on ``request.app.state``.

Text from the database is shown as text: Jinja autoescapes HTML, and :func:`visible` turns control
characters (an ANSI colour code in a trial's error, a bell, a bidi override) into visible marks.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import plotly.io
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from automl.cli._render import arch_summary, fmt
from store import NotFound, StorageError, Store

__all__ = ["HERE", "Dashboard", "dashboard", "install_error_pages", "visible"]

HERE = Path(__file__).parent

# C0 controls as their Unicode "control pictures" (ESC -> U+241B), tab and newline kept; DEL as U+2421;
# C1 controls and the invisible bidi/direction marks as \x.. / \u.... escapes.
_VISIBLE = {c: chr(0x2400 + c) for c in range(0x20) if chr(c) not in "\t\n"}
_VISIBLE[0x7F] = "\u2421"
_VISIBLE.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
_VISIBLE.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def visible(text: str) -> str:
    """``text`` with every control character shown as a visible mark (CRLF line ends become LF).

    >>> visible("\\x1b[31mboom\\x1b[0m\\x07")
    '␛[31mboom␛[0m␇'
    """
    return text.replace("\r\n", "\n").translate(_VISIBLE)


def _finalize(value: Any) -> Any:
    """Applied by Jinja to every ``{{ ... }}``: strings are made visible (Markup is ours already)."""
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _figure_json(fig: Any) -> Markup:
    """A figure as JSON that is safe inside ``<script type="application/json">``."""
    if fig is None:
        text = "null"
    elif isinstance(fig, Mapping):  # a figure built as plain JSON (see _curves)
        text = plotly.io.to_json(dict(fig), validate=False)
    else:
        text = fig.to_json()
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _pct(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
    )
    env.filters.update(
        fmt=fmt,
        figure_json=_figure_json,
        q=lambda s: quote(str(s), safe=""),
        arch=arch_summary,
        pct=_pct,
        verbatim=escape,  # a form value that must go back exactly as stored: escaped, not made visible
    )
    return env


@dataclass(frozen=True)
class Dashboard:
    """The read-only store and the page renderer of one app."""

    store: Store
    shown_url: str  # the storage URL without its password, shown in every page's header
    refresh_seconds: float  # how often pages poll /api/version (0: never)
    env: jinja2.Environment

    @classmethod
    def open(cls, store: Store, shown_url: str, refresh_seconds: float) -> Dashboard:
        return cls(store, shown_url, refresh_seconds, _environment())

    def page(self, template: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        """The page ``template`` rendered with ``context`` (plus what base.html needs)."""
        context.setdefault("version", "")
        context.setdefault("version_url", "")
        html = self.env.get_template(template).render(
            storage=self.shown_url, refresh=self.refresh_seconds, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, status: int, message: str) -> Response:
        """An error as JSON under /api/, as an HTML page elsewhere."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return self.page("error.html", request, status, title=f"{status}", message=message)


def dashboard(request: Request) -> Dashboard:
    """The :class:`Dashboard` of the app that serves ``request``."""
    return request.app.state.dashboard


def _problems(e: RequestValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err.get('loc', ())))}: {err.get('msg', '')}" for err in e.errors())


# (exception type, HTTP status, message): how each error the routes let through is answered.
_ERRORS: tuple[tuple[type[Exception], int | None, Any], ...] = (
    (NotFound, 404, str),
    (ValueError, 400, str),
    (RequestValidationError, 400, lambda e: f"bad request: {_problems(e)}"),
    (StarletteHTTPException, None, lambda e: str(e.detail)),  # e.g. no such page: its own status
    (StorageError, 503, str),
)


def install_error_pages(app: FastAPI) -> None:
    """Answer the errors of :data:`_ERRORS` with an error page (or JSON under /api/)."""
    for kind, status, message in _ERRORS:
        app.add_exception_handler(kind, _handler(status, message))


def _handler(status: int | None, message: Callable[[Any], str]) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, e: Exception) -> Response:
        code = status if status is not None else getattr(e, "status_code", 500)
        return dashboard(request).error(request, code, message(e))

    return handle
