"""Multi-fidelity on ``cnn1d`` / MNIST-1D: no pruning against ASHA and Hyperband, same time budget.

Each variant runs ``automl search cnn1d --dataset mnist1d --time T`` (aging evolution, the same
recipe and seed) with its own ``--pruner``, side by side in its own process on one CPU thread, then
``automl final --top K`` retrains its best architectures on train+val and scores them on the test
split. Reported per variant:

- **architectures evaluated**: trials started (completed, pruned or paused) within the budget,
  and the ratio to the search without pruning (the issue's goal: at least 3x);
- **promoted**: paused trials that ASHA or Hyperband later resumed from their checkpoint;
- **epochs trained** in all, and per architecture;
- **time to 94%**: search seconds until a fully trained child first scored 94% on validation;
- **final test accuracy**: the best of the top ``K`` retrained, and their mean (the goal: no
  worse than without pruning).

::

    python benchmarks/fidelity.py                  # 45 min each, 27 epochs per full evaluation (~75 min wall)
    python benchmarks/fidelity.py --time 5m --epochs 9 --final-epochs 9   # a quick look
    python benchmarks/fidelity.py --variants none asha asha:min_resource=1

A variant is ``none`` or a pruner name, with ``:option=value,...`` settings (``--option``-style).
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

_TARGET = 0.94


def _variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = json.loads(value)
    return name, options


def run_variant(job: tuple[str, argparse.Namespace]) -> dict[str, Any]:
    """One search and its final step, in this process (one CPU thread)."""
    import torch

    import automl
    from automl import SearchConfig, prepare
    from store import Store, TrialStatus

    torch.set_num_threads(1)
    text, args = job
    pruner, options = _variant(text)
    name = text.replace(":", "-").replace("=", "").replace(",", "-")
    url = f"sqlite:///{Path(args.workdir) / f'{name}.db'}"
    recipe = {"threads": 1, "optimizer": "adamw", "schedule": "cosine", "augment": "shift", "lr": 3e-3,
              "weight_decay": 1e-2}  # fmt: skip
    config = SearchConfig(
        space="cnn1d", dataset="mnist1d", epochs=args.epochs, recipe=recipe, strategy="evolution",
        strategy_options={"population_size": 10, "sample_size": 5}, trials=None, time=args.time, seed=args.seed,
        pruner=pruner, pruner_options=options,
    )  # fmt: skip
    t0 = time.perf_counter()
    prepare(config, name=name, storage=url).run(progress=False)
    searched = time.perf_counter() - t0
    t1 = time.perf_counter()
    finals = automl.final(name, storage=url, top=args.top, seeds=args.seeds, epochs=args.final_epochs, progress=False)
    final_seconds = time.perf_counter() - t1
    with Store(url) as store:
        search = store.get_search(name)
        trials = store.trials(search.id)
        epochs = sum(len(store.steps(search.id, t.number)) for t in trials)
    started = min(t.started_at for t in trials if t.started_at is not None)
    reached = [
        (t.finished_at - started).total_seconds()
        for t in trials
        if t.status is TrialStatus.COMPLETED and (t.value or 0) >= _TARGET and t.finished_at is not None
    ]
    means = [f.mean for f in finals if f.mean is not None]
    return {
        "variant": text,
        "evaluated": sum(t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED) for t in trials),
        "completed": sum(t.status is TrialStatus.COMPLETED for t in trials),
        "promoted": sum(bool(t.metrics.get("resumed_from")) for t in trials),
        "epochs": epochs,
        "time_to_target": min(reached, default=None),
        "best_val": max((t.value for t in trials if t.status is TrialStatus.COMPLETED and t.value), default=None),
        "final_best": max(means, default=None),
        "final_mean": statistics.fmean(means) if means else None,
        "search_seconds": searched,
        "final_seconds": final_seconds,
    }


def _duration(text: str) -> float:
    from automl.cli._search import parse_duration

    return parse_duration(text)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--time", type=_duration, default=2700.0, help="search time budget of each variant (default: 45m)")
    p.add_argument("--epochs", type=int, default=27, help="training epochs of a full evaluation during the search")
    p.add_argument("--final-epochs", type=int, default=27, help="training epochs of the final retraining")
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="the searches' seed")
    p.add_argument("--variants", nargs="+", default=["none", "asha", "hyperband"])
    p.add_argument("--workdir", default=None, help="where the search databases go (default: a temporary folder)")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        args.workdir = args.workdir or tmp
        t0 = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(len(args.variants)) as pool:  # side by side, 1 thread each
            results = pool.map(run_variant, [(v, args) for v in args.variants])
        wall = time.perf_counter() - t0
    base = next((r for r in results if r["variant"] == "none"), results[0])
    print(f"cnn1d / MNIST-1D, {len(results)} searches side by side, {args.time:.0f} s each, {args.epochs} epochs per "
          f"full evaluation; final: top {args.top} x {args.seeds} seed(s) x {args.final_epochs} epochs on train+val, "
          f"scored on test; {wall:.0f} s wall in all\n")  # fmt: skip
    head = ("pruner", "evaluated", "x none", "promoted", "epochs", "per arch", f"s to {_TARGET:.0%}",
            "best val %", "final best %", f"final top-{args.top} %")  # fmt: skip
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for r in results:
        ratio = r["evaluated"] / base["evaluated"] if base["evaluated"] else float("nan")
        reach = "-" if r["time_to_target"] is None else f"{r['time_to_target']:.0f}"
        row = (r["variant"], r["evaluated"], f"{ratio:.2f}", r["promoted"], r["epochs"],
               f"{r['epochs'] / max(1, r['evaluated']):.1f}", reach, _pct(r["best_val"]), _pct(r["final_best"]),
               _pct(r["final_mean"]))  # fmt: skip
        print(" | ".join(map(str, row)))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "wall_seconds": wall, "results": results}, indent=2))


if __name__ == "__main__":
    main()
