"""Trials per second of the search loop with a trivial evaluator, against Optuna's own loop.

Both write every trial to an SQLite file and use random sampling over the same six NAS-Bench-201
decisions, in the same process, one after the other:

    python benchmarks/loop_overhead.py            # 1,000 trials each
    python benchmarks/loop_overhead.py --trials 300 --storage-dir /tmp
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

import automl
import search_spaces


def trivial(arch):
    return {"accuracy": float(len(set(arch.values())))}


def run_automl(path: Path, trials: int, strategy: str) -> float:
    url = f"sqlite:///{path}"
    automl.search("nb201", trivial, strategy=strategy, trials=10, storage=url, name="warmup", progress=False)
    t0 = time.perf_counter()
    automl.search("nb201", trivial, strategy=strategy, trials=trials, storage=url, name="timed", progress=False)
    return trials / (time.perf_counter() - t0)


def run_optuna(path: Path, trials: int, sampler: optuna.samplers.BaseSampler) -> float:
    space = search_spaces.get("nb201")
    names = [d.name for d in space.decisions]
    ops = list(space.decisions[0].options)

    def objective(trial: optuna.Trial) -> float:
        return trivial({n: trial.suggest_categorical(n, ops) for n in names})["accuracy"]

    storage = f"sqlite:///{path}"
    optuna.create_study(storage=storage, study_name="warmup", direction="maximize").optimize(objective, n_trials=10)
    study = optuna.create_study(storage=storage, study_name="timed", direction="maximize", sampler=sampler)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return trials / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--storage-dir", default=None, help="where the SQLite files go (default: a temp dir)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(dir=args.storage_dir) as d:
        ours_random = run_automl(Path(d) / "automl-random.db", args.trials, "random")
        ours_evo = run_automl(Path(d) / "automl-evo.db", args.trials, "evolution")
        peer_random = run_optuna(Path(d) / "optuna-random.db", args.trials, optuna.samplers.RandomSampler(seed=0))
        peer_tpe = run_optuna(Path(d) / "optuna-tpe.db", args.trials, optuna.samplers.TPESampler(seed=0))
    print(f"{args.trials} trials, trivial evaluator, SQLite file, one process")
    print(f"  automl random     {ours_random:8.1f} trials/s   x{ours_random / peer_random:.2f} of Optuna random")
    print(f"  automl evolution  {ours_evo:8.1f} trials/s   x{ours_evo / peer_random:.2f} of Optuna random")
    print(f"  Optuna random     {peer_random:8.1f} trials/s")
    print(f"  Optuna TPE        {peer_tpe:8.1f} trials/s")


if __name__ == "__main__":
    main()
