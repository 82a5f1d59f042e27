"""Strategies x seeds on NAS-Bench-201 under the paper's protocol, through the real search loop.

Protocol (Dong & Yang, ICLR 2020): search on ``valid_acc_12ep`` with a simulated budget of
12,000 s (each evaluation costs 12 x train_seconds_per_epoch; trials start while the spent
budget is below it), then report the chosen cell's ``valid_acc_200ep`` and ``test_acc_200ep``.
Every run goes through ``automl.search`` with a SQLite store, so the figures include the store's
overhead. ``optuna`` is the peer: Optuna's own ``study.optimize`` loop with its TPE sampler on
the same table, no automl code involved.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PAPER", "BenchResult", "RunResult", "run_bench"]

# Published results (NAS-Bench-201 paper, Table 5, CIFAR-10): mean, std of test_acc_200ep.
PAPER = {"random": (93.70, 0.36), "evolution": (93.92, 0.30), "reinforce": (93.85, 0.37), "bohb": (93.61, 0.52)}
BEST_CELL_TEST = 94.37
_GRID = np.linspace(0, 12_000, 61)  # best-so-far curve sampled every 200 simulated seconds


@dataclass(frozen=True)
class RunResult:
    strategy: str
    seed: int
    valid: float  # chosen cell's valid_acc_200ep
    test: float  # chosen cell's test_acc_200ep
    evals: int
    seconds: float  # wall time of the run
    curve: tuple[float, ...]  # best-so-far test_acc_200ep on _GRID (chosen by valid_acc_12ep)


@dataclass
class BenchResult:
    budget: float
    runs: list[RunResult] = field(default_factory=list)

    def by_strategy(self) -> dict[str, list[RunResult]]:
        out: dict[str, list[RunResult]] = {}
        for r in self.runs:
            out.setdefault(r.strategy, []).append(r)
        return out


_STATE: dict[str, Any] = {}


def _init(table: str | None, workdir: str) -> None:
    from evaluators import TabularEvaluator

    ev = TabularEvaluator.nb201(table)
    ev.table  # noqa: B018 - read the CSV once per process
    _STATE.update(evaluator=ev, db=f"sqlite:///{workdir}/bench-{os.getpid()}.db")


def _curve(history: Sequence[tuple[float, float, float]], budget: float) -> tuple[float, ...]:
    """``history``: (cost, valid_acc_12ep, test_acc_200ep) in evaluation order -> values on the grid."""
    grid = _GRID * (budget / 12_000)
    spent, best_valid, best_test = 0.0, -math.inf, math.nan
    points: list[float] = []
    i = 0
    for t in grid:
        while i < len(history) and spent + history[i][0] <= t:
            spent += history[i][0]
            if history[i][1] > best_valid:
                best_valid, best_test = history[i][1], history[i][2]
            i += 1
        points.append(best_test)
    # The protocol's last evaluation starts before the budget and may end after it: it counts.
    for _, valid, test in history[i:]:
        if valid > best_valid:
            best_valid, best_test = valid, test
    points[-1] = best_test
    return tuple(points)


def _run_automl(strategy: str, seed: int, budget: float) -> RunResult:
    import automl
    from store import Store, TrialStatus

    ev = _STATE["evaluator"]
    t0 = time.perf_counter()
    res = automl.search(
        "nb201",
        ev,
        strategy=strategy,
        trials=100_000,
        budget=budget,
        objective="valid_acc_12ep",
        storage=_STATE["db"],
        name=f"{strategy}-{seed}",
        seed=seed,
        progress=False,
    )
    seconds = time.perf_counter() - t0
    store = Store(_STATE["db"])
    try:
        done = store.trials(res.search.id, statuses=[TrialStatus.COMPLETED], order="result_seq")
    finally:
        store.close()
    history = [(t.metrics["cost"], t.metrics["valid_acc_12ep"], t.metrics["test_acc_200ep"]) for t in done]
    best = max(done, key=lambda t: (t.metrics["valid_acc_12ep"], -t.number))
    return RunResult(
        strategy,
        seed,
        best.metrics["valid_acc_200ep"],
        best.metrics["test_acc_200ep"],
        len(done),
        seconds,
        _curve(history, budget),
    )


def _run_optuna(seed: int, budget: float) -> RunResult:
    """The peer: Optuna's own loop and TPE sampler, in memory, on the same table."""
    import optuna

    import search_spaces

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ev = _STATE["evaluator"]
    names = [d.name for d in search_spaces.get("nb201").decisions]
    ops = list(search_spaces.get("nb201").decisions[0].options)
    history: list[tuple[float, float, float]] = []
    state = {"spent": 0.0}

    def objective(trial: optuna.Trial) -> float:
        m = ev.evaluate({n: trial.suggest_categorical(n, ops) for n in names})
        state["spent"] += m["cost"]
        history.append((m["cost"], m["valid_acc_12ep"], m["test_acc_200ep"]))
        return m["valid_acc_12ep"]

    def stop(study: optuna.Study, trial: Any) -> None:
        if state["spent"] >= budget:
            study.stop()

    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=100_000, callbacks=[stop])
    seconds = time.perf_counter() - t0
    best = max(range(len(history)), key=lambda i: history[i][1])
    row = ev.evaluate({n: study.trials[best].params[n] for n in names})
    return RunResult(
        "optuna", seed, row["valid_acc_200ep"], row["test_acc_200ep"], len(history), seconds, _curve(history, budget)
    )


