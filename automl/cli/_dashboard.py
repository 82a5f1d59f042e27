"""``automl dashboard``: serve the read-only results dashboard (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
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
    from automl._errors import UsageError, install_hint
    from automl._resolve import default_storage

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    if not args.host.strip():
        raise UsageError("--host must be an address or a name of this machine, e.g. 127.0.0.1 or 0.0.0.0, got ''")
    if args.refresh < 0:
        raise UsageError(f"--refresh must be >= 0 seconds, got {args.refresh}")
    try:
        import uvicorn

        from automl.dashboard import create_app
    except ImportError as e:
        raise UsageError(
            f"the dashboard needs fastapi, uvicorn, jinja2 and plotly ({e}); {install_hint('dashboard')}"
        ) from e
    storage = args.storage or default_storage()
    try:
        app = create_app(storage, refresh_seconds=args.refresh, host=args.host)
    except ValueError as e:  # a malformed URL
        raise UsageError(str(e)) from e
    try:
        listening = _listen(args.host, args.port)  # before saying "on http://…": the address must be ours
    except UsageError:
        app.state.store.close()
        raise
    if not _loopback(args.host):
        sys.stderr.write(
            f"automl: warning: listening on {args.host}: anyone who can reach this machine can read these results\n"
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"automl dashboard on http://{shown}:{args.port}/ (read-only, {app.state.store!r}); Ctrl-C stops it")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[listening])  # the socket bound above: no other process can take the port meanwhile
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` as uvicorn binds it (IPv6 when the host has a colon),
    for uvicorn to listen on; a UsageError that names the problem when it cannot be bound."""
    from automl._errors import UsageError

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
        sock.bind((host, port))
    except (socket.gaierror, UnicodeError, ValueError) as e:  # a name that does not resolve, or no name at all
        sock.close()
        raise UsageError(f"--host {host!r} is not an address or a known name of this machine ({_reason(e)})") from None
    except OSError as e:  # in use, not an address of this machine, or a privileged port
        sock.close()
        raise UsageError(f"cannot listen on {host} port {port}: {_reason(e)}") from None
    return sock


def _reason(e: BaseException) -> str:
    text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    return text[:1].lower() + text[1:]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
