"""The read-only results dashboard: a FastAPI app over ``store.queries``.

Pages: ``/`` (the searches), ``/search/{name}`` (best so far, Pareto front, leaderboard, what the
search learned), ``/search/{name}/trial/{number}`` (decisions, metrics, learning curve, a drawing
of the architecture), ``/compare?s=a&s=b`` (searches overlaid). JSON: ``/api/version`` (pages
poll it and reload when the results change), ``/api/searches``, ``/api/search/{name}/leaderboard``.

Safety: the database is opened read-only (``Store(url, read_only=True)``: SQLite's read-only
mode, PostgreSQL's ``default_transaction_read_only``); every parameter is validated (ints in
ranges, names from fixed sets, searches looked up by exact name); no SQL is built from text;
Jinja2 autoescapes every page and figure JSON is escaped for ``<script>``; responses carry a
Content-Security-Policy that allows scripts from this server only (plotly.js is served from the
installed plotly package, never from a CDN). It never imports a user's space file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import jinja2
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup
from sqlalchemy.engine import make_url
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from automl._cmd_results import arch_changes, search_state
from automl._render import arch_summary, fmt
from automl.dashboard import _figures as figures
from store import NotFound, SearchRecord, StorageError, Store, TrialStatus, queries

__all__ = ["create_app"]

HERE = Path(__file__).parent
_STATIC = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COST_COLUMNS = ("params", "flops", "latency_ms", "train_seconds")
MAX_COMPARE = 12
Cost = Literal["params", "flops", "latency_ms"]


@functools.cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def _figure_json(fig: Any) -> Markup:
    """A figure as JSON that is safe inside ``<script type="application/json">``."""
    text = fig.to_json() if fig is not None else "null"
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters.update(fmt=fmt, figure_json=_figure_json, q=lambda s: quote(str(s), safe=""), arch=arch_summary)
    env.filters["pct"] = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0%}"
    return env


def create_app(storage: str, *, refresh_seconds: float = 5.0) -> FastAPI:
    """The dashboard over the database at ``storage``, opened read-only now (so a missing file or
    an unknown schema fails here, not at the first request). Pages poll every ``refresh_seconds``
    (0: never) and reload when results change."""
    store = Store(storage, read_only=True)
    shown_url = make_url(storage).render_as_string(hide_password=True)
    env = _environment()
    app = FastAPI(title="automl dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.router.on_shutdown.append(store.close)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[..., Any]) -> Response:
        response = await call_next(request)
        response.headers.update(
            {
                "Content-Security-Policy": _CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY",
            }
        )
        return response

    def page(template: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("version", "")
        context.setdefault("version_url", "")
        html = env.get_template(template).render(
            storage=shown_url, refresh=refresh_seconds, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status)

    def error_page(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return page("error.html", request, status, title=f"{status}", message=message)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, e: NotFound) -> Response:
        return error_page(request, 404, str(e))

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, e: ValueError) -> Response:
        return error_page(request, 400, str(e))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, err.get('loc', ())))}: {err.get('msg', '')}" for err in e.errors())
        return error_page(request, 400, f"bad request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:  # e.g. no such page
        return error_page(request, e.status_code, str(e.detail))

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, e: StorageError) -> Response:
        return error_page(request, 503, str(e))

    # -- static files --------------------------------------------------------------------------
    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type=_STATIC["dashboard.js"], headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:  # a fixed list: no paths from the request reach the file system
            raise NotFound(f"no static file {name!r}")
        return Response((HERE / "static" / name).read_bytes(), media_type=_STATIC[name])

    # -- pages -----------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        rows = [_search_row(store, s) for s in store.list_searches()]
        return page("index.html", request, title="searches", rows=rows[::-1], **_version(store, "/api/version", []))

    @app.get("/search/{name}", response_class=HTMLResponse)
    def search_page(
        request: Request,
        name: str,
        cost: Annotated[Cost | None, Query()] = None,
        k: Annotated[int | None, Query(ge=1, le=1000)] = None,
        n: Annotated[int, Query(ge=1, le=200)] = 15,
    ) -> Response:
        search = queries.resolve(store, name)
        summary = queries.summary(store, search.id)
        by_time = queries.best_so_far(store, search.id, by="time")
        cloud = queries.value_points(store, search.id, limit=1500)
        costs = queries.available_costs(store, search.id)
        chosen = cost if cost in costs else (costs[0] if costs else None)
        top = queries.leaderboard(store, search.id, n)
        stats = queries.decision_stats(store, search.id, k)
        failed = [TrialStatus.FAILED, TrialStatus.INFEASIBLE]
        failures = store.trials(search.id, statuses=failed, order="-number", limit=5)
        running = store.trials(search.id, statuses=[TrialStatus.RUNNING], limit=20)
        objective = search.objective
        figs: dict[str, Any] = {
            "best_number": figures.best_so_far(summary.curve, cloud, objective),
            "best_time": figures.best_so_far(by_time, cloud, objective),
            "decisions": figures.decision_bars(stats),
        }
        if chosen is not None:
            front = queries.pareto(store, search.id, chosen)
            cloud_cost = queries.cost_points(store, search.id, chosen, limit=1500)
            figs["pareto"] = figures.pareto_front(cloud_cost, front, objective, chosen)
        enriched = sorted((r for r in stats.rows if r.top and r.lift > 1), key=lambda r: (-r.lift, r.name))[:10]
        return page(
            "search.html",
            request,
            title=search.name,
            search=search,
            summary=summary,
            state=_state(search, summary.counts),
            figs=figs,
            costs=costs,
            cost=chosen,
            top=top,
            columns=[c for c in _COST_COLUMNS if any(c in t.metrics for t in top)],
            stats=stats,
            enriched=enriched,
            failures=failures,
            running=running,
            n=n,
            dataset=_dataset(search),
            **_version(store, "/api/version?" + urlencode({"s": search.name}), [search.id]),
        )

    @app.get("/search/{name}/trial/{number}", response_class=HTMLResponse)
    def trial_page(request: Request, name: str, number: Annotated[int, PathParam(ge=0, le=2**31 - 1)]) -> Response:
        search = queries.resolve(store, name)
        detail = queries.trial_detail(store, search.id, number)
        trial, parent = detail.trial, detail.parent
        context = (search.config.get("evaluator") or {}).get("context") if isinstance(search.config, Mapping) else None
        drawing = figures.architecture(trial.arch, context if isinstance(context, Mapping) else None)
        steps = detail.steps
        figs = {"arch": drawing, "curve": figures.learning_curve(steps, search.objective) if steps else None}
        url = "/api/version?" + urlencode({"s": search.name, "t": number})
        return page(
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
            **_version(store, url, [search.id], number),
        )

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(
        request: Request,
        s: Annotated[list[str] | None, Query(max_length=MAX_COMPARE)] = None,
    ) -> Response:
        every = store.list_searches()
        names = list(dict.fromkeys(s or [x.name for x in every][-6:]))
        summaries = queries.compare(store, names) if names else []
        timed = [queries.best_so_far(store, x.search.id, by="time") for x in summaries]
        figs = {
            "by_number": figures.compare_curves([x.curve for x in summaries], "number") if summaries else None,
            "by_time": figures.compare_curves(timed, "time") if summaries else None,
        }
        url = "/api/version?" + urlencode([("s", n) for n in names])
        return page(
            "compare.html",
            request,
            title="compare",
            every=every,
            chosen=set(names),
            summaries=summaries,
            figs=figs,
            **_version(store, url, [x.search.id for x in summaries]),
        )

    # -- JSON ------------------------------------------------------------------------------------
    @app.get("/api/version")
    def version(
        s: Annotated[list[str] | None, Query(max_length=MAX_COMPARE)] = None,
        t: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    ) -> dict[str, str]:
        ids = [queries.resolve(store, name).id for name in s or []]
        return {"version": _version_of(store, ids, t)}

    @app.get("/api/searches")
    def searches() -> list[dict[str, Any]]:
        return [_jsonable(_search_row(store, x)) for x in store.list_searches()]

    @app.get("/api/search/{name}/leaderboard")
    def leaderboard(name: str, k: Annotated[int, Query(ge=1, le=1000)] = 10) -> list[dict[str, Any]]:
        search = queries.resolve(store, name)
        return [
            {"rank": i + 1, "number": t.number, "value": t.value, "arch": dict(t.arch), "metrics": dict(t.metrics)}
            for i, t in enumerate(queries.leaderboard(store, search.id, k))
        ]

    return app


# -- helpers --------------------------------------------------------------------------------------
def _version_of(store: Store, ids: list[int], trial: int | None = None) -> str:
    if not ids:
        return queries.version(store)
    if trial is not None:  # a trial page: its search's counters and the trial's status and steps
        return queries.version(store, ids[0], trial)
    return "|".join(queries.version(store, i) for i in ids)


def _version(store: Store, url: str, ids: Sequence[int], trial: int | None = None) -> dict[str, str]:
    """What a page needs to refresh itself: the current version and the URL that polls it."""
    return {"version": _version_of(store, list(ids), trial), "version_url": url}


def _state(search: SearchRecord, counts: Mapping[str, int]) -> str:
    target = search.config.get("trials") if isinstance(search.config, Mapping) else None
    return search_state(search, counts.get("completed", 0) + counts.get("pruned", 0), target)


def _dataset(search: SearchRecord) -> str | None:
    config = search.config if isinstance(search.config, Mapping) else {}
    described = config.get("evaluator")
    dataset = config.get("dataset") or (described.get("dataset") if isinstance(described, Mapping) else None)
    return None if dataset is None else str(dataset)


def _search_row(store: Store, search: SearchRecord) -> dict[str, Any]:
    counts = {k.value: v for k, v in store.counts(search.id).items()}
    top = queries.leaderboard(store, search.id, 1)
    return {
        "search": search,
        "counts": counts,
        "best": top[0] if top else None,
        "state": _state(search, counts),
        "target": search.config.get("trials") if isinstance(search.config, Mapping) else None,
        "dataset": _dataset(search),
    }


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
