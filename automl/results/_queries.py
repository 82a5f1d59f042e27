"""Results as pandas DataFrames: ``automl.leaderboard``, ``best_so_far``, ``pareto``,
``decision_stats`` and ``compare``. Each runs one of ``store.queries`` in the database.

>>> automl.leaderboard("demo", k=5)                    # doctest: +SKIP
   rank  number  accuracy     status  ...  params  flops  ...  arch
>>> automl.decision_stats("demo").sort_values("lift")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from automl._errors import UsageError
from automl._result import trials_frame
from store import Store, queries

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["best_so_far", "compare", "decision_stats", "leaderboard", "pareto"]

T = TypeVar("T")


def _query(storage: str | None, run: Callable[[Store], T]) -> T:
    from automl._resolve import open_store

    store = open_store(storage, read_only=True)
    try:
        return run(store)
    except ValueError as e:  # a bad argument: name it as the user's
        raise UsageError(str(e)) from e
    finally:
        store.close()


def leaderboard(
    name: str | None = None,
    storage: str | None = None,
    k: int = 10,
    *,
    status: str = "completed",
    proposer: str | None = None,
    strategy: str | None = None,
) -> pd.DataFrame:
    """The ``k`` best trials of search ``name`` (every search, of ``strategy`` if given, when
    ``name`` is None): a row per trial, best first, with ``rank`` and ``search`` columns added
    to those of :attr:`SearchResult.trials`."""

    def run(store: Store) -> pd.DataFrame:
        top = queries.leaderboard(store, name, k, status=status, proposer=proposer, strategy=strategy)
        names = {s.id: s.name for s in store.list_searches()} if name is None else {}
        frame = trials_frame(top)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        frame.insert(1, "search", [names.get(t.search_id, name) for t in top])
        return frame

    return _query(storage, run)


def best_so_far(name: str, storage: str | None = None, *, by: Literal["number", "time"] = "number") -> pd.DataFrame:
    """The trials that improved on every earlier one (by trial number, or by time: results in
    the order they were stored): ``number``, ``value`` (the best from that trial on),
    ``result_seq``, ``elapsed_s`` (seconds since the search was created)."""
    import pandas as pd

    curve = _query(storage, lambda s: queries.best_so_far(s, name, by=by))
    rows = [(p.number, p.value, p.result_seq, p.elapsed) for p in curve.points]
    return pd.DataFrame(rows, columns=["number", "value", "result_seq", "elapsed_s"])


def pareto(name: str, storage: str | None = None, *, cost: str = "params") -> pd.DataFrame:
    """The Pareto front of the objective against ``cost`` (``params``, ``flops`` or
    ``latency_ms``; lower is better): ``number``, ``value``, ``<cost>``, cheapest first."""
    import pandas as pd

    front = _query(storage, lambda s: queries.pareto(s, name, cost))
    return pd.DataFrame([(p.number, p.value, p.cost) for p in front], columns=["number", "value", cost])


def decision_stats(name: str, storage: str | None = None, *, k: int | None = None) -> pd.DataFrame:
    """What the search learned: for each decision and option, how often the ``k`` best trials
    chose it (``top``, ``top_share``) against all completed trials (``completed``, ``share``),
    and ``lift = top_share / share``. ``k`` defaults to 10% of the completed trials."""
    import pandas as pd

    stats = _query(storage, lambda s: queries.decision_stats(s, name, k))
    columns = ["decision", "option", "top", "top_share", "completed", "share", "lift"]
    rows = [(r.name, r.option, r.top, r.top_share, r.completed, r.share, r.lift) for r in stats.rows]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs.update(k=stats.k, completed=stats.completed)
    return frame


def compare(names: Sequence[str], storage: str | None = None) -> pd.DataFrame:
    """A row per search: strategy, space, objective, trials by status, ``best`` (and its trial),
    ``median`` of the completed trials, and ``curve``: the best-so-far improvements as
    ``[(number, value), ...]``."""
    import pandas as pd

    if isinstance(names, str):
        names = [names]
    summaries = _query(storage, lambda s: queries.compare(s, list(names)))
    rows: list[dict[str, Any]] = []
    for x in summaries:
        rows.append(
            {
                "search": x.search.name,
                "strategy": x.search.strategy,
                "space": x.search.space,
                "objective": x.search.objectives[0],
                **x.counts,
                "best": x.best,
                "best_number": x.best_number,
                "median": x.median,
                "curve": [(p.number, p.value) for p in x.curve.points],
            }
        )
    return pd.DataFrame(rows)
