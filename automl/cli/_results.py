"""``automl status``, ``top``, ``show`` and ``compare``: read the store, print tables or JSON.

Each runs the queries of ``store.queries`` in the database; nothing loads every trial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from automl._checks import check_name
from automl._errors import UsageError
from automl.results._views import search_state
from store import NotFound, SearchRecord, Store, TrialRecord, TrialStatus, queries

if TYPE_CHECKING:
    from automl._final import FinalSummary

__all__ = ["common_options", "latest_search", "leaderboard", "print_leaderboard", "register", "resolve_trial"]

_COST_COLUMNS = ("params", "flops", "latency_ms", "train_seconds", "cost")
_MAX_TRIAL = 2**31 - 1  # trial numbers are 32-bit integers in the database


def common_options() -> argparse.ArgumentParser:
    """``--storage`` and ``--json``, shared by the commands that read results."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)"
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def register(sub: argparse._SubParsersAction) -> None:
    common = common_options()

    s = sub.add_parser("status", parents=[common], help="searches with their trial counts and running trials")
    s.set_defaults(func=_status)

    t = sub.add_parser("top", parents=[common], help="the best trials of a search")
    t.add_argument("name", nargs="?", help="search name (default: the latest)")
    t.add_argument("-n", type=int, default=10, help="how many (default: 10)")
    t.add_argument("--status", default="completed", help="trials of this status (default: completed)")
    t.add_argument("--proposer", default=None, help="only trials proposed by this proposer")
    t.set_defaults(func=_top)

    c = sub.add_parser("compare", parents=[common], help="searches side by side: best, median, best so far")
    c.add_argument("names", nargs="+", metavar="SEARCH", help="searches to compare")
    c.set_defaults(func=_compare)


def open_results(args: argparse.Namespace) -> Store:
    from automl._resolve import open_store

    return open_store(args.storage, read_only=True)


def latest_search(store: Store) -> SearchRecord:
    searches = store.list_searches()
    if not searches:
        raise NotFound(f"no searches in {store.safe_url}; run `automl search` first")
    return max(searches, key=lambda s: (s.created_at, s.id))


def resolve_trial(store: Store, text: str, search_name: str | None) -> tuple[SearchRecord, TrialRecord]:
    """``7``, ``name/7`` or ``name:7`` -> the search and its trial."""
    name, number_text = search_name, text
    for sep in ("/", ":"):
        if sep in text:
            name, _, number_text = text.rpartition(sep)
            break
    if not re.fullmatch(r"[0-9]{1,10}", number_text) or int(number_text) > _MAX_TRIAL:
        raise UsageError(f"trial must be a number (0 to {_MAX_TRIAL}), SEARCH/NUMBER or SEARCH:NUMBER, got {text!r}")
    search = store.get_search(check_name(name)) if name else latest_search(store)
    return search, store.get_trial(search.id, int(number_text))


def _age(t: dt.datetime | None) -> str:
    if t is None:
        return "-"
    seconds = (dt.datetime.now(dt.timezone.utc) - t).total_seconds()
    return (
        f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"
    )


def leaderboard(store: Store, search: SearchRecord, n: int, **filters: Any) -> list[TrialRecord]:
    """The ``n`` best trials (completed unless ``status=`` says otherwise)."""
    try:
        return queries.leaderboard(store, search.id, n, **filters)
    except ValueError as e:  # bad k, status or proposer: the user's input
        raise UsageError(str(e)) from e


def _status(args: argparse.Namespace) -> int:
    from automl.cli._render import print_json, table

    try:
        store = open_results(args)
    except NotFound as e:  # no database yet: nothing to show, and nothing is created
        print_json([]) if args.json else print(f"no searches: {e}")
        return 0
    try:
        with store.snapshot():  # every search's figures as of one moment
            rows = [_status_row(store, s) for s in store.list_searches()]
    finally:
        store.close()
    if args.json:
        print_json([payload for _, _, payload in rows])
        return 0
    if not rows:
        print(f"no searches in {store.safe_url}; run `automl search` to start one")
        return 0
    cols = ["search", "strategy", "space", "done", "budget / time", "running", "failed", "pruned", "best", "state"]
    table(f"searches in {store.safe_url}", cols, [row for row, _, _ in rows])
    running = [r for _, running, _ in rows for r in running]
    if running:
        table("running trials", ["search", "trial", "worker", "age", "heartbeat"], running)
    return 0


