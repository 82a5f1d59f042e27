"""The dashboard on a real SQLite database, served on 127.0.0.1 in a thread, and Chromium.

Chromium is Debian's (/usr/bin/chromium, or $AUTOML_CHROMIUM), driven by Playwright; no browser
is ever downloaded. Without it the browser tests are skipped, except under ``CI=true`` where they
fail. Screenshots go to ``$AUTOML_SCREENSHOTS`` (default: a temporary folder, printed).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AUTOML_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
CONTROL_NAME = "ctl\x1b[1mname"  # a search name the store takes (automl's own checks would refuse it)
ANSI_ERROR = "RuntimeError: \x1b[31mboom\x1b[0m\x07 at\x00 step\r\n\u202eevil\x9b"  # controls, as text


def nb201_score(arch: Mapping[str, Any], report: Any) -> dict[str, Any]:
    """A cheap nb201 evaluator with per-epoch reports, params and flops; fails on one cell."""
    ops = list(arch.values())
    if ops.count("none") == 6:
        raise RuntimeError(XSS)
    acc = round(0.5 + 0.07 * ops.count("nor_conv_3x3") + 0.03 * ops.count("skip_connect") - 0.05 * ops.count("none"), 4)
    for epoch in (1, 2, 3, 4):
        report(epoch, {"accuracy": round(acc * (0.7 + 0.1 * epoch), 4), "loss": round(2.3 * (1 - acc) / epoch, 4)})
    params = 70_000 + 36_000 * ops.count("nor_conv_3x3") + 4_000 * ops.count("nor_conv_1x1")
    return {"accuracy": acc, "loss": round(2.3 * (1 - acc), 4), "params": params, "flops": params * 1024}


def cnn_score(arch: Mapping[str, Any]) -> dict[str, Any]:
    width = sum(arch.get(f"layer{i}.width", 0) for i in range(arch["depth"]))
    acc = round(0.8 + 0.03 * arch["depth"] + width / 2000, 4)
    return {"accuracy": acc, "params": 100 * width + 650, "flops": 6400 * width}


def make_database(path: Path) -> str:
    """Searches made by automl.search: nb201 evolution and random, cnn random; one failed trial."""
    import automl
    from store import Store, TrialStatus

    url = f"sqlite:///{path}"
    common = {"storage": url, "progress": False}
    options = {"population_size": 10, "sample_size": 3}
    automl.search("nb201", nb201_score, strategy="evolution", trials=60, name="nb201-evo", seed=0,
                  strategy_options=options, **common)  # fmt: skip
    automl.search("nb201", nb201_score, strategy="random", trials=40, name="nb201-random", seed=1, **common)
    automl.search("cnn", cnn_score, strategy="random", trials=20, name="cnn-random", seed=2, **common)
    with Store(url) as store:  # a failed trial whose error text is markup: it must show as text
        search = store.get_search("nb201-evo")
        trial = store.add_trial(search.id, arch={e: "none" for e in _edges()}, arch_key="all-none", proposer="test")
        store.start_trial(search.id, trial.number)
        store.finish_trial(search.id, trial.number, TrialStatus.FAILED, error=f"RuntimeError: {XSS}")
    return url


def make_tiny_database(path: Path) -> str:
    """A cnn search "tiny" (three completed trials and a failed one whose error is ANSI_ERROR) and
    an empty one named CONTROL_NAME."""
    from store import SearchConfig, Store, TrialStatus

    url = f"sqlite:///{path}"
    with Store(url) as store:
        search = store.create_search("tiny", SearchConfig(space="cnn", strategy="random", trials=10))
        for i, status in enumerate([TrialStatus.COMPLETED] * 3 + [TrialStatus.FAILED]):
            trial = store.add_trial(
                search.id, arch={"depth": 1, "layer0.width": 8 << i}, arch_key=f"k{i}", proposer="x"
            )
            store.start_trial(search.id, trial.number)
            if status is TrialStatus.FAILED:
                store.finish_trial(search.id, trial.number, status, error=ANSI_ERROR)
            else:
                metrics = {"accuracy": 0.5 + i / 10, "params": 1000 * (i + 1)}
                store.finish_trial(search.id, trial.number, status, metrics=metrics, value=metrics["accuracy"])
        store.create_search(CONTROL_NAME, SearchConfig(space="cnn", strategy="random", trials=10))
    return url


# (value at each step, pruned?, the pruner's record on the last step) of the search "pruned"
PRUNED_TRIALS = [
    ([0.60, 0.75, 0.85, 0.91, 0.93, 0.94, 0.95, 0.96], False, None),
    ([0.55, 0.70, 0.80, 0.9139], True, {"rung": 4, "value": 0.9139, "threshold": 0.9502, "bracket": 1}),
    ([0.50, 0.52], True, {"rung": 2, "value": 0.52, "threshold": 0.71}),
    ([0.62, 0.78, 0.88, 0.92, 0.95, 0.96, 0.97, 0.975], False, None),
    ([0.40, 0.45], True, None),  # pruned by a pruner that leaves no record
]
COSTS = [10, 5, 3, 18, 20]  # their "cost" metric: 56 in all, over a budget of 50


def add_pruned_search(store: Any, name: str) -> Any:
    """An ASHA search ``name`` (budget 50, time 20:00, 5:02 spent) with the trials of
    PRUNED_TRIALS: their steps, the pruner's records, their costs. Its search record."""
    from store import SearchConfig, TrialStatus

    config = SearchConfig(space="cnn", evaluator="python", strategy="random", trials=None, budget=50, time=1200,
                          pruner="asha", pruner_options={"reduction_factor": 2}, epochs=8)  # fmt: skip
    search = store.create_search(name, config)
    for i, (values, pruned, reason) in enumerate(PRUNED_TRIALS):
        trial = store.add_trial(search.id, arch={"depth": 1, "layer0.width": 8 + i}, arch_key=f"k{i}", proposer="x")
        store.start_trial(search.id, trial.number)
        for step, value in enumerate(values, 1):
            metrics: dict[str, Any] = {"accuracy": value}
            if step == len(values) and reason is not None:
                metrics["_pruned"] = reason
            store.report_step(search.id, trial.number, step, metrics, value)
        status = TrialStatus.PRUNED if pruned else TrialStatus.COMPLETED
        store.finish_trial(search.id, trial.number, status, metrics={"accuracy": values[-1], "cost": COSTS[i]},
                           value=values[-1])  # fmt: skip
    store.add_elapsed(search.id, 302.4)
    return search


def _edges() -> tuple[str, ...]:
    from search_spaces.nb201 import EDGES

    return EDGES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if found:
        return found
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: browser tests are required)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_database(tmp_path_factory.mktemp("dashboard") / "automl.db")


@pytest.fixture(scope="session")
def tiny_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_database(tmp_path_factory.mktemp("tiny") / "tiny.db")


@pytest.fixture(scope="session")
def server(db_url: str) -> Iterator[str]:
    """The dashboard on 127.0.0.1:<free port>, in a thread; its base URL."""
    import uvicorn

    from automl.dashboard import create_app

    app = create_app(db_url, refresh_seconds=1.0)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("AUTOML_SCREENSHOTS") or Path(os.environ.get("TMPDIR", "/tmp")) / "automl-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that records console errors and failed requests (CSP violations show up there)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # type: ignore[attr-defined]
    yield pg
    context.close()
