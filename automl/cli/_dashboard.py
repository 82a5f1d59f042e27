"""``automl dashboard``: serve the read-only results dashboard (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve a read-only web dashboard of the results",
        description="Serve the results in a web browser: searches, best so far, Pareto fronts, leaderboards, "
        "what each search learned, every trial with its architecture. The database is opened read-only; "
        "pages refresh while a search runs.",
    )
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--refresh", type=float, default=5.0, help="seconds between checks for new results (0: never)")
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from automl._api import default_storage
    from automl._checks import UsageError

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    if args.refresh < 0:
        raise UsageError(f"--refresh must be >= 0 seconds, got {args.refresh}")
    try:
        import uvicorn

        from automl.dashboard import create_app
    except ImportError as e:
        raise UsageError(
            f"the dashboard needs fastapi, uvicorn, jinja2 and plotly ({e}); pip install 'automl[dashboard]'"
        ) from e
    storage = args.storage or default_storage()
    try:
        app = create_app(storage, refresh_seconds=args.refresh)
    except ValueError as e:  # a malformed URL
        raise UsageError(str(e)) from e
    if not _loopback(args.host):
        sys.stderr.write(
            f"automl: warning: listening on {args.host}: anyone who can reach this machine can read these results\n"
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"automl dashboard on http://{shown}:{args.port}/ (read-only, {app.state.store!r}); Ctrl-C stops it")
    sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
