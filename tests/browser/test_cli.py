"""``automl dashboard`` as a user runs it: a bad port or host is one line and exit 2, before any
"dashboard on" line; a good one serves the pages (and refuses foreign Host headers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "AUTOML_DEBUG": ""}


def _dashboard(*args: str, storage: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "automl.cli", "dashboard", "--storage", storage, *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120, check=False)


def _refused(ran: subprocess.CompletedProcess[str], *words: str) -> None:
    assert ran.returncode == 2, ran
    assert ran.stdout == "", ran.stdout  # nothing said about serving
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("automl: error: "), ran.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_port_in_use_is_one_line_and_exit_2(tiny_url: str, taken: int) -> None:
    _refused(_dashboard("--port", str(taken), storage=tiny_url), f"127.0.0.1 port {taken}", "in use")


@pytest.mark.parametrize("host", ["999.1.1.1", "no such host", "300.0.0.0"])
def test_an_invalid_host_is_one_line_and_exit_2(tiny_url: str, host: str) -> None:
    _refused(_dashboard("--host", host, "--port", str(free_port()), storage=tiny_url), f"--host {host!r}")


def test_an_address_of_another_machine_is_one_line_and_exit_2(tiny_url: str) -> None:
    _refused(_dashboard("--host", "192.0.2.1", "--port", str(free_port()), storage=tiny_url), "192.0.2.1")


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_a_port_out_of_range_is_one_line_and_exit_2(tiny_url: str, port: str) -> None:
    _refused(_dashboard("--port", port, storage=tiny_url), "--port must be in 1..65535", port)


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    _refused(_dashboard("--port", str(free_port()), storage=f"sqlite:///{missing}"), "no database file")
    assert not missing.exists()


def test_it_serves_and_checks_the_host(tiny_url: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "automl.cli", "dashboard", "--storage", tiny_url, "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"automl dashboard on http://127.0.0.1:{port}/")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # uvicorn listens on the socket the command bound before it printed that line
            try:
                page = httpx.get(base + "/search/tiny", timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "the dashboard did not answer"
                time.sleep(0.1)
        assert page.status_code == 200 and "tiny" in page.text
        head = httpx.head(base + "/search/tiny", timeout=10)
        assert head.status_code == 200 and head.content == b""
        foreign = httpx.get(base + "/", headers={"host": f"rebound.example:{port}"}, timeout=10)
        assert foreign.status_code == 400 and "tiny" not in foreign.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