def _limits(s: SearchRecord, cost: float | None) -> str:
    """What of its budget and time the search has spent: ``"budget 120/12,000  time 5:02/20:00"``."""
    from automl._progress import clock

    parts = []
    if s.config.budget is not None:
        parts.append(f"budget {cost or 0:,.0f}/{s.config.budget:,.0f}")
    if s.config.time is not None:
        parts.append(f"time {clock(s.elapsed_seconds)}/{clock(s.config.time)}")
    return "  ".join(parts) or "-"


def _limit_reached(s: SearchRecord, cost: float | None) -> bool:
    c = s.config
    return (c.budget is not None and (cost or 0) >= c.budget) or (c.time is not None and s.elapsed_seconds >= c.time)


def _status_row(store: Store, s: SearchRecord) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], dict[str, Any]]:
    """One search's table row, its running trials' rows and its JSON object."""
    counts = store.counts(s.id)
    top = leaderboard(store, s, 1)
    best = top[0] if top else None
    running = store.trials(s.id, statuses=[TrialStatus.RUNNING])
    finished = counts[TrialStatus.COMPLETED] + counts[TrialStatus.PRUNED]
    paused = _paused(store, s) if counts[TrialStatus.PRUNED] else 0
    target, state = s.config.trials, search_state(s, finished, s.config.trials)
    cost = queries.spent(store, s.id) if s.config.budget is not None else None
    limits = _limits(s, cost)
    if state == "stopped" and _limit_reached(s, cost):
        state = "done"
    row = (
        s.name, s.strategy, s.space, f"{finished}/{target}" if target else str(finished), limits,
        counts[TrialStatus.RUNNING],
        counts[TrialStatus.FAILED], f"{counts[TrialStatus.PRUNED]} ({paused} paused)" if paused
        else counts[TrialStatus.PRUNED], None if best is None else best.value, state,
    )  # fmt: skip
    running_rows = [(s.name, t.number, t.worker, _age(t.started_at), _age(t.heartbeat_at)) for t in running]
    payload = {
        "name": s.name,
        "strategy": s.strategy,
        "space": s.space,
        "objective": s.objectives[0],
        "target": target,
        "budget": s.config.budget,
        "spent": cost,
        "time": s.config.time,
        "elapsed_seconds": s.elapsed_seconds,
        "state": state,
        "driver": s.driver,
        "counts": {k.value: v for k, v in counts.items()},
        "paused": paused,
        "best": None if best is None else {"number": best.number, "value": best.value},
        "running": [{"number": t.number, "worker": t.worker, "started_at": t.started_at} for t in running],
    }
    return row, running_rows, payload


def _paused(store: Store, s: SearchRecord) -> int:
    """Pruned trials that keep a checkpoint: an ASHA or Hyperband pause, promotable later."""
    return sum(t.checkpoint is not None for t in store.trials(s.id, statuses=[TrialStatus.PRUNED]))