def _one(strategy: str, seed: int, budget: float) -> RunResult:
    return _run_optuna(seed, budget) if strategy == "optuna" else _run_automl(strategy, seed, budget)


def run_bench(
    strategies: Sequence[str],
    runs: int,
    *,
    budget: float = 12_000.0,
    table: str | None = None,
    processes: int | None = None,
    on_run: Any = None,
) -> BenchResult:
    """Every strategy ``runs`` times (seeds 0..runs-1), spread over ``processes`` processes."""
    processes = processes or min(len(os.sched_getaffinity(0)), 8)
    result = BenchResult(budget)
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as workdir:
        jobs = [(s, seed) for seed in range(runs) for s in strategies]
        with ProcessPoolExecutor(processes, initializer=_init, initargs=(table, workdir)) as pool:
            futures = [pool.submit(_one, s, seed, budget) for s, seed in jobs]
            for f in futures:
                result.runs.append(f.result())
                if on_run is not None:
                    on_run(result.runs[-1])
    return result


def plot(result: BenchResult, path: str | Path) -> Path:
    """Best-so-far test accuracy against simulated time: mean ± standard error per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = _GRID * (result.budget / 12_000)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, runs in sorted(result.by_strategy().items()):
        curves = np.array([r.curve for r in runs], dtype=float)
        with warnings.catch_warnings():  # before any run's first result a grid column is all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(curves, axis=0), np.nanstd(curves, axis=0)
        have = np.sum(~np.isnan(curves), axis=0)
        mean[have < len(runs) / 2] = np.nan  # too few runs have a result yet to average
        sem = std / np.sqrt(np.maximum(have, 1))
        ax.plot(grid, mean, label=f"{name} ({len(runs)} runs)")
        ax.fill_between(grid, mean - sem, mean + sem, alpha=0.2)
    ax.axhline(BEST_CELL_TEST, color="black", linestyle=":", label=f"best cell ({BEST_CELL_TEST})")
    ax.set(
        xlabel="simulated training seconds",
        ylabel="test_acc_200ep of the best cell so far (%, mean ± s.e.)",
        title="NAS-Bench-201 CIFAR-10: best-so-far by strategy",
        ylim=(92.5, 94.5),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def summary_rows(result: BenchResult) -> list[dict[str, Any]]:
    """Mean ± std per strategy, with the paper's figure and the distance to TPE and the best cell."""
    groups = result.by_strategy()
    means = {k: float(np.mean([r.test for r in v])) for k, v in groups.items()}
    peer = means.get("tpe", means.get("optuna"))
    rows = []
    for name, runs in sorted(groups.items(), key=lambda kv: -means[kv[0]]):
        test = np.array([r.test for r in runs])
        valid = np.array([r.valid for r in runs])
        evals = sum(r.evals for r in runs)
        seconds = sum(r.seconds for r in runs)
        paper = PAPER.get(name)
        rows.append(
            {
                "strategy": name,
                "runs": len(runs),
                "evals_per_run": evals / len(runs),
                "valid_mean": float(valid.mean()),
                "valid_std": float(valid.std()),
                "test_mean": float(test.mean()),
                "test_std": float(test.std()),
                "paper_test": None if paper is None else paper[0],
                "vs_tpe": None if peer is None else float(test.mean() - peer),
                "vs_best_cell": float(test.mean() - BEST_CELL_TEST),
                "trials_per_second": evals / seconds if seconds else None,
            }
        )
    return rows
