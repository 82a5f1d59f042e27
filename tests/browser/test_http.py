"""The dashboard over HTTP without a browser (Starlette's TestClient): one read transaction per page,
the Host check, HEAD, and control characters in stored texts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from automl.dashboard import create_app
from tests.browser.conftest import CONTROL_NAME

LOCAL = "http://127.0.0.1:8000"


def _client(url: str, base_url: str = LOCAL, **options: Any) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(create_app(url, **options), base_url=base_url)


@pytest.fixture(scope="module")
def client(tiny_url: str) -> Iterator[Any]:
    with _client(tiny_url) as c:
        yield c


# -- one read transaction per page ------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/search/nb201-evo",
        "/search/nb201-evo?cost=flops&k=5&n=30",
        "/search/nb201-evo/trial/7",
        "/compare?s=nb201-evo&s=nb201-random",
        "/api/version?s=nb201-evo&s=cnn-random",
        "/api/searches",
        "/api/search/nb201-evo/leaderboard",
    ],
)
def test_each_page_reads_in_one_transaction(db_url: str, path: str) -> None:
    """Every read a page makes runs in one transaction, so its numbers agree while a search writes."""
    with _client(db_url) as c:
        engine = c.app.state.store._db.engine
        begun: list[object] = []
        statements: list[str] = []
        event.listen(engine, "begin", begun.append)
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        response = c.get(path)
        assert response.status_code == 200, response.text
        selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
        assert len(begun) == 1 and len(selects) >= 2, (len(begun), statements)


def test_a_missing_search_ends_its_transaction(db_url: str) -> None:
    with _client(db_url) as c:
        assert c.get("/search/nope").status_code == 404
        assert c.get("/search/nb201-evo").status_code == 200  # the snapshot of the failed page is gone


# -- Host header (DNS rebinding) --------------------------------------------------------------
@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "[::1]", "LOCALHOST"])
def test_loopback_names_are_served(client: Any, host: str) -> None:
    assert client.get("/", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil:80", "10.0.0.7", "::1", "a:b"],
)
def test_other_hosts_are_refused(client: Any, host: str) -> None:
    for path in ("/", "/api/searches", "/search/tiny", "/static/dashboard.js"):
        response = client.get(path, headers={"host": host})
        assert response.status_code == 400
        assert response.text.startswith("bad Host header") and "tiny" not in response.text
        assert response.headers["content-type"].startswith("text/plain")


def test_the_bound_address_is_served_and_a_wildcard_takes_ip_addresses(tiny_url: str) -> None:
    with _client(tiny_url, "http://192.0.2.5:8000", host="192.0.2.5") as bound:
        assert bound.get("/").status_code == 200
        assert bound.get("/", headers={"host": "192.0.2.6:8000"}).status_code == 400
    with _client(tiny_url, "http://myname.lan:8000", host="myname.lan") as named:
        assert named.get("/").status_code == 200
        assert named.get("/", headers={"host": "evil.example"}).status_code == 400
    with _client(tiny_url, "http://192.0.2.5:8000", host="0.0.0.0") as anywhere:
        assert anywhere.get("/").status_code == 200
        assert anywhere.get("/", headers={"host": "[2001:db8::1]:8000"}).status_code == 200
        assert anywhere.get("/", headers={"host": "evil.example"}).status_code == 400


# -- HEAD ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/", "/search/tiny", "/search/tiny/trial/1", "/compare", "/api/searches", "/api/version", "/static/plotly.min.js"],
)
def test_head_answers_like_get_without_a_body(client: Any, path: str) -> None:
    got = client.get(path, headers={"accept-encoding": "identity"})
    head = client.head(path, headers={"accept-encoding": "identity"})
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "content-security-policy", "x-frame-options"):
        assert head.headers[name] == got.headers[name], name
    assert int(head.headers["content-length"]) == len(got.content)


def test_head_of_a_missing_page_is_404_and_other_methods_405(client: Any) -> None:
    assert client.head("/search/nope").status_code == 404
    assert client.head("/search/nope").content == b""
    assert client.post("/search/tiny").status_code == 405


# -- stored texts with control characters -------------------------------------------------------
def test_control_characters_of_an_error_are_shown_as_marks(client: Any) -> None:
    trial = client.get("/search/tiny/trial/3").text
    search = client.get("/search/tiny").text
    for page in (trial, search):
        assert "RuntimeError: \u241b[31mboom\u241b[0m\u2407 at\u2400 step" in page
        assert "\\u202eevil\\x9b" in page
        body = page.split("<body", 1)[1]
        assert not any(c in body for c in "\x00\x07\x1b\x9b\u202e\r"), "a raw control character reached the page"
    assert "step\nevil" not in trial and "step\n\\u202eevil" in trial  # CRLF kept as a line break


def test_control_characters_in_an_error_message_page(client: Any) -> None:
    response = client.get("/search/a%1B%5B2Jb")
    assert response.status_code == 404
    assert "a\\x1b[2Jb" in response.text  # the message quotes the name with repr()
    assert "\x1b" not in response.text


def test_a_name_with_control_characters_is_shown_visibly_and_submitted_verbatim(client: Any) -> None:
    index = client.get("/").text
    assert 'value="ctl\x1b[1mname"' in index  # the compare form sends the stored name back as it is
    assert ">ctl\u241b[1mname</a>" in index  # what the reader sees
    compare = client.get("/compare", params={"s": CONTROL_NAME})
    assert compare.status_code == 200 and 'value="ctl\x1b[1mname" checked' in compare.text
