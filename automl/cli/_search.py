"""``automl search``, ``automl train`` and ``automl spaces``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from automl._checks import check_positive_int, check_seed
from automl._errors import UsageError
from automl._resolve import default_storage
from search_spaces import Decision
from store import SearchConfig, SearchRecord, safe_url

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
    add_data_arguments(p)
    p.add_argument(
        "--evaluator",
        default="train",
        help="train (on --dataset) | shared[:POOL_DIR] (weight sharing) | table (NAS-Bench-201) | path/file.py:fn",
    )
    p.add_argument("--table", default=None, metavar="CSV", help="NAS-Bench-201 table for --evaluator table")
    p.add_argument("--strategy", default="evolution", help="search strategy (default: evolution)")
    p.add_argument(
        "--trials", type=int, default=None, help="finished evaluations wanted (default: 24, none with --budget/--time)"
    )
    p.add_argument("--budget", type=float, default=None, help="stop at this many simulated seconds (metric 'cost')")
    p.add_argument("--time", type=parse_duration, default=None, help="stop proposing after this long: 600, 30m, 2h")
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
    p.add_argument(
        "--pruner", default="none", help="none | median | asha | hyperband: stop poor trials early (default: none)"
    )
    p.add_argument("--pruner-option", action="append", default=[], metavar="KEY=VALUE", help="pruner setting")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)")
    p.add_argument("--name", default=None, help="search name; an existing name resumes it")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="strategy option, repeatable")
    p.add_argument("--retries", type=int, default=2, help="retries of a trial after a transient failure")
    p.add_argument("--max-failures", type=int, default=10, help="stop after this many failures in a row")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_search)

    t = sub.add_parser("train", help="train one architecture and print its metrics")
    t.add_argument("space", nargs="?", help="built-in space or path/file.py:fn (default: the --arch file's)")
    t.add_argument("--arch", required=True, help="architecture as JSON, or @file.json (e.g. from automl export)")
    add_data_arguments(t)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=_train)

    s = sub.add_parser("spaces", help="list the built-in search spaces with their sizes")
    s.add_argument("space", nargs="?", help="show one space's decisions (a name or path/file.py:fn)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_spaces)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """What children train on and how: the data and the training recipe (search, train, final)."""
    g = p.add_argument_group("data and training recipe")
    g.add_argument("--dataset", default="digits", help="digits | mnist1d | data.npz | data.csv | FOLDER | file.py:fn")
    g.add_argument("--target", default=None, help="the label column of a CSV dataset")
    g.add_argument("--image-size", type=int, default=None, help="resize a folder's images to SIZE x SIZE")
    g.add_argument("--epochs", type=int, default=None, help="training epochs per child (default: 10)")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3)")
    g.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: 128)")
    g.add_argument("--optimizer", default=None, help="adam | adamw | sgd (Nesterov) (default: adam)")
    g.add_argument("--schedule", default=None, help="constant | cosine | onecycle (default: constant)")
    g.add_argument("--augment", default=None, help="none | auto | crop,flip,cutout | shift (default: none)")


def recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given on the command line (``--lr`` ...), by field name."""
    given = {"lr": args.lr, "batch_size": args.batch_size, "optimizer": args.optimizer,
             "schedule": args.schedule, "augment": args.augment}  # fmt: skip
    return {k: v for k, v in given.items() if v is not None}


def parse_duration(text: str) -> float:
    """``600``, ``90s``, ``30m``, ``2h`` or ``1.5h`` -> seconds (argparse type: a bad one is exit 2)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or a duration like 30m or 2h, got {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive, got {text!r}")
    return seconds


def parse_options(items: list[str], flag: str = "--option") -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are JSON where they parse (numbers, true, lists), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{flag} {key.strip()}: {raw!r} is not a finite number")
        out[key.strip()] = value
    return out


def _executor_options(args: argparse.Namespace, executor: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for flag, key, value in (
        ("--ray-address", "address", args.ray_address),
        ("--gpus-per-trial", "num_gpus_per_trial", args.gpus_per_trial),
        ("--cpus-per-trial", "num_cpus_per_trial", args.cpus_per_trial),
    ):
        if value is not None:
            if executor != "ray":
                raise UsageError(f"{flag} needs --executor ray")
            options[key] = value
    return options


def search_config(args: argparse.Namespace) -> SearchConfig:
    """The :class:`SearchConfig` that ``automl search``'s arguments describe (checked)."""
    from automl._resolve import config, objectives_from_text, space_spec

    table_eval = args.evaluator.startswith("table")
    executor = args.executor or ("local" if args.workers != 1 else "inline")
    evaluator = args.evaluator
    if args.table is not None:
        if evaluator != "table":
            raise UsageError("--table needs --evaluator table")
        evaluator = f"table:{Path(args.table).resolve()}"
    elif ".py:" in evaluator:
        evaluator = space_spec(evaluator)  # absolute: the stored search is found from anywhere
    limited = args.budget is not None or args.time is not None
    return config(
        space=space_spec(args.space), evaluator=evaluator, dataset=None if table_eval else _data_spec(args.dataset),
        target=args.target, image_size=args.image_size, epochs=args.epochs, recipe=recipe_options(args),
        strategy=args.strategy, strategy_options=parse_options(args.option),
        objectives=objectives_from_text(args.objective or ("valid_acc_12ep" if table_eval else "accuracy")),
        trials=args.trials if args.trials is not None or limited else 24, budget=args.budget, time=args.time,
        seed=args.seed, executor=executor, workers=args.workers,
        executor_options=_executor_options(args, executor), pruner=args.pruner,
        pruner_options=parse_options(args.pruner_option, "--pruner-option"), retries=args.retries,
        max_failures=args.max_failures,
        keep_weights=str(Path(args.keep_weights).resolve()) if args.keep_weights else None,
    )  # fmt: skip


