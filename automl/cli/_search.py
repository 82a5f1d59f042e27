"""``automl search``, ``automl train`` and ``automl spaces``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from automl._checks import UsageError

__all__ = ["register"]

_DEMO = "cnn on digits, aging evolution, 24 trials of 10 epochs, on the CPU"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="run (or resume) an architecture search",
        description=f"Run an architecture search. With no arguments: a demo ({_DEMO}). "
        "Re-running with the same --name resumes the search.",
    )
    p.add_argument("space", nargs="?", default="cnn", help="built-in space (see `automl spaces`) or path/file.py:fn")
    p.add_argument("--dataset", default="digits", help="digits | mnist1d | path/to/data.npz (default: digits)")
    p.add_argument(
        "--evaluator", default="train", help="train (on --dataset) | table[:PATH] (NAS-Bench-201) | path/file.py:fn"
    )
    p.add_argument("--strategy", default="evolution", help="search strategy (default: evolution)")
    p.add_argument("--trials", type=int, default=24, help="finished evaluations wanted (default: 24)")
    p.add_argument("--budget", type=float, default=None, help="stop at this many simulated seconds (metric 'cost')")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per child (default: 10)")
    p.add_argument(
        "--keep-weights", default=None, metavar="DIR", help="save each trained child's weights in DIR (for export)"
    )
    p.add_argument(
        "--objective", default=None, help="metric to maximize, '-name' to minimize, a,b for several (default: accuracy)"
    )
    p.add_argument(
        "--workers", type=int, default=1, help="evaluations in flight (default: 1; 0: one per GPU, else per CPU core)"
    )
    p.add_argument("--executor", default=None, help="inline | local | ray (default: inline, local if --workers != 1)")
    p.add_argument("--ray-address", default=None, help="join a Ray cluster: auto or HOST:PORT (with --executor ray)")
    p.add_argument("--gpus-per-trial", type=float, default=None, help="GPUs per trial, may be fractional (ray)")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs per trial (ray; default: 1)")
    p.add_argument("--pruner", default="none", help="none | asha: stop poor trials early (default: none)")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)")
    p.add_argument("--name", default=None, help="search name; an existing name resumes it")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option, repeatable")
    p.add_argument("--retries", type=int, default=2, help="retries of a trial after a transient failure")
    p.add_argument("--max-failures", type=int, default=10, help="stop after this many failures in a row")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_search)

    t = sub.add_parser("train", help="train one architecture and print its metrics")
    t.add_argument("space", help="built-in space or path/file.py:fn")
    t.add_argument("--arch", required=True, help="architecture as JSON, or @file.json")
    t.add_argument("--dataset", default="digits")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=_train)

    s = sub.add_parser("spaces", help="list the built-in search spaces with their sizes")
    s.add_argument("space", nargs="?", help="show one space's decisions (a name or path/file.py:fn)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_spaces)


def parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are JSON where they parse (numbers, true, lists), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _search(args: argparse.Namespace) -> int:
    import automl
    from automl._api import _next_name, open_store, resolve_space
    from automl._evaluator_spec import evaluator_from_spec
    from automl._render import console

    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.trials < 1:
        raise UsageError(f"trials must be a positive integer, got {args.trials}")
    options = parse_options(args.option)
    space, spec = resolve_space(args.space)
    spec_text = args.evaluator if args.evaluator != "train" else args.dataset
    evaluator = evaluator_from_spec(
        spec_text,
        space,
        dataset=args.dataset,
        epochs=args.epochs,
        seed=args.seed,
        weights_dir=str(Path(args.keep_weights).resolve()) if args.keep_weights else None,  # export runs elsewhere
    )
    table_eval = args.evaluator.startswith("table")
    objective: str | list[str] = args.objective or ("valid_acc_12ep" if table_eval else "accuracy")
    if "," in objective:  # several objectives, for nsga2: accuracy,-params
        objective = [o.strip() for o in objective.split(",")]
    executor = args.executor or ("local" if args.workers != 1 else "inline")
    executor_options: dict[str, Any] = {}
    for flag, key, value in (
        ("--ray-address", "address", args.ray_address),
        ("--gpus-per-trial", "num_gpus_per_trial", args.gpus_per_trial),
        ("--cpus-per-trial", "num_cpus_per_trial", args.cpus_per_trial),
    ):
        if value is not None:
            if executor != "ray":
                raise UsageError(f"{flag} needs --executor ray")
            executor_options[key] = value
    storage = args.storage or automl._api.default_storage()
    store = open_store(storage)
    try:
        name = args.name or _next_name(store, f"{space.name}-{args.strategy}")
        resuming = store.find_search(name) is not None
        shown = store.safe_url  # no password in the output
    finally:
        store.close()
    out = console()
    verb = "resuming" if resuming else "search"
    out.print(f"{verb} [bold]{name}[/]: space {spec}, {args.strategy}, {args.trials} trials, storage {shown}")
    try:
        res = automl.search(
            space,
            evaluator,
            strategy=args.strategy,
            trials=args.trials,
            objective=objective,
            storage=storage,
            name=name,
            seed=args.seed,
            workers=args.workers,
            executor=executor,
            budget=args.budget,
            strategy_options=options,
            executor_options=executor_options,
            retries=args.retries,
            max_failures=args.max_failures,
            progress=not args.no_progress,
            pruner=args.pruner,
            config={"dataset": args.dataset, "evaluator_spec": args.evaluator, "epochs": args.epochs},
            _space_spec=spec,
        )
    except KeyboardInterrupt:
        sys.stderr.write(f"automl: interrupted; unfinished trials were put back. Resume with --name {name}\n")
        return 130
    from automl._cmd_results import print_leaderboard

    print_leaderboard(res.storage, res.search, 5)
    out.print(
        f"\nResults are in {shown} (search [bold]{name}[/]). Look at them with:\n"
        f"  automl top {name}\n  automl show {name}/<trial>\n  automl status\n  automl dashboard"
    )
    return 0


def _read_arch(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise UsageError(f"--arch file {str(path)!r} does not exist")
        text = path.read_text()
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--arch is not valid JSON: {e}") from e
    if not isinstance(arch, dict):
        raise UsageError(f"--arch must be a JSON object of decision name to value, got {type(arch).__name__}")
    return arch


def _train(args: argparse.Namespace) -> int:
    from automl._api import resolve_space
    from automl._evaluator_spec import evaluator_from_spec
    from automl._jobs import Job, run_job
    from automl._render import print_json, table
    from search_spaces import Arch

    space, _ = resolve_space(args.space)
    arch = _read_arch(args.arch)
    evaluator = evaluator_from_spec(args.dataset, space, epochs=args.epochs, seed=args.seed)
    bound = space.bind(**evaluator.context)
    bound.validate(arch)  # InvalidArchitecture names the decision -> exit 2
    done = run_job(evaluator, Job(0, Arch(arch)), "accuracy", lambda step: False)
    if args.json:
        print_json({"status": done.status, "metrics": dict(done.metrics), "error": done.error})
    else:
        table(f"{space.name} on {args.dataset}: {done.status}", ["metric", "value"], sorted(done.metrics.items()))
        if done.error:
            sys.stderr.write(f"error: {done.error}\n")
    return 0 if done.status == "completed" else 1


def _spaces(args: argparse.Namespace) -> int:
    import search_spaces
    from automl._api import discover, resolve_space
    from automl._render import print_json, table

    if args.space:
        space, _ = resolve_space(args.space)
        discover(space)
        if args.json:
            print_json({**space.describe(), "size": str(space.size())})
        else:
            rows = [(d.name, d.kind, len(d.options), ", ".join(map(str, d.options))[:80]) for d in space.decisions]
            table(f"{space.name}: {space.size()} architectures", ["decision", "kind", "options", "values"], rows)
        return 0
    rows = []
    for name in search_spaces.names():
        sp = search_spaces.get(name)
        rows.append((name, len(sp.decisions), str(sp.size()), "yes" if sp.conditional else "no", sp.description))
    if args.json:
        print_json(
            [dict(zip(["name", "decisions", "size", "conditional", "description"], r, strict=True)) for r in rows]
        )
    else:
        table(None, ["space", "decisions", "size", "conditional", "description"], rows)
    return 0
