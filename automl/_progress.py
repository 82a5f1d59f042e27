"""A live progress bar for a search: done / target, failures, in flight, best so far."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from automl._loop import LoopStats

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(name: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[LoopStats], None]]:
    """Yields ``on_update(stats)``; draws a rich progress bar on stderr when ``enabled``."""
    if not enabled:
        yield lambda stats: None
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

    console = Console(file=sys.stderr)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(name, total=total, detail="")

        def on_update(s: LoopStats) -> None:
            best = "-" if s.best is None else f"{s.best:.4g} (#{s.best_number})"
            detail = f"running {s.in_flight}  failed {s.failed}  best {best}"
            if s.infeasible:
                detail += f"  infeasible {s.infeasible}"
            bar.update(task, completed=min(s.done, total), detail=detail)

        yield on_update
