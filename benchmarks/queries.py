"""How fast are the result queries (``store.queries``) on a big search? p50 / p95 per query.

Builds a database with one search of ``--trials`` trials (default 100,000: NAS-Bench-201-like
cells from an evolution-like run, realistic metrics, per-epoch steps, parents, a few failed,
pruned and infeasible trials) plus two smaller searches to compare with, by bulk insert, on a
SQLite file and on PostgreSQL (a schema of its own, dropped afterwards). Then times each query.

    python benchmarks/queries.py                         # both backends, 100,000 trials
    python benchmarks/queries.py --backend sqlite --trials 20000 --repeat 50
    AUTOML_TEST_POSTGRES_URL=postgresql+psycopg://me@db/x python benchmarks/queries.py --backend postgresql

The bulk insert goes through the same triggers as the store's own writes (they fill
``completed_trials`` and ``decision_counts``). On PostgreSQL the tables are VACUUM ANALYZEd after
loading, as autovacuum would do, so that index-only scans apply.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.engine import make_url

from store import SearchConfig, SearchRecord, Store, queries
from store._models import SearchModel, StepModel, TrialModel

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
_QUALITY = {"none": -0.04, "skip_connect": 0.0, "nor_conv_1x1": 0.02, "nor_conv_3x3": 0.05, "avg_pool_3x3": 0.005}
_PARAMS = {"none": 0, "skip_connect": 0, "nor_conv_1x1": 4_000, "nor_conv_3x3": 36_000, "avg_pool_3x3": 0}
PG_SERVER_URL = os.environ.get("AUTOML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _rows(search_id: int, n: int, seed: int, strategy: str) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Trial rows of an evolution-like search (mutations of recent good cells), and (number, epochs)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    population: list[tuple[float, dict[str, str]]] = []
    steps = []
    for number in range(n):
        parent = None
        if strategy == "evolution" and len(population) >= 50:
            sample = rng.sample(range(len(population)), 10)
            idx = max(sample, key=lambda i: population[i][0])
            parent = number - len(population) + idx
            arch = dict(population[idx][1])
            arch[rng.choice(EDGES)] = rng.choice(OPS)
        else:
            arch = {e: rng.choice(OPS) for e in EDGES}
        quality = sum(_QUALITY[op] for op in arch.values())
        # Saturating in the cell's quality, with training noise: realistic ties are rare.
        acc = round(0.45 + 0.5 / (1 + math.exp(-8 * quality)) + rng.gauss(0, 0.01), 5)
        params = 73_000 + 15 * sum(_PARAMS[op] for op in arch.values())
        roll = rng.random()
        status = "completed" if roll < 0.95 else "failed" if roll < 0.97 else "pruned" if roll < 0.99 else "infeasible"
        created = T0 + dt.timedelta(seconds=3 * number)
        finished = created + dt.timedelta(seconds=rng.uniform(5, 15))  # four workers: results out of order
        metrics: dict[str, Any] = {}
        if status in ("completed", "pruned"):
            metrics = {
                "accuracy": acc,
                "loss": round(2.3 * (1 - acc), 4),
                "params": params,
                "flops": params * 1024,
                "latency_ms": round(params / 250_000 + rng.uniform(0.1, 0.3), 3),
                "train_seconds": round(rng.uniform(5, 15), 2),
                "epochs": 3,
                "device": "cpu",
            }
            steps.append((number, 3 if status == "completed" else 1))
        rows.append(
            {
                "search_id": search_id, "number": number, "status": status, "arch": arch,
                "arch_key": f"{seed:04d}{number:012x}", "proposer": strategy, "parent": parent, "info": {},
                "metrics": metrics, "value": acc if status in ("completed", "pruned") else None,
                "error": "RuntimeError: CUDA out of memory (at nb201.py:121)" if status == "failed" else None,
                "worker": f"node{number % 4}:1", "attempts": 1, "created_at": created, "started_at": created,
                "finished_at": finished, "heartbeat_at": finished,
            }
        )  # fmt: skip
        if status == "completed":
            population.append((acc, arch))
            population = population[-100:]  # aging: the 100 most recent
    for seq, row in enumerate(sorted(rows, key=lambda r: (r["finished_at"], r["number"])), start=1):
        row["result_seq"] = seq
    return rows, steps


def build(url: str, trials: int) -> list[SearchRecord]:
    """Create the searches and bulk-insert their trials and steps; returns the searches."""
    sizes = [("bench-evolution", "evolution", trials), ("bench-random", "random", trials // 5)]
    sizes.append(("bench-evolution-2", "evolution", trials // 5))
    searches = []
    with Store(url) as store:
        for i, (name, strategy, _) in enumerate(sizes):
            config = {"trials": sizes[i][2], "dataset": "cifar10", "space_info": {"name": "nb201"}}
            record = store.create_search(
                name, SearchConfig(space="nb201", strategy=strategy, objectives=("accuracy",), **config)
            )
            searches.append(record)
    engine = create_engine(url)
    try:
        for search, (_, strategy, n) in zip(searches, sizes, strict=True):
            rows, steps = _rows(search.id, n, seed=search.id, strategy=strategy)
            # One multi-row INSERT per transaction of 1,000 trials: the triggers then run once per
            # statement on PostgreSQL (psycopg's executemany would run one statement per row, and
            # thousands of updates of the same counter rows in one transaction slow PostgreSQL down).
            for start in range(0, len(rows), 1000):
                with engine.begin() as conn:
                    conn.execute(insert(TrialModel.__table__).values(rows[start : start + 1000]))
            with engine.begin() as conn:
                numbers = select(TrialModel.number, TrialModel.id).where(TrialModel.search_id == search.id)
                ids = dict(conn.execute(numbers).all())
                step_rows = [
                    {"trial_id": ids[number], "step": e, "metrics": {"accuracy": 0.5, "loss": 1.0}, "value": 0.5,
                     "created_at": T0}
                    for number, epochs in steps for e in range(1, epochs + 1)
                ]  # fmt: skip
                for start in range(0, len(step_rows), 10000):
                    conn.execute(insert(StepModel.__table__), step_rows[start : start + 10000])
                counters = {"trial_count": n, "result_count": n, "created_at": T0}  # the trials' time line
                conn.execute(update(SearchModel).where(SearchModel.id == search.id).values(**counters))
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return searches


def timings(url: str, searches: list[SearchRecord], repeat: int) -> dict[str, list[float]]:
    main = searches[0].name
    rng = random.Random(0)
    cases: dict[str, Callable[[Store], Any]] = {
        "leaderboard k=10": lambda s: queries.leaderboard(s, main, 10),
        "leaderboard k=100 proposer": lambda s: queries.leaderboard(s, main, 100, proposer="evolution"),
        "leaderboard all searches": lambda s: queries.leaderboard(s, None, 10, strategy="evolution"),
        "best_so_far by number": lambda s: queries.best_so_far(s, main, by="number"),
        "best_so_far by time": lambda s: queries.best_so_far(s, main, by="time"),
        "pareto params": lambda s: queries.pareto(s, main, "params"),
        "pareto flops": lambda s: queries.pareto(s, main, "flops"),
        "pareto latency_ms": lambda s: queries.pareto(s, main, "latency_ms"),
        "cost_points 2000": lambda s: queries.cost_points(s, main, "params", limit=2000),
        "value_points 2000": lambda s: queries.value_points(s, main, limit=2000),
        "decision_stats k=1000": lambda s: queries.decision_stats(s, main),
        "decision_stats k=100": lambda s: queries.decision_stats(s, main, k=100),
        "trial_detail": lambda s: queries.trial_detail(s, main, rng.randrange(searches[0].config.trials)),
        "summary (counts/best/median/curve)": lambda s: queries.summary(s, main),
        "compare 3 searches": lambda s: queries.compare(s, [x.name for x in searches]),
        "version": lambda s: queries.version(s, main),
        "Store.counts": lambda s: s.counts(searches[0].id),
    }
    out: dict[str, list[float]] = {}
    with Store(url, read_only=True) as store:
        for name, case in cases.items():
            case(store)  # warm: the first call also compiles the statement
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                case(store)
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = times
    return out


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def report(label: str, build_s: float, results: dict[str, list[float]]) -> None:
    print(f"\n{label} (built in {build_s:.0f} s)")
    print(f"  {'query':38s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, times in results.items():
        print(f"  {name:38s} {_p(times, 50):8.1f} {_p(times, 95):8.1f}")


@contextmanager
def _pg_schema(server: str) -> Iterator[str]:
    """A URL on a fresh schema of the server, dropped (with everything in it) afterwards."""
    schema = f"automl_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000, help="trials in the main search (default 100,000)")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query (default 30)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            t0 = time.perf_counter()
            searches = build(url, args.trials)
            report(f"SQLite, {args.trials:,} trials", time.perf_counter() - t0, timings(url, searches, args.repeat))
    if args.backend in ("postgresql", "both"):
        with _pg_schema(PG_SERVER_URL) as url:
            t0 = time.perf_counter()
            searches = build(url, args.trials)
            report(f"PostgreSQL, {args.trials:,} trials", time.perf_counter() - t0, timings(url, searches, args.repeat))


if __name__ == "__main__":
    main()
