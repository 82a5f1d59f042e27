"""Executors against Optuna's own parallel mode, and the speed-up of K workers.

1. Throughput with a trivial evaluator (the store and the executor are all there is to measure):
   trials per second of ``automl.search`` with the inline, local (2 workers) and Ray (2 workers)
   executors, next to Optuna's parallel mode, several processes running ``study.optimize`` on one
   study in the same database (``optuna.create_study(storage=..., load_if_exists=True)``), on
   SQLite and on PostgreSQL. Both sides use random search over the NAS-Bench-201 cell (six edges,
   five operations) and the same objective. Two rates: over the trials' own span (first start to
   last finish, what a long search sees) and over the whole wall time (process start-up included).
2. Speed-up with K = 1, 2, 4 workers on an evaluator that sleeps (0.5 s): a GPU-bound training
   step looks like this to the driver. Ideal: K times.

    python benchmarks/executors.py            # about 2-3 minutes on 2 cores (with Ray and PostgreSQL)
    python benchmarks/executors.py --quick    # fewer trials
    python benchmarks/executors.py --no-ray --no-postgres

PostgreSQL: ``$AUTOML_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``);
each run works in a schema of its own, dropped at the end. Ray runs on loopback only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
PG_URL = os.environ.get("AUTOML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def trivial(arch: dict[str, Any]) -> dict[str, float]:
    ops = list(arch.values())
    return {"accuracy": ops.count("nor_conv_3x3") - 0.5 * ops.count("none")}


class Sleep:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, arch: dict[str, Any]) -> dict[str, float]:
        time.sleep(self.seconds)
        return trivial(arch)


# -- Optuna, several processes on one study -----------------------------------------------------------
def _optuna_worker(url: str, study: str, n: int, seed: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(
        study_name=study, storage=url, load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=seed)
    )

    def objective(trial: optuna.Trial) -> float:
        return trivial({e: trial.suggest_categorical(e, OPS) for e in EDGES})["accuracy"]

    s.optimize(objective, n_trials=n)


def bench_optuna(url: str, trials: int, processes: int) -> tuple[float, float]:
    """(trials/s over the trials' span, trials/s over the wall time)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"bench-{secrets.token_hex(4)}"
    optuna.create_study(study_name=name, storage=url, direction="maximize")  # tables and study, once
    ctx = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    procs = [ctx.Process(target=_optuna_worker, args=(url, name, trials // processes, i)) for i in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    done = [t for t in optuna.load_study(study_name=name, storage=url).trials if t.state.is_finished()]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return len(done) / span, len(done) / wall


# -- automl ---------------------------------------------------------------------------------------------
def bench_automl(
    url: str, evaluator: Callable[..., Any], trials: int, executor: str, workers: int, **options: Any
) -> tuple[float, float]:
    """(trials/s over the trials' span, trials/s over the wall time)."""
    import automl
    from store import Store, TrialStatus

    name = f"bench-{executor}-{workers}-{secrets.token_hex(3)}"
    start = time.perf_counter()
    automl.search(
        "nb201", evaluator, strategy="random", trials=trials, storage=url, name=name, executor=executor,
        workers=workers, executor_options=options, progress=False, seed=0,
    )  # fmt: skip
    wall = time.perf_counter() - start
    with Store(url) as store:
        done = store.trials(store.get_search(name).id, statuses=[TrialStatus.COMPLETED])
    assert len(done) == trials, (len(done), trials)
    span = (max(t.finished_at for t in done) - min(t.started_at for t in done)).total_seconds()
    return len(done) / span, len(done) / wall


# -- databases ------------------------------------------------------------------------------------------
@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.db"


@contextmanager
def postgres_url() -> Iterator[str]:
    """A schema of our own on the test server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"automl_bench_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [schema]
            )
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_reachable() -> str | None:
    """None if reachable, else why not."""
    try:
        with postgres_url():
            return None
    except Exception as e:
        return " ".join(str(e).split())[:120]


# -- report ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials")
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray executor out")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    trials = 40 if args.quick else 120
    sleep_trials = 8
    processes = 2
    started = time.perf_counter()

    ray_ok = not args.no_ray
    if ray_ok:
        try:
            from automl.executors._ray import init_local_ray

            init_local_ray(num_cpus=2)
        except ImportError:
            ray_ok = False
    databases: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_url)]
    if not args.no_postgres:
        why = postgres_reachable()
        if why is None:
            databases.append(("postgresql", postgres_url))
        else:
            print(f"(PostgreSQL left out: {why})")

    print(f"1. trivial evaluator, {trials} trials, random search; trials/s over the trials' span (over the wall time)")
    print(f"   Optuna: {processes} processes on one study. Ratios: automl / Optuna, span rates.\n")
    executors: list[tuple[str, str, int, dict[str, Any]]] = [
        ("inline", "inline", 1, {}),
        ("local x2", "local", 2, {}),
    ]
    if ray_ok:
        executors.append(("ray x2", "ray", 2, {}))
    header = f"   {'database':<11} {'optuna x' + str(processes):>18}" + "".join(f"{n:>26}" for n, *_ in executors)
    print(header)
    for db, make_url in databases:
        with make_url() as url:
            o_span, o_wall = bench_optuna(url, trials, processes)
        cells = [f"{o_span:8.1f} ({o_wall:5.1f})"]
        for _, executor, workers, options in executors:
            with make_url() as url:
                span, wall = bench_automl(url, trivial, trials, executor, workers, **options)
            cells.append(f"{span:7.1f} ({wall:5.1f}) x{span / o_span:4.2f}")
        print(f"   {db:<11} {cells[0]:>18}" + "".join(f"{c:>26}" for c in cells[1:]))

    print(f"\n2. evaluator sleeping 0.5 s, {sleep_trials} trials, SQLite: seconds over the trials' span, speed-up")
    runs: list[tuple[str, str, dict[str, Any]]] = [("local", "local", {})]
    if ray_ok:
        runs.append(("ray", "ray", {"num_cpus_per_trial": 0.5}))  # 4 actors on the 2 CPUs of the local Ray
    for label, executor, options in runs:
        base = None
        cells = []
        for k in (1, 2, 4):
            with sqlite_url() as url:
                span_rate, _ = bench_automl(url, Sleep(0.5), sleep_trials, executor, k, **options)
            seconds = sleep_trials / span_rate
            base = base or seconds
            cells.append(f"K={k}: {seconds:5.2f} s x{base / seconds:4.2f}")
        print(f"   {label:<6} " + "   ".join(cells))
    if ray_ok:
        import ray

        ray.shutdown()
    print(f"\n(total {time.perf_counter() - started:.0f} s; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
