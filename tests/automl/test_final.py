"""`automl final`: the best architectures retrained on train+val, scored on the test split (issue 10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from store import Store

from .conftest import Ran, run_cli


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """cnn on digits, 1 epoch per child, 4 trials, weights kept."""
    root = tmp_path_factory.mktemp("final")
    url = f"sqlite:///{root / 'automl.db'}"
    r = run_cli("search", "cnn", "--dataset", "digits", "--epochs", "1", "--trials", "4", "--strategy", "random",
                "--name", "d", "--keep-weights", str(root / "w"), "--no-progress", "--storage", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return url, root


def test_final_retrains_the_top_k_and_reports_test_accuracy(searched: tuple[str, Path]) -> None:
    url, _ = searched
    r = run_cli("final", "d", "--top", "2", "--seeds", "2", "--epochs", "1", "--json", "--no-progress",
                "--storage", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["search"] == "d" and len(out["final"]) == 2
    for row in out["final"]:
        assert row["seeds"] == 2 and row["test_accuracy_std"] >= 0.0 and 0.1 < row["test_accuracy_mean"] <= 1.0
    assert out["final"][0]["test_accuracy_mean"] >= out["final"][1]["test_accuracy_mean"]  # best first
    best = automl.leaderboard("d", storage=url, k=2)
    assert {row["trial"] for row in out["final"]} == set(best["number"])
    with Store(url) as store:
        finals = store.finals(store.get_search("d").id)
    assert len(finals) == 4 and {f.seed for f in finals} == {0, 1}
    assert all(Path(f.metrics["weights"]).is_file() for f in finals)


def test_final_again_trains_only_what_is_missing(searched: tuple[str, Path]) -> None:
    url, _ = searched
    first = automl.final("d", storage=url, top=2, seeds=2, epochs=1, progress=False)
    ran: list[int] = []
    again = automl.final("d", storage=url, top=2, seeds=2, epochs=1, progress=False, on_run=lambda r: ran.append(1))
    assert ran == [] and [s.mean for s in again] == [s.mean for s in first]
    more = automl.final("d", storage=url, top=2, seeds=3, epochs=1, progress=False, on_run=lambda r: ran.append(1))
    assert len(ran) == 2 and all(len(s.runs) == 3 for s in more)


def test_top_show_and_export_show_the_final_training(
    searched: tuple[str, Path], tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    url, _ = searched
    automl.final("d", storage=url, top=1, seeds=1, epochs=1, progress=False)
    number = int(automl.leaderboard("d", storage=url, k=1)["number"][0])
    top = cli("top", "d", "--storage", url)
    assert "final test" in top.stdout
    rows = json.loads(cli("top", "d", "--json", "--storage", url).stdout)
    assert rows[0]["final"]["trial"] == number
    show = json.loads(cli("show", f"d/{number}", "--json", "--storage", url).stdout)
    assert show["final"] and 0 < show["final"][0]["test_accuracy"] <= 1
    assert "final training" in cli("show", f"d/{number}", "--storage", url).stdout
    out = tmp_path / "final.pt"
    r = cli("export", f"d/{number}", "--final", "--format", "pt", "-o", str(out), "--storage", url)
    assert r.returncode == 0 and out.is_file(), r.stderr
    model = automl.load_pt(out)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["final", "ghost"], "no search named 'ghost'"),
        (["final", "d", "--top", "0"], "top must be a positive integer, got 0"),
        (["final", "d", "--seeds", "-1"], "seeds must be a positive integer, got -1"),
        (["final", "d", "--epochs", "0"], "epochs must be a positive integer, got 0"),
    ],
)
def test_bad_input(searched: tuple[str, Path], tmp_path: Path, args: list[str], message: str,
                   cli: Callable[..., Ran]) -> None:  # fmt: skip
    url, _ = searched
    r = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], "--storage", url)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_final_needs_completed_trials_of_a_training_evaluator(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    automl.search("nb201", lambda a: {"accuracy": 1.0}, trials=1, storage=url, name="fn", progress=False)
    r = cli("final", "fn", "--storage", url)
    assert r.returncode == 2 and "not a training evaluator" in r.stderr
    r = cli("export", "fn/0", "--final", "--format", "pt", "-o", str(tmp_path / "x.pt"), "--storage", url)
    assert r.returncode == 2 and "has no final weights" in r.stderr and not (tmp_path / "x.pt").exists()


def _csv(path: Path) -> Path:
    import random

    rng = random.Random(0)
    lines = ["a,b,color,label"]
    for _ in range(240):
        a, b, color = rng.gauss(0, 1), rng.gauss(0, 1), rng.choice(["red", "green", "blue"])
        lines.append(f"{a},{b},{color},{'yes' if a + b + (color == 'red') > 0.5 else 'no'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _images(root: Path) -> Path:
    from PIL import Image

    for k, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(12):
            shade = tuple(max(0, c - 6 * i) for c in colour)
            Image.new("RGB", (10 + i % 3, 10), shade).save(root / f"class{k}" / f"{i}.png")
    return root


@pytest.mark.parametrize("kind", ["csv", "images"])
def test_a_users_table_and_image_folder_run_through_search_and_final(tmp_path: Path, kind: str) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    if kind == "csv":
        data = ["mlp", "--dataset", str(_csv(tmp_path / "t.csv")), "--target", "label"]
    else:
        data = ["cnn", "--dataset", str(_images(tmp_path / "imgs")), "--image-size", "8"]
    r = run_cli("search", *data, "--epochs", "2", "--trials", "2", "--strategy", "random", "--name", "u",
                "--no-progress", "--storage", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("final", "u", "--top", "1", "--seeds", "1", "--json", "--no-progress", "--storage", url)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["final"]
    assert 0.0 < row["test_accuracy_mean"] <= 1.0 and row["seeds"] == 1
    config = automl.load("u", storage=url).search.config
    assert (config.target, config.image_size) == (("label", None) if kind == "csv" else (None, 8))


def test_final_of_a_shared_search_retrains_the_best_on_the_final_pool(
    tmp_path: Path, cli: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluators import SharedWeightsEvaluator

    url, pool = f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "pool"
    r = cli("search", "mlp", "--dataset", "digits", "--evaluator", f"shared:{pool}", "--trials", "8", "--strategy",
            "random", "--seed", "0", "--name", "s", "--no-progress", "--storage", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    best = automl.leaderboard("s", storage=url, k=4)
    monkeypatch.chdir(tmp_path.parent)  # the pool is found where the search kept it, from anywhere
    r = cli("final", "s", "--top", "1", "--rescore", "4", "--seeds", "1", "--epochs", "1", "--json", "--no-progress",
            "--storage", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["final"]
    kept = json.loads((pool / "rescore.json").read_text())
    assert kept["pool_steps"] == 800 and len(kept["accuracy"]) == 4  # 8 children of 100 steps; the best 4 scored
    with Store(url) as store:
        keys = {t.number: t.arch_key for t in store.trials(store.get_search("s").id)}
    by_trial = {n: kept["accuracy"][keys[n]] for n in best["number"]}
    assert row["trial"] == max(by_trial, key=lambda n: by_trial[n]) and row["pool_score"] == by_trial[row["trial"]]

    def no_rescore(*a: object, **k: object) -> None:
        raise AssertionError("scored again")

    monkeypatch.setattr(SharedWeightsEvaluator, "rescore", no_rescore)
    last = int(best["number"].iloc[3])
    kept["accuracy"][keys[last]] = 1.0  # the kept scores decide, the search's order does not
    (pool / "rescore.json").write_text(json.dumps(kept))
    again = automl.final("s", storage=url, top=1, seeds=1, epochs=1, rescore=4, progress=False)
    assert [(s.number, s.pool_score) for s in again] == [(last, 1.0)]
    plain = automl.final("s", storage=url, top=1, seeds=1, epochs=1, progress=False)  # by default: the search's order
    assert [s.number for s in plain] == [int(best["number"].iloc[0])] and plain[0].pool_score is None
    (pool / "pool.pt").unlink()
    r = cli("final", "s", "--rescore", "2", "--storage", url)
    assert r.returncode == 2 and f"is not at {pool / 'pool.pt'}; give --rescore 0" in r.stderr
    assert not (pool / "pool.pt").exists()  # no new, empty pool in its place


def test_rescore_needs_a_pool_on_disk(searched: tuple[str, Path], cli: Callable[..., Ran]) -> None:
    url, _ = searched
    r = cli("final", "d", "--rescore", "3", "--storage", url)
    assert r.returncode == 2 and "has none on disk" in r.stderr and "--evaluator train" in r.stderr
    r = cli("final", "d", "--rescore", "-1", "--storage", url)
    assert r.returncode == 2 and "rescore must be an integer >= 0" in r.stderr and "Traceback" not in r.stderr


def test_final_on_a_missing_database_creates_none(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    r = cli("final", "d", "--storage", f"sqlite:///{tmp_path / 'typo.db'}")
    assert r.returncode == 2 and f"no database file {tmp_path / 'typo.db'}" in r.stderr
    assert not (tmp_path / "typo.db").exists()
