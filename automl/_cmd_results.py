"""``automl status``, ``automl top`` and ``automl show``: read the store, print tables or JSON."""

from __future__ import annotations

import argparse
import datetime as dt

from automl._checks import UsageError
from store import NotFound, SearchRecord, Store, TrialRecord, TrialStatus

__all__ = ["latest_search", "print_leaderboard", "register", "resolve_trial"]


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    s = sub.add_parser("status", parents=[common], help="searches with their trial counts and running trials")
    s.set_defaults(func=_status)

    t = sub.add_parser("top", parents=[common], help="the best trials of a search")
    t.add_argument("name", nargs="?", help="search name (default: the latest)")
    t.add_argument("-n", type=int, default=10, help="how many (default: 10)")
    t.set_defaults(func=_top)

    w = sub.add_parser("show", parents=[common], help="one trial: decisions, metrics, error")
    w.add_argument("trial", help="NUMBER (latest search), SEARCH/NUMBER, or --search SEARCH NUMBER")
    w.add_argument("--search", default=None, help="search name (default: the latest)")
    w.set_defaults(func=_show)


def _open(args: argparse.Namespace) -> Store:
    from automl._api import open_store

    return open_store(args.storage)


def latest_search(store: Store) -> SearchRecord:
    searches = store.list_searches()
    if not searches:
        raise NotFound(f"no searches in {store.url}; run `automl search` first")
    return max(searches, key=lambda s: (s.created_at, s.id))


def resolve_trial(store: Store, text: str, search_name: str | None) -> tuple[SearchRecord, TrialRecord]:
    """``7``, ``name/7`` or ``name:7`` -> the search and its trial."""
    name, number_text = search_name, text
    for sep in ("/", ":"):
        if sep in text:
            name, _, number_text = text.rpartition(sep)
            break
    if not number_text.isdigit():
        raise UsageError(f"trial must be a number, SEARCH/NUMBER or SEARCH:NUMBER, got {text!r}")
    search = store.get_search(name) if name else latest_search(store)
    return search, store.get_trial(search.id, int(number_text))


def _age(t: dt.datetime | None) -> str:
    if t is None:
        return "-"
    seconds = (dt.datetime.now(dt.timezone.utc) - t).total_seconds()
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def _state(search: SearchRecord, finished: int, target: int | None) -> str:
    beat = search.driver_heartbeat_at
    if search.driver and beat and (dt.datetime.now(dt.timezone.utc) - beat).total_seconds() < 30:
        return "running"
    return "done" if target and finished >= target else "stopped"


def _best(store: Store, search: SearchRecord) -> TrialRecord | None:
    top = leaderboard(store, search, 1)
    return top[0] if top else None


def leaderboard(store: Store, search: SearchRecord, n: int) -> list[TrialRecord]:
    """The ``n`` best completed trials."""
    try:
        from store import queries

        return queries.leaderboard(store, search.id, n)
    except ImportError:
        done = [t for t in store.trials(search.id, statuses=[TrialStatus.COMPLETED]) if t.value is not None]
        done.sort(key=lambda t: (-t.value if search.maximize else t.value, t.number))  # type: ignore[operator]
        return done[:n]


def _status(args: argparse.Namespace) -> int:
    from automl._render import print_json, table

    store = _open(args)
    try:
        searches = store.list_searches()
        rows, running_rows, payload = [], [], []
        for s in searches:
            counts = store.counts(s.id)
            best = _best(store, s)
            target = s.config.get("trials")
            running = store.trials(s.id, statuses=[TrialStatus.RUNNING])
            finished = counts[TrialStatus.COMPLETED] + counts[TrialStatus.PRUNED]
            state = _state(s, finished, target)
            rows.append(
                (
                    s.name,
                    s.strategy,
                    s.space,
                    f"{finished}/{target}",
                    counts[TrialStatus.RUNNING],
                    counts[TrialStatus.FAILED],
                    counts[TrialStatus.PRUNED],
                    None if best is None else best.value,
                    state,
                )
            )
            running_rows += [(s.name, t.number, t.worker, _age(t.started_at), _age(t.heartbeat_at)) for t in running]
            payload.append(
                {
                    "name": s.name,
                    "strategy": s.strategy,
                    "space": s.space,
                    "objective": s.objectives[0],
                    "target": target,
                    "state": state,
                    "driver": s.driver,
                    "counts": {k.value: v for k, v in counts.items()},
                    "best": None if best is None else {"number": best.number, "value": best.value},
                    "running": [{"number": t.number, "worker": t.worker, "started_at": t.started_at} for t in running],
                }
            )
    finally:
        store.close()
    if args.json:
        print_json(payload)
        return 0
    if not rows:
        print(f"no searches in {store.url}; run `automl search` to start one")
        return 0
    cols = ["search", "strategy", "space", "done", "running", "failed", "pruned", "best", "state"]
    table(f"searches in {store.url}", cols, rows)
    if running_rows:
        table("running trials", ["search", "trial", "worker", "age", "heartbeat"], running_rows)
    return 0


def print_leaderboard(storage: str, search: SearchRecord, n: int, *, as_json: bool = False) -> None:
    from automl._api import open_store
    from automl._render import arch_summary, print_json, table, trial_json

    store = open_store(storage)
    try:
        top = leaderboard(store, search, n)
    finally:
        store.close()
    if as_json:
        print_json([trial_json(t) for t in top])
        return
    metric_names = [k for k in ("params", "flops", "train_seconds", "cost") if any(k in t.metrics for t in top)]
    rows = [
        (i + 1, t.number, t.value, *(t.metrics.get(k) for k in metric_names), arch_summary(t.arch))
        for i, t in enumerate(top)
    ]
    title = f"top {len(top)} of {search.name} by {search.objectives[0]}"
    table(title, ["rank", "trial", search.objective, *metric_names, "architecture"], rows)


def _top(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError(f"-n must be a positive integer, got {args.n}")
    store = _open(args)
    try:
        search = store.get_search(args.name) if args.name else latest_search(store)
    finally:
        store.close()
    print_leaderboard(store.url, search, args.n, as_json=args.json)
    return 0


def _show(args: argparse.Namespace) -> int:
    from automl._render import console, print_json, table, trial_json

    store = _open(args)
    try:
        search, trial = resolve_trial(store, args.trial, args.search)
        steps = store.steps(search.id, trial.number)
    finally:
        store.close()
    if args.json:
        print_json({**trial_json(trial), "search": search.name, "steps": [{"step": s.step, **s.metrics} for s in steps]})
        return 0
    out = console()
    out.print(
        f"[bold]{search.name}/{trial.number}[/]  status {trial.status.value}  {search.objectives[0]} "
        f"{trial.value if trial.value is not None else '-'}  proposer {trial.proposer}"
        + (f"  parent {trial.parent}" if trial.parent is not None else "")
        + (f"  worker {trial.worker}" if trial.worker else "")
    )
    table("decisions", ["decision", "value"], list(trial.arch.items()))
    if trial.metrics:
        table("metrics", ["metric", "value"], sorted(trial.metrics.items()))
    if steps:
        keys = sorted({k for s in steps for k in s.metrics})
        table("per step", ["step", *keys], [(s.step, *(s.metrics.get(k) for k in keys)) for s in steps])
    if trial.error:
        out.print(f"[red]error:[/] {trial.error}")
    return 0
