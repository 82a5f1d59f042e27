"""Tables for people (rich) and JSON for scripts, shared by the CLI commands."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from store import TrialRecord

__all__ = ["arch_summary", "console", "fmt", "print_json", "table", "terminal_safe", "trial_json"]

# C0 controls, DEL and C1 controls: an escape sequence stored in an error text must not drive the
# terminal (move the cursor, retitle the window, hide what follows).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: Any, *, markup: bool = True) -> str:
    """``text`` with control characters shown as ``\\xNN`` (and rich markup escaped)."""
    from rich.markup import escape

    safe = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return escape(safe) if markup else safe


def console():
    import os

    from rich.console import Console

    # Piped output (logs, CI) would otherwise be squeezed to 80 columns.
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
    return Console(highlight=False, soft_wrap=False, width=width)


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers short (0.9833, 1.2e+06), everything else as text, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dt.datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def arch_summary(arch: Mapping[str, Any], width: int = 70) -> str:
    text = " ".join(f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in arch.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=None if title is None else terminal_safe(title), title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(terminal_safe(c), overflow="fold")
    for row in rows:  # cells as plain Text: stored values never become markup
        t.add_row(*(Text(terminal_safe(fmt(v), markup=False)) for v in row))
    console().print(t)


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime):
        return o.isoformat()
    if hasattr(o, "value"):
        return o.value
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_default)
    sys.stdout.write("\n")


def trial_json(t: TrialRecord) -> dict[str, Any]:
    return {
        "number": t.number,
        "status": t.status.value,
        "value": t.value,
        "arch": dict(t.arch),
        "arch_key": t.arch_key,
        "metrics": dict(t.metrics),
        "proposer": t.proposer,
        "parent": t.parent,
        "error": t.error,
        "worker": t.worker,
        "attempts": t.attempts,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
    }
