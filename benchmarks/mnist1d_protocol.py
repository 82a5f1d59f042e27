"""MNIST-1D, the paper's protocol: search ``cnn1d`` under a time budget, retrain the best, report test.

MNIST-1D (Greydanus 2020) has a standard split: 4,000 training and 1,000 test sequences of length
40. The 1,000 are the test set; the search splits its own validation off the 4,000 and never sees
the test set. Two searches run side by side, one CPU thread each, with the same space, trainer and
time budget:

- automl: ``automl search cnn1d --dataset mnist1d --time T`` (aging evolution), then
  ``automl final --top K --seeds S``;
- the peer: Optuna's own loop (``study.optimize(timeout=T)``, its default TPE sampler) over the
  same space (define-by-run, each decision suggested as it is asked) and the same
  ``TrainingEvaluator``; its K best architectures are retrained the same way.

The table puts the final test accuracies beside the MNIST-1D paper's (logistic regression 32%,
MLP 68%, CNN 94%, GRU 91%, human expert 96%)::

    python benchmarks/mnist1d_protocol.py                      # --time 20m, top 3, 3 seeds
    python benchmarks/mnist1d_protocol.py --time 2m --seeds 1 --final-epochs 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PAPER = {"logistic regression": 32.0, "MLP": 68.0, "CNN": 94.0, "GRU": 91.0, "human expert": 96.0}


def _recipe(args: argparse.Namespace) -> dict[str, Any]:
    return {"epochs": args.epochs, "threads": 1, "optimizer": "adamw", "schedule": "cosine", "augment": "shift",
            "lr": 3e-3, "weight_decay": 1e-2}  # fmt: skip


def _evaluator(args: argparse.Namespace, seed: int = 0):  # type: ignore[no-untyped-def]
    from evaluators import TrainConfig, TrainingEvaluator

    return TrainingEvaluator("cnn1d", "mnist1d", TrainConfig(**_recipe(args), seed=seed))


def run_automl(args: argparse.Namespace) -> dict[str, Any]:
    import automl
    from automl import SearchConfig, prepare

    url = f"sqlite:///{Path(args.workdir) / 'mnist1d.db'}"
    recipe = {k: v for k, v in _recipe(args).items() if k != "epochs"}  # threads=1: side by side with the peer
    config = SearchConfig(space="cnn1d", dataset="mnist1d", epochs=args.epochs, recipe=recipe, strategy="evolution",
                          trials=None, time=args.time, seed=0, strategy_options={"population_size": 10,
                                                                                  "sample_size": 5})  # fmt: skip
    t0 = time.perf_counter()
    result = prepare(config, name="m1", storage=url).run(progress=False)
    searched = time.perf_counter() - t0
    t1 = time.perf_counter()
    finals = automl.final("m1", storage=url, top=args.top, seeds=args.seeds, epochs=args.final_epochs, progress=False)
    return {
        "who": "automl (evolution)",
        "evaluated": result.counts().get("completed", 0),
        "search_seconds": searched,
        "final_seconds": time.perf_counter() - t1,
        "finals": [{"trial": f.number, "mean": f.mean, "std": f.std, "val": f.search_value} for f in finals],
    }


def _choose(trial):  # type: ignore[no-untyped-def]
    """Suggest each decision of the space as it is asked (Optuna's define-by-run)."""

    def choose(d):  # type: ignore[no-untyped-def]
        if d.kind == "float":
            return trial.suggest_float(d.name, d.low, d.high, log=d.log)
        if d.kind == "integer" and d.log:
            return trial.suggest_int(d.name, int(d.low), int(d.high), log=True)
        return d.json_value(trial.suggest_categorical(d.name, list(range(len(d.options)))))

    return choose


def run_optuna(args: argparse.Namespace) -> dict[str, Any]:
    import optuna

    import search_spaces
    from search_spaces import Arch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluator = _evaluator(args)
    space = search_spaces.get("cnn1d").bind(**evaluator.context)
    archs: dict[int, Arch] = {}

    def objective(trial):  # type: ignore[no-untyped-def]
        arch = space.trace(_choose(trial)).arch
        archs[trial.number] = arch
        return evaluator.evaluate(arch)["accuracy"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    t0 = time.perf_counter()
    study.optimize(objective, timeout=args.time)
    searched = time.perf_counter() - t0
    done = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)
    chosen, seen = [], set()
    for t in done:
        if archs[t.number].key not in seen:
            seen.add(archs[t.number].key)
            chosen.append(t)
        if len(chosen) == args.top:
            break
    t1 = time.perf_counter()
    finals = []
    for t in chosen:
        accs = [evaluator.final(archs[t.number], seed=s, epochs=args.final_epochs)["test_accuracy"]
                for s in range(args.seeds)]  # fmt: skip
        finals.append({"trial": t.number, "mean": statistics.fmean(accs),
                       "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "val": t.value})  # fmt: skip
    finals.sort(key=lambda f: -f["mean"])
    return {"who": "Optuna TPE, own loop (peer)", "evaluated": len(done), "search_seconds": searched,
            "final_seconds": time.perf_counter() - t1, "finals": finals}  # fmt: skip


def _run(job: tuple[str, argparse.Namespace]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    name, args = job
    return run_automl(args) if name == "automl" else run_optuna(args)


def _duration(text: str) -> float:
    from automl.cli._search import parse_duration

    return parse_duration(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--time", type=_duration, default=1200.0, help="search time budget (default: 20m)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs per child during the search")
    p.add_argument("--final-epochs", type=int, default=40, help="training epochs of the final retraining")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workdir", default=None, help="where the search database goes (default: a temporary folder)")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnist1d-") as tmp:
        args.workdir = args.workdir or tmp
        t0 = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(2) as pool:  # one CPU thread each, side by side
            results = pool.map(_run, [("automl", args), ("optuna", args)])
        wall = time.perf_counter() - t0
    print(f"MNIST-1D (4,000 train incl. validation / 1,000 test), cnn1d, search {args.time:.0f} s each, "
          f"{args.epochs} epochs per child; final: top {args.top} x {args.seeds} seeds x {args.final_epochs} epochs "
          f"on train+val; {wall:.0f} s wall in all\n")  # fmt: skip
    print(f"{'model':44} {'test accuracy %':>18} {'evaluated':>10}")
    for name, acc in PAPER.items():
        print(f"{'paper: ' + name:44} {acc:>18.1f} {'':>10}")
    for r in results:
        for rank, f in enumerate(r["finals"], 1):
            label = f"{r['who']} #{rank} (trial {f['trial']})"
            print(f"{label:44} {100 * f['mean']:>11.2f} ± {100 * f['std']:.2f} {r['evaluated']:>10}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "wall_seconds": wall, "results": results}, indent=2))


if __name__ == "__main__":
    main()
