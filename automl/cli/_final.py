"""``automl final``: retrain a search's best architectures on train+val, score them on test."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "final",
        help="retrain the best architectures on train+val and report test accuracy",
        description="Retrain the top K architectures of a search from scratch on the training and validation "
        "data, for several seeds, and score each on the test split the search never saw. Results are stored "
        "(run again: only what is missing is trained) and shown by `automl top` and `automl show`.",
    )
    p.add_argument("search", help="search name")
    p.add_argument("--top", type=int, default=3, help="how many architectures (default: 3)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the search's)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per architecture (default: 3)")
    p.add_argument("--rescore", type=int, default=0, metavar="N",
                   help="weight-sharing searches: score the best N again on the final pool and retrain the top "
                   "of those (default: 0, the search's order)")  # fmt: skip
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_final)


def _final(args: argparse.Namespace) -> int:
    from automl._checks import check_name
    from automl._final import final
    from automl.cli._render import arch_summary, print_json, table

    summaries = final(
        check_name(args.search), storage=args.storage, top=args.top, epochs=args.epochs, seeds=args.seeds,
        rescore=args.rescore, progress=not args.no_progress,
    )  # fmt: skip
    if args.json:
        print_json({"search": args.search, "final": [s.to_json() for s in summaries]})
        return 0
    rescored = any(s.pool_score is not None for s in summaries)
    rows = [
        (i + 1, s.number, _pm(s.mean, s.std), len(s.runs), s.search_value)
        + ((s.pool_score,) if rescored else ())
        + (arch_summary(s.arch),)
        for i, s in enumerate(summaries)
    ]
    columns = ["rank", "trial", "test accuracy (mean ± std)", "seeds", "search value (val)"]
    columns += ["final pool (val)"] if rescored else []
    columns += ["architecture"]
    table(f"final training of {args.search}: trained on train+val, scored on test", columns, rows)
    return 0


def _pm(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.4f} ± {std or 0:.4f}"
