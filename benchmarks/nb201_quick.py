"""Quick NAS-Bench-201 sanity check of the search strategies: ask/tell directly, no store.

The paper's protocol (Dong & Yang, ICLR 2020): search on ``valid_acc_12ep`` with a simulated
budget of 12,000 s (each evaluation costs 12 x train_seconds_per_epoch, the last one may overrun),
then report the chosen cell's ``test_acc_200ep`` (and ``valid_acc_200ep``), mean +- std over seeds.

    python benchmarks/nb201_quick.py                       # random evolution rl reinforce tpe, 30 seeds
    python benchmarks/nb201_quick.py evolution --seeds 100 --options '{"population_size": 20}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import controller
from controller import Result
from evaluators._tabular import TabularEvaluator

_EVALUATOR: TabularEvaluator | None = None


def _evaluator(path: str | None) -> TabularEvaluator:
    global _EVALUATOR
    if _EVALUATOR is None:
        _EVALUATOR = TabularEvaluator.nb201(path)
        _EVALUATOR.table  # noqa: B018 - load once per process
    return _EVALUATOR


def run_one(strategy: str, seed: int, budget: float, options: dict[str, Any], path: str | None) -> dict[str, float]:
    """One search; returns the chosen cell's metrics and the search's size."""
    import search_spaces

    ev = _evaluator(path)
    proposer = controller.make(strategy, search_spaces.get("nb201"), seed=seed, **options)
    spent, n, best = 0.0, 0, None
    while spent < budget:
        proposal = proposer.ask()
        metrics = ev(proposal.arch)
        spent += metrics["cost"]
        score = metrics["valid_acc_12ep"]
        proposer.tell(Result(n, proposal.arch, "completed", score, parent=proposal.parent, info=proposal.info))
        if best is None or score > best["valid_acc_12ep"]:
            best = metrics
        n += 1
    assert best is not None
    return {"test": best["test_acc_200ep"], "valid": best["valid_acc_200ep"], "evals": n}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("strategies", nargs="*", default=["random", "evolution", "rl", "reinforce", "tpe"])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=12_000.0)
    parser.add_argument("--options", default="{}", help="JSON keyword options for every strategy")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--table", default=None, help="path of cifar10.csv (default: found above the repo)")
    args = parser.parse_args(argv)
    options = json.loads(args.options)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    header = f"{'strategy':<10} {'test_acc_200ep':>16} {'valid_acc_200ep':>16} {'evals':>6} {'n':>4} {'seconds':>8}"
    print(f"{header}  {options}")
    with ProcessPoolExecutor(args.jobs) as pool:
        for strategy in args.strategies:
            start = time.perf_counter()
            jobs = [pool.submit(run_one, strategy, s, args.budget, options, args.table) for s in seeds]
            runs = [j.result() for j in jobs]
            seconds = time.perf_counter() - start
            test = np.array([r["test"] for r in runs])
            valid = np.array([r["valid"] for r in runs])
            evals = np.mean([r["evals"] for r in runs])
            print(
                f"{strategy:<10} {test.mean():>8.2f} ± {test.std():<5.2f} {valid.mean():>8.2f} ± {valid.std():<5.2f}"
                f" {evals:>6.1f} {len(runs):>4} {seconds:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
