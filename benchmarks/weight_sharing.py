"""Weight sharing on ``cnn1d`` / MNIST-1D: does it rank architectures, and does it pay off?

(a) **Rank correlation.** ``--archs`` architectures sampled at random are trained stand-alone
    (``TrainingEvaluator``, ``--epochs`` epochs of a short recipe) and scored on shared weights
    (``SharedWeightsEvaluator``: after ``--warmup`` random children have trained the pool, each
    is trained ``--steps`` minibatches on the pool and scored on the validation split). Kendall's
    tau between the two validation accuracies, beside a zero-cost baseline (tau of the parameter
    count) and the CPU-seconds of each. With ``--cache FILE`` the stand-alone results (accuracy,
    parameters, the CPU-seconds they took) are kept in a JSON file and reused by later runs with
    the same architectures, epochs and seed: the shared side can be re-measured without
    retraining the reference.
(b) **The pipeline.** Aging evolution with shared weights (``--shared-trials``) against aging
    evolution with stand-alone training (``--trials``); the ``--top`` architectures of each are
    retrained from scratch on train+val (``TrainingEvaluator.final``, ``--final-epochs``) and
    measured on the test split. Reported: the mean test accuracy of the top ones and of the
    search's best, and compute in CPU-seconds (``time.process_time()`` of this process, all its
    threads, plus that of finished child processes) for the search, the final step and both.
    With ``--rescore N`` (default 10) the shared side is reported twice: its top ones in the
    search's order, and the top of its best N re-scored on the final pool (``automl final
    --rescore``), whose CPU includes the re-scoring.

The issue's goal: the same final accuracy (within 0.5 points) at a tenth of the compute or less.
Every evaluation runs on ``--threads`` CPU threads (1: the measures compare like with like)::

    python benchmarks/weight_sharing.py                                       # the full version
    python benchmarks/weight_sharing.py --archs 12 --trials 20 --final-epochs 10   # a quick look
    python benchmarks/weight_sharing.py --skip pipeline --cache sa.json       # (a) only, reference kept
    python benchmarks/weight_sharing.py --skip rank --skip shared             # one side of (b): one process each
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@contextmanager
def _metered(into: dict[str, float], name: str) -> Iterator[None]:
    start = _cpu()
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + _cpu() - start


def _standalone(args: argparse.Namespace, epochs: int | None = None):  # type: ignore[no-untyped-def]
    from evaluators import TrainConfig, TrainingEvaluator

    recipe = {"epochs": epochs or args.epochs, "threads": args.threads, "optimizer": "adamw", "schedule": "cosine",
              "augment": "shift", "lr": 3e-3, "weight_decay": 1e-2, "seed": args.seed, "device": "cpu"}  # fmt: skip
    return TrainingEvaluator("cnn1d", "mnist1d", TrainConfig(**recipe))


def _shared(args: argparse.Namespace, pool_dir: Path | None = None):  # type: ignore[no-untyped-def]
    from evaluators import SharedConfig, SharedWeightsEvaluator

    cfg = SharedConfig(steps_per_child=args.steps, threads=args.threads, seed=args.seed, device="cpu",
                       pool_dir=None if pool_dir is None else str(pool_dir))  # fmt: skip
    return SharedWeightsEvaluator("cnn1d", "mnist1d", cfg)


# -- (a) rank correlation -----------------------------------------------------------------------


def rank_correlation(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from scipy.stats import kendalltau

    standalone, shared = _standalone(args), _shared(args)
    space = standalone._bound
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    warm_rng = np.random.default_rng(args.seed + 1)
    cpu: dict[str, float] = {"standalone": 0.0}
    alone = [_cached_standalone(args, standalone, a, cpu) for a in archs]
    with _metered(cpu, "shared_warmup"):
        for _ in range(args.warmup):
            shared.evaluate(space.sample(warm_rng))
    with _metered(cpu, "shared"):
        scored = [shared.evaluate(a) for a in archs]
    truth = [m["accuracy"] for m in alone]
    tau = kendalltau([m["accuracy"] for m in scored], truth).statistic
    tau_params = kendalltau([m["params"] for m in alone], truth).statistic
    return {
        "archs": args.archs,
        "tau_shared": float(tau),
        "tau_params": float(tau_params),
        "standalone_acc_mean": statistics.mean(truth),
        "shared_acc_mean": statistics.mean(m["accuracy"] for m in scored),
        "shared_fraction_mean": statistics.mean(m["shared_fraction"] for m in scored),
        "cpu": cpu,
    }


def _cached_standalone(args: argparse.Namespace, evaluator: Any, arch: Any, cpu: dict[str, float]) -> dict[str, Any]:
    """A stand-alone result for (a), from ``--cache`` when it holds one (with the CPU it took then)."""
    path = Path(args.cache) if args.cache else None
    cache = json.loads(path.read_text()) if path is not None and path.exists() else {}
    key = json.dumps({"arch": dict(arch), "epochs": args.epochs, "seed": args.seed}, sort_keys=True, default=str)
    if key not in cache:
        start = _cpu()
        m = evaluator.evaluate(arch)
        cache[key] = {"accuracy": m["accuracy"], "params": m["params"], "cpu": _cpu() - start}
        if path is not None:
            path.write_text(json.dumps(cache, indent=1))
    cpu["standalone"] += cache[key]["cpu"]
    return cache[key]


# -- (b) the pipeline -----------------------------------------------------------------------------


def _search(args: argparse.Namespace, evaluator: Any, name: str, trials: int, workdir: Path, k: int) -> list[dict]:
    """The search's ``k`` best distinct architectures, best first."""
    import automl

    options = {"population_size": args.population, "sample_size": max(2, args.population // 2)}
    res = automl.search("cnn1d", evaluator, strategy="evolution", trials=trials, storage=f"sqlite:///{workdir}/b.db",
                        name=name, seed=args.seed, strategy_options=options, progress=False)  # fmt: skip
    frame = res.trials
    frame = frame[frame["status"] == "completed"].sort_values("value", ascending=False, kind="stable")
    best = {_key(a): dict(a) for a in frame["arch"]}  # first seen (best) of each architecture
    return list(best.values())[:k]


def _key(arch: dict[str, Any]) -> str:
    return json.dumps(arch, sort_keys=True, default=str)


def pipeline(args: argparse.Namespace, who: str, make: Callable[[], Any], trials: int, workdir: Path) -> list[dict]:
    """One side of (b); for the shared side with ``--rescore N`` also the variant whose top ones
    are chosen among the search's best N re-scored on the final pool (``automl final --rescore``)."""
    cpu: dict[str, float] = {}
    evaluator = make()
    rescore = args.rescore if who == "shared" else 0
    with _metered(cpu, "search"):
        ranked = _search(args, evaluator, who, trials, workdir, max(args.top, rescore))
    final = _standalone(args, args.final_epochs)
    tested: dict[str, tuple[float, float]] = {}  # architecture -> (test accuracy, CPU of its final training)

    def row(name: str, chosen: list[dict[str, Any]], search_cpu: float) -> dict[str, Any]:
        for a in chosen:
            if _key(a) not in tested:
                start = _cpu()
                accuracy = final.final(a, seed=args.seed, epochs=args.final_epochs)["test_accuracy"]
                tested[_key(a)] = (accuracy, _cpu() - start)
        tests = [tested[_key(a)][0] for a in chosen]
        final_cpu = sum(tested[_key(a)][1] for a in chosen)  # each pipeline pays for its own
        spent = {"search": search_cpu, "final": final_cpu, "total": search_cpu + final_cpu}
        return {"who": name, "trials": trials, "test_top_mean": statistics.mean(tests), "test_best": tests[0],
                "tests": tests, "cpu": spent}  # fmt: skip

    rows = [row(who, ranked[: args.top], cpu["search"])]
    if rescore:
        with _metered(cpu, "rescore"):
            scores = [m["accuracy"] for m in evaluator.rescore(ranked)]
        order = sorted(range(len(ranked)), key=lambda i: -scores[i])  # stable: ties keep the search's order
        rows.append(row(f"{who}+rescore", [ranked[i] for i in order[: args.top]], cpu["search"] + cpu["rescore"]))
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", type=int, default=50, help="architectures for the rank correlation (a)")
    p.add_argument(
        "--warmup", type=int, default=None, help="random children that train the pool first (default: --archs)"
    )
    p.add_argument("--steps", type=int, default=100, help="minibatches per child on shared weights")
    p.add_argument("--epochs", type=int, default=10, help="stand-alone training epochs (a, and the stand-alone search)")
    p.add_argument("--trials", type=int, default=100, help="stand-alone search trials (b)")
    p.add_argument("--shared-trials", type=int, default=None, help="shared-weights search trials (default: --trials)")
    p.add_argument("--population", type=int, default=20, help="aging evolution's population (sample: half)")
    p.add_argument("--top", type=int, default=3, help="architectures of each search retrained at the end")
    p.add_argument("--rescore", type=int, default=10, metavar="N",
                   help="shared side: also the top of its best N re-scored on the final pool (0: not)")  # fmt: skip
    p.add_argument("--final-epochs", type=int, default=30, help="epochs of the final training on train+val")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", choices=["rank", "pipeline", "shared", "standalone"], action="append", default=[],
                   help="leave a part out (repeatable): rank (a), pipeline (b), or one side of (b)")  # fmt: skip
    p.add_argument("--cache", default=None,
                   help="JSON file of stand-alone results of (a): read where present, else added")  # fmt: skip
    p.add_argument("--workdir", default=None, help="where the stores and the pool go (default: a temporary folder)")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    args.warmup = args.archs if args.warmup is None else args.warmup
    args.shared_trials = args.trials if args.shared_trials is None else args.shared_trials
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        out: dict[str, Any] = {"args": vars(args)}
        if "rank" not in args.skip:
            out["rank"] = rank_correlation(args)
            _print_rank(out["rank"])
        if "pipeline" not in args.skip:
            rows = []
            if "shared" not in args.skip:
                make = lambda: _shared(args, workdir / "pool")  # noqa: E731
                rows += pipeline(args, "shared", make, args.shared_trials, workdir)
            if "standalone" not in args.skip:
                rows += pipeline(args, "standalone", lambda: _standalone(args), args.trials, workdir)
            out["pipeline"] = rows
            _print_pipeline(rows, args.top)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


def _print_rank(r: dict[str, Any]) -> None:
    c = r["cpu"]
    print(f"\n(a) rank correlation over {r['archs']} random cnn1d architectures (Kendall tau vs stand-alone accuracy)")
    print(f"  shared-weight score      tau {r['tau_shared']:+.3f}   CPU {c['shared']:8.1f} s "
          f"(+ {c['shared_warmup']:.1f} s warm-up)   mean acc {100 * r['shared_acc_mean']:.1f}%  "
          f"params already in the pool {100 * r['shared_fraction_mean']:.0f}%")  # fmt: skip
    print(f"  parameter count          tau {r['tau_params']:+.3f}   CPU {0:8.1f} s")
    print(f"  stand-alone (reference)                CPU {c['standalone']:8.1f} s   "
          f"mean acc {100 * r['standalone_acc_mean']:.1f}%")  # fmt: skip


def _print_pipeline(rows: list[dict[str, Any]], top: int) -> None:
    print(f"\n(b) search, then retrain the top {top} on train+val and measure on test")
    print(f"  {'':15} {'trials':>6} {'test top-' + str(top):>11} {'test best':>10} "
          f"{'CPU search':>11} {'CPU final':>10} {'CPU total':>10}")  # fmt: skip
    for r in rows:
        c = r["cpu"]
        print(f"  {r['who']:15} {r['trials']:>6} {100 * r['test_top_mean']:>10.2f}% {100 * r['test_best']:>9.2f}% "
              f"{c['search']:>10.1f}s {c['final']:>9.1f}s {c['total']:>9.1f}s")  # fmt: skip
    alone = next((r for r in rows if r["who"] == "standalone"), None)
    for r in rows if alone is not None else []:
        if r is alone:
            continue
        gap = 100 * (r["test_top_mean"] - alone["test_top_mean"])
        print(f"  {r['who']} - stand-alone: {gap:+.2f} points (top-{top} mean); compute "
              f"{r['cpu']['search'] / alone['cpu']['search']:.2f}x for the search, "
              f"{r['cpu']['total'] / alone['cpu']['total']:.2f}x in total")  # fmt: skip


if __name__ == "__main__":
    main()
