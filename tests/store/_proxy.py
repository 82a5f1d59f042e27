"""A loopback TCP proxy that plays a database outage: refuse connections, cut the open ones.

``TcpProxy(host, port)`` listens on 127.0.0.1 (``.port``) and forwards every connection to
``host:port``. ``down()`` closes the listening socket (new connections are refused) and resets
every open connection, as a server restart or a failover does; ``up()`` listens again on the same
port; ``outage(seconds)`` is ``down()`` now and ``up()`` after ``seconds``, in the background.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading

__all__ = ["TcpProxy"]

# Outside Linux's ephemeral range (32768-60999), so that no outgoing connection takes the port
# while the proxy is down.
_PORTS = range(20_000, 30_000)


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._timers: list[threading.Timer] = []
        self.port = 0
        for candidate in random.sample(_PORTS, 50):
            try:
                self._listen(candidate)
            except OSError:
                continue
            self.port = candidate
            break
        else:
            raise RuntimeError("no free loopback port for the proxy")

    # -- control -------------------------------------------------------------------------------
    def down(self) -> None:
        """Refuse new connections and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            _kill(listener)
        for s in sockets:
            _kill(s)

    def up(self) -> None:
        """Accept connections again, on the same port."""
        with self._lock:
            if self._listener is not None:
                return
        self._listen(self.port)

    def outage(self, seconds: float) -> None:
        """``down()`` now, ``up()`` after ``seconds`` (in the background)."""
        self.down()
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.down()

    # -- plumbing ------------------------------------------------------------------------------
    def _listen(self, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by down()
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _kill(client)
                continue
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    _kill(client)
                    _kill(server)
                    return
                self._sockets.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets.difference_update((src, dst))
        _kill(src)
        _kill(dst)


def _kill(s: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), waking any thread blocked on the socket first."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