def print_leaderboard(storage: str, search: SearchRecord, n: int, *, as_json: bool = False, **filters: Any) -> None:
    from automl._resolve import open_store
    from automl.cli._render import arch_summary, print_json, table, trial_json

    store = open_store(storage, read_only=True)
    try:
        with store.snapshot():
            top = leaderboard(store, search, n, **filters)
            finals = _final_by_trial(store, search)
    finally:
        store.close()
    if as_json:
        rows = [{"rank": i + 1, **trial_json(t)} for i, t in enumerate(top)]
        for row in rows:
            if row["number"] in finals:
                row["final"] = finals[row["number"]].to_json()
        print_json(rows)
        return
    status = TrialStatus(filters.get("status", "completed"))
    if status not in (TrialStatus.COMPLETED, TrialStatus.PRUNED):  # no value to rank by: newest first
        rows = [(t.number, t.error or "", arch_summary(t.arch)) for t in top]
        table(f"latest {len(top)} {status.value} of {search.name}", ["trial", "error", "architecture"], rows)
        return
    metric_names = [k for k in _COST_COLUMNS if any(k in t.metrics for t in top)]
    final_col = ["final test (mean ± std, seeds)"] if finals else []
    rows = [
        (i + 1, t.number, t.value, *(t.metrics.get(k) for k in metric_names),
         *([_final_text(finals.get(t.number))] if finals else []), arch_summary(t.arch))
        for i, t in enumerate(top)
    ]  # fmt: skip
    which = "" if status is TrialStatus.COMPLETED else f" {status.value}"
    title = f"top {len(top)}{which} of {search.name} by {search.objectives[0]}"
    table(title, ["rank", "trial", search.objective, *metric_names, *final_col, "architecture"], rows)


def _final_by_trial(store: Store, search: SearchRecord) -> dict[int, FinalSummary]:
    """The final trainings of the search by trial (those of the most epochs, where several)."""
    from automl._final import summarize

    finals = store.finals(search.id)
    if not finals:
        return {}
    trials = {n: store.get_trial(search.id, n) for n in {f.number for f in finals}}
    most = max(f.epochs for f in finals)
    return {s.number: s for s in summarize(finals, trials, most)}


def _final_text(summary: FinalSummary | None) -> str:
    if summary is None or summary.mean is None:
        return "-"
    return f"{summary.mean:.4f} ± {summary.std or 0:.4f} ({len(summary.runs)})"


def _top(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError(f"-n must be a positive integer, got {args.n}")
    known = [s.value for s in TrialStatus]
    if args.status not in known:
        raise UsageError(f"--status must be one of {', '.join(known)}, got {args.status!r}")
    store = open_results(args)
    try:
        search = store.get_search(check_name(args.name)) if args.name else latest_search(store)
    finally:
        store.close()
    print_leaderboard(store.url, search, args.n, as_json=args.json, status=args.status, proposer=args.proposer)
    return 0


def _milestones(summaries: Sequence[queries.SearchSummary]) -> list[int]:
    last = max((s.curve.last_number or 0) for s in summaries)
    marks, m = [], 10
    while m <= last and len(marks) < 4:
        marks.append(m)
        m *= 10
    return marks


def _compare(args: argparse.Namespace) -> int:
    from automl.cli._render import print_json, table

    store = open_results(args)
    try:
        try:
            summaries = queries.compare(store, [check_name(n) for n in args.names])
        except ValueError as e:
            raise UsageError(str(e)) from e
    finally:
        store.close()
    if args.json:
        print_json(
            [
                {
                    "search": x.search.name,
                    "strategy": x.search.strategy,
                    "space": x.search.space,
                    "objective": x.search.objectives[0],
                    "counts": dict(x.counts),
                    "best": x.best,
                    "best_number": x.best_number,
                    "median": x.median,
                    "best_so_far": [
                        {"number": p.number, "value": p.value, "elapsed_s": p.elapsed} for p in x.curve.points
                    ],
                }
                for x in summaries
            ]
        )
        return 0
    marks = _milestones(summaries)
    rows = [
        (
            x.search.name,
            x.search.strategy,
            x.search.objectives[0],
            x.counts["completed"],
            x.counts["failed"],
            x.best,
            x.best_number,
            x.median,
            *(x.curve.best_at(m - 1) for m in marks),
        )
        for x in summaries
    ]
    cols = ["search", "strategy", "objective", "completed", "failed", "best", "best trial", "median"]
    table("searches compared", [*cols, *(f"best of first {m}" for m in marks)], rows)
    return 0