def _data_spec(text: str) -> str:
    """A built-in dataset as it is; a file, folder or ``file.py:fn`` made absolute (found from anywhere)."""
    from automl._resolve import space_spec
    from evaluators import datasets

    if text in datasets.names():
        return text
    spec = space_spec(text)  # file.py:fn made absolute, like a space's
    return spec if spec != text else str(Path(text).resolve())


def _search(args: argparse.Namespace) -> int:
    from automl._search import prepare
    from automl.cli._render import console

    prepared = prepare(search_config(args), name=args.name, storage=args.storage)
    out, shown = console(), safe_url(prepared.storage)

    def header(record: SearchRecord, resuming: bool) -> None:  # once the search is stored and ours
        c, verb = record.config, "resuming" if resuming else "search"
        limits = [f"{c.trials} trials" if c.trials else "", f"budget {c.budget:g}" if c.budget else "",
                  f"time {c.time:g} s" if c.time else ""]  # fmt: skip
        stop = ", ".join(x for x in limits if x)
        out.print(f"{verb} [bold]{record.name}[/]: space {c.space}, {c.strategy}, {stop}, storage {shown}")

    try:
        res = prepared.run(progress=not args.no_progress, on_start=header)
    except KeyboardInterrupt:
        again = f" Resume with --name {args.name}" if args.name else ""
        sys.stderr.write(f"automl: interrupted; unfinished trials were put back.{again}\n")
        return 130
    from automl.cli._results import print_leaderboard

    print_leaderboard(res.storage, res.search, 5)
    where = "" if prepared.storage == default_storage() else f" --storage '{shown}'"
    out.print(
        f"\nResults are in {shown} (search [bold]{res.name}[/]). Look at them with:\n"
        f"  automl top {res.name}{where}\n  automl show {res.name}/<trial>{where}\n"
        f"  automl status{where}\n  automl dashboard{where}"
    )
    return 0


def _read_arch(text: str) -> tuple[dict[str, Any], str | None]:
    """The architecture of ``--arch`` (JSON, or ``@file``), and its space when the file is an
    ``automl export --format json`` (whose ``arch`` is taken)."""
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
    if {"arch", "arch_key", "space"} <= set(arch) and isinstance(arch["arch"], dict):  # an exported trial
        return dict(arch["arch"]), str(arch["space"])
    return arch, None


def _train(args: argparse.Namespace) -> int:
    from automl._resolve import evaluator_from_spec, resolve_space
    from automl.cli._render import print_json, table
    from automl.executors import Job, run_job
    from search_spaces import Arch

    if args.epochs is not None:
        check_positive_int("epochs", args.epochs)
    check_seed(args.seed)
    arch, exported_space = _read_arch(args.arch)
    if args.space is None and exported_space is None:
        raise UsageError("give the space (built-in name or path/file.py:fn), or --arch @file from automl export")
    space, spec = resolve_space(args.space or exported_space)
    if exported_space is not None and args.space is not None and spec != exported_space:
        raise UsageError(f"--arch was exported from space {exported_space!r}, not {spec!r}")
    evaluator = evaluator_from_spec(
        "train", space, dataset=_data_spec(args.dataset), epochs=args.epochs, seed=args.seed,
        recipe=recipe_options(args), data_options={"target": args.target, "image_size": args.image_size},
    )  # fmt: skip
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


def _decision_row(d: Decision) -> tuple[str, str, Any, str]:
    """name, kind, how many values, which: a range decision shows its bounds and scale."""
    if d.ranged:
        count = "continuous" if d.kind == "float" else d.cardinality
        return d.name, d.kind, count, f"[{d.low}, {d.high}]" + (" log" if d.log else "")
    return d.name, d.kind, len(d.options), ", ".join(map(str, d.options))[:80]


def _spaces(args: argparse.Namespace) -> int:
    import search_spaces
    from automl._resolve import discover, resolve_space
    from automl.cli._render import print_json, table

    if args.space:
        space, _ = resolve_space(args.space)
        discover(space)
        if args.json:
            print_json({**space.describe(), "size": str(space.size())})
        else:
            size = space.size()
            title = f"{space.name}: " + ("continuous (float decisions)" if size.continuous else f"{size} architectures")
            table(title, ["decision", "kind", "options", "values"], [_decision_row(d) for d in space.decisions])
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
