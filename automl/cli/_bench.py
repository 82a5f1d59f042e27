"""``automl bench``: strategies x seeds on NAS-Bench-201 under the paper's protocol."""

from __future__ import annotations

import argparse
import time

from automl._errors import UsageError

__all__ = ["register"]

_DEFAULT = "random,evolution,rl,reinforce,tpe,optuna"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark strategies on NAS-Bench-201 (paper protocol)",
        description="Run each strategy --runs times on the NAS-Bench-201 table: search on valid_acc_12ep "
        "with a 12,000 s simulated budget, report the chosen cell's 200-epoch accuracies (mean ± std). "
        "'optuna' is Optuna's own loop with TPE, the peer.",
    )
    p.add_argument("--strategies", default=_DEFAULT, help=f"comma-separated (default: {_DEFAULT})")
    p.add_argument("--runs", type=int, default=100, help="runs (seeds) per strategy (default: 100)")
    p.add_argument("--budget", type=float, default=12_000.0, help="simulated seconds per run (default: 12000)")
    p.add_argument("--table", default=None, help="NAS-Bench-201 CSV (default: ../shared/benchmarks/nb201/cifar10.csv)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--plot", default="nb201-bench.png", help="best-so-far plot (PNG) to write")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_bench)


def _check(args: argparse.Namespace) -> list[str]:
    """The strategies to run; every argument checked before anything starts."""
    import controller

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    known = set(controller.strategies()) | {"optuna"}
    for s in strategies:
        if s not in known:
            raise UsageError(f"unknown strategy {s!r}; choose among {', '.join(sorted(known))}")
    if args.runs < 1:
        raise UsageError(f"--runs must be a positive integer, got {args.runs}")
    if args.budget <= 0:
        raise UsageError(f"--budget must be positive, got {args.budget}")
    try:
        from evaluators import TabularEvaluator

        TabularEvaluator.nb201(args.table).table  # noqa: B018 - fail fast on a missing or bad table
    except (FileNotFoundError, ValueError, OSError) as e:
        raise UsageError(str(e)) from e
    return strategies


_COLUMNS = ["strategy", "runs", "evals", "valid_acc_200ep", "test_acc_200ep", "paper", "vs TPE", "vs best", "trials/s"]


def _row(r: dict) -> tuple:
    return (
        r["strategy"],
        r["runs"],
        f"{r['evals_per_run']:.1f}",
        f"{r['valid_mean']:.2f} ± {r['valid_std']:.2f}",
        f"{r['test_mean']:.2f} ± {r['test_std']:.2f}",
        "-" if r["paper_test"] is None else f"{r['paper_test']:.2f}",
        "-" if r["vs_tpe"] is None else f"{r['vs_tpe']:+.2f}",
        f"{r['vs_best_cell']:+.2f}",
        f"{r['trials_per_second']:.0f}",
    )


def _bench(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from automl import _bench as bench
    from automl.cli._render import print_json, table

    strategies = _check(args)
    t0 = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("runs", total=args.runs * len(strategies))
        result = bench.run_bench(
            strategies, args.runs, budget=args.budget, table=args.table, processes=args.processes,
            on_run=lambda r: bar.advance(task),
        )  # fmt: skip
    wall = time.perf_counter() - t0
    rows = bench.summary_rows(result)
    if args.json:
        print_json({"wall_seconds": wall, "budget": args.budget, "strategies": rows})
    else:
        title = (
            f"NAS-Bench-201 CIFAR-10, budget {args.budget:.0f} simulated s, {args.runs} runs each, {wall:.0f} s wall"
        )
        table(title, _COLUMNS, [_row(r) for r in rows])
    if args.plot:
        print(f"plot: {bench.plot(result, args.plot)}")
    return 0
