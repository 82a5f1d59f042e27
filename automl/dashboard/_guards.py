"""ASGI middleware in front of every route: the Host check, HEAD, and the security headers.

- :class:`HostGuard` refuses (400) a request whose ``Host`` is not a name of this server: a loopback
  name (``localhost``, ``127.0.0.1``, ``[::1]``, any port) or the address it listens on. A page on
  another site whose name was re-pointed at this machine (DNS rebinding) sends its own name, so it
  cannot read the results. On a wildcard address (``0.0.0.0``, ``::``) any IP address and this
  machine's name are accepted too: a rebinding page cannot send an IP address as its host.
- :class:`HeadAsGet` answers ``HEAD`` wherever ``GET`` answers: the same status and headers, no body.
- :class:`SecurityHeaders` adds the Content-Security-Policy (scripts from this server only) and
  friends to every response.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["WILDCARDS", "HeadAsGet", "HostGuard", "SecurityHeaders", "host_name"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, lower case, without port or IPv6 brackets; None if malformed.

    >>> host_name("LocalHost:8000"), host_name("[::1]:80"), host_name("::1"), host_name("a:b")
    ('localhost', '::1', None, None)
    """
    header = header.strip().lower()
    if header.startswith("["):
        name, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = header.partition(":")
    return name if name and (not port or port.isdigit()) else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostGuard:
    """Refuses requests whose ``Host`` is not a name of this server (see the module's docstring)."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1") -> None:
        self.app = app
        bound = host.strip().strip("[]").lower()
        self.any_ip = bound in WILDCARDS
        self.names = LOOPBACK_NAMES | ({socket.gethostname().lower()} if self.any_ip else {bound})

    def allows(self, header: str) -> bool:
        name = host_name(header)
        return name is not None and (name in self.names or (self.any_ip and _is_ip(name)))

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [v for k, v in scope["headers"] if k == b"host"]
            if len(headers) != 1 or not self.allows(headers[0].decode("latin-1")):
                await _refuse(send, "bad Host header: this dashboard answers to localhost and its own address\n")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers + _SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


class HeadAsGet:
    """Runs a ``HEAD`` request as ``GET`` and sends the status and headers without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class SecurityHeaders:
    """Adds the Content-Security-Policy, nosniff, no-referrer and DENY framing to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                ours = {k for k, _ in _SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                message = {**message, "headers": kept + _SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, with_headers)
