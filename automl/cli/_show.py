"""``automl show``: one trial in full: decisions, metrics, per-step curve, parent and children,
why it was pruned, and its final trainings."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from automl.cli._results import common_options, open_results, resolve_trial
from automl.results._views import arch_changes, stops
from store import CHECKPOINT_KEY, FinalRecord, SearchRecord, StepRecord, TrialRecord, queries

__all__ = ["arch_changes", "pruned_text", "register", "sparkline"]

_SPARK = "▁▂▃▄▅▆▇█"


def register(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "show", parents=[common_options()], help="one trial: decisions, metrics, per-epoch curve, parent, children"
    )
    w.add_argument("trial", help="NUMBER (latest search), SEARCH/NUMBER, or --search SEARCH NUMBER")
    w.add_argument("--search", default=None, help="search name (default: the latest)")
    w.set_defaults(func=_show)


def sparkline(values: Sequence[float]) -> str:
    """``▁▃▅█``: values scaled between their min and max (for a per-epoch curve in a terminal)."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return "".join(_SPARK[min(len(_SPARK) - 1, int((v - lo) / span * len(_SPARK)))] for v in values)


def _show(args: argparse.Namespace) -> int:
    store = open_results(args)
    try:
        with store.snapshot():  # the trial, its steps, parent and children as of one moment
            search, trial = resolve_trial(store, args.trial, args.search)
            detail = queries.trial_detail(store, search.id, trial.number)
            finals = [f for f in store.finals(search.id) if f.number == trial.number]
    finally:
        store.close()
    if args.json:
        _show_json(search, detail, finals)
    else:
        _show_text(search, detail, finals)
    return 0


def _show_json(search: SearchRecord, detail: queries.TrialDetail, finals: list[FinalRecord]) -> None:
    from automl.cli._render import print_json, trial_json

    trial, parent = detail.trial, detail.parent
    parent_json = None
    if parent is not None:
        changes = [{"decision": k, "from": a, "to": b} for k, a, b in arch_changes(trial.arch, parent.arch)]
        parent_json = {"number": parent.number, "value": parent.value, "changes": changes}
    print_json(
        {
            **trial_json(trial),
            "search": search.name,
            "steps": [{"step": s.step, **s.metrics} for s in detail.steps],
            "parent_trial": parent_json,
            "children": [{"number": c.number, "status": c.status.value, "value": c.value} for c in detail.children],
            "children_total": detail.children_total,
            "final": [{"seed": f.seed, "epochs": f.epochs, **f.metrics} for f in finals],
        }
    )


def _show_text(search: SearchRecord, detail: queries.TrialDetail, finals: list[FinalRecord]) -> None:
    from automl.cli._render import console, table, terminal_safe

    trial, steps, parent, out = detail.trial, detail.steps, detail.parent, console()
    value = trial.value if trial.value is not None else "-"
    out.print(
        f"[bold]{terminal_safe(search.name)}/{trial.number}[/]  status {trial.status.value}  {search.objectives[0]} "
        f"{value}  proposer {trial.proposer}"
        + (f"  worker {terminal_safe(trial.worker)}" if trial.worker else "")
        + (f"  {trial.duration:.1f} s" if trial.duration is not None else "")
    )
    table("decisions", ["decision", "value"], list(trial.arch.items()))
    shown = {k: v for k, v in trial.metrics.items() if k != CHECKPOINT_KEY}
    if shown:
        table("metrics", ["metric", "value"], sorted(shown.items()))
    if steps:
        keys = sorted({k for s in steps for k in s.metrics if isinstance(s.metrics[k], (int, float))})
        table("per step", ["step", *keys], [(s.step, *(s.metrics.get(k) for k in keys)) for s in steps])
        values = [s.value for s in steps if s.value is not None]
        if len(values) > 1:
            out.print(f"{search.objective} by step: {sparkline(values)}  {values[0]:.4g} -> {values[-1]:.4g}")
    if parent is not None:
        table(
            f"parent {parent.number} ({search.objective} {parent.value if parent.value is not None else '-'})",
            ["decision", f"trial {parent.number}", f"trial {trial.number}"],
            arch_changes(trial.arch, parent.arch) or [("(same architecture)", "", "")],
        )
    elif trial.parent is not None:
        out.print(f"parent {trial.parent} (not stored)")
    if detail.children:
        kids = detail.children
        more = f", the first {len(kids)}" if detail.children_total > len(kids) else ""
        rows = [(c.number, c.status.value, c.value) for c in kids]
        table(f"children ({detail.children_total}){more}", ["trial", "status", search.objective], rows)
    for line in _pause_lines(trial, steps, search.objective):
        out.print(terminal_safe(line))
    if finals:
        rows = [(f.seed, f.epochs, f.metrics.get("test_accuracy"), f.metrics.get("test_loss"),
                 f.metrics.get("train_seconds")) for f in finals]  # fmt: skip
        table("final training (train+val, scored on test)", ["seed", "epochs", "test accuracy", "test loss", "s"], rows)
    if trial.error:
        out.print(f"[red]error:[/] {terminal_safe(trial.error)}")


def _pause_lines(trial: TrialRecord, steps: Sequence[StepRecord], metric: str) -> list[str]:
    """Why the trial stopped early, each time: a stop that was later taken back (an ASHA
    promotion) is in its history too, and a paused trial says where its checkpoint is."""
    later = "; promoted later, it went on from its checkpoint"
    lines = [pruned_text(reason, metric) + (later if promoted else "") for _, reason, promoted in stops(trial, steps)]
    held = trial.checkpoint
    if held is not None:
        lines.append(
            f"paused: its training state after step {held.get('step')} is kept ({held.get('path')}); "
            "if the pruner promotes it, training goes on from there"
        )
    return lines


def pruned_text(reason: Mapping[str, Any], metric: str) -> str:
    """Why a trial was stopped early, in one sentence, from the reason its pruner stored."""
    step, value, threshold = reason.get("step"), reason.get("value"), reason.get("threshold")
    if value is None or threshold is None:
        return f"pruned at step {step} by the search's pruner"
    worse = "<" if reason.get("maximize", True) else ">"
    peers = reason.get("peers")
    if reason.get("rule") == "median":
        return (f"pruned at step {step}: best {metric} so far {value:.4g} {worse} {threshold:.4g}, "
                f"the median of {peers} other trials at that step")  # fmt: skip
    bracket = f", bracket {reason['bracket']}" if reason.get("bracket") is not None else ""
    rule = reason.get("rule", "threshold")
    return (f"pruned at rung {reason.get('rung')} (step {step}{bracket}): {metric} {value:.4g} {worse} "
            f"{threshold:.4g}, the {rule} of the {peers} trials that reached it before")  # fmt: skip
