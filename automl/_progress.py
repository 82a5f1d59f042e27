"""A live progress bar for a search: done / target, failures, in flight, best so far."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from automl._loop import LoopStats

__all__ = ["clock", "progress_bar", "task_bar"]


@contextmanager
def progress_bar(name: str, total: int | None, *, enabled: bool = True) -> Iterator[Callable[[LoopStats], None]]:
    """Yields ``on_update(stats)``; draws a rich progress bar on stderr when ``enabled``.

    ``total`` trials, or None when a budget or a time limit ends the search (the bar then shows
    that limit's share spent).
    """
    if not enabled:
        yield lambda stats: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total is not None else TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(name, total=total if total is not None else 100, detail="")

        def on_update(s: LoopStats) -> None:
            best = "-" if s.best is None else f"{s.best:.4g} (#{s.best_number})"
            detail = f"running {s.in_flight}  failed {s.failed}  best {best}"
            if s.infeasible:
                detail += f"  infeasible {s.infeasible}"
            if s.budget is not None:
                detail += f"  budget {s.spent:,.0f}/{s.budget:,.0f}"
            if s.time_limit is not None:
                detail += f"  time {clock(s.elapsed)}/{clock(s.time_limit)}"
            if total is not None:
                bar.update(task, completed=min(s.done, total), detail=detail)
            else:  # the first limit to run out, as a share
                shares = [x / y for x, y in ((s.spent, s.budget), (s.elapsed, s.time_limit)) if y]
                bar.update(task, completed=min(1.0, max(shares, default=0.0)) * 100, detail=f"{s.done} done  " + detail)

        yield on_update


def clock(seconds: float) -> str:
    """``1:05:09`` or ``5:09``."""
    m, sec = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@contextmanager
def task_bar(name: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``: a plain progress bar over ``total`` units of work (``automl final``)."""
    if not enabled or total == 0:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=Console(file=sys.stderr)) as bar:
        task = bar.add_task(name, total=total)
        yield lambda: bar.advance(task)
