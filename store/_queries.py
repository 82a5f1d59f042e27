"""The result queries that the CLI, the Python API and the dashboard run (``store.queries``).

Every query runs in the database and returns only aggregated or top-k rows; none loads all the
trials of a search into Python. At 100,000 trials in one search each answers in well under
200 ms on SQLite (``benchmarks/queries.py`` measures it). How:

- **Leaderboard**: ``trials (search_id, value)`` walked in the objective's direction, ``LIMIT k``.
- **Best so far** (by trial number or by time): a recursive CTE that jumps from one improvement to
  the next (``min(number) WHERE number > n AND value > best``) along the covering index
  ``completed_trials (search_id, number, value)``; the index is walked once in total and only
  the improvements come back. (A window function over 100k rows takes ~300 ms on SQLite.)
- **Pareto front** (objective vs a cost metric): the same jump along
  ``completed_trials (search_id, <cost>, value)``: from the cheapest point, the next cheapest
  point that is strictly better, until none is.
- **Decision statistics**: among all completed trials, a read of ``decision_counts`` (kept by
  triggers, see ``store._query_tables``); among the top k, ``json_each`` over the k best archs.
- **Median** (comparison of searches): ``ORDER BY value LIMIT 2 OFFSET (n-1)/2`` on an index.

Functions take the :class:`~store.Store` and a search (its name, id or record) and return frozen
records. They raise :class:`~store.NotFound` for an unknown search or trial and ``ValueError``
for a bad argument (naming it). SQLite and PostgreSQL only (JSON functions differ elsewhere).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import Text, case, cast, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store._errors import NotFound, StorageError
from store._models import SearchModel, StepModel, TrialModel
from store._query_records import (
    Curve,
    CurvePoint,
    DecisionStat,
    DecisionStats,
    ParetoPoint,
    SearchSummary,
    TrialDetail,
)
from store._query_tables import COST_METRICS, CompletedTrialModel, DecisionCountModel
from store._records import SearchRecord, StepRecord, TrialRecord, TrialStatus
from store._storage import Store

__all__ = [
    "COST_METRICS",
    "Curve",
    "CurvePoint",
    "DecisionStat",
    "DecisionStats",
    "ParetoPoint",
    "SearchSummary",
    "TrialDetail",
    "available_costs",
    "best_so_far",
    "compare",
    "cost_points",
    "decision_stats",
    "leaderboard",
    "pareto",
    "resolve",
    "spent",
    "summary",
    "trial_detail",
    "value_points",
    "version",
]

SearchRef = int | str | SearchRecord
_CT = CompletedTrialModel.__table__
_COMPLETED = TrialStatus.COMPLETED.value
MAX_K = 10_000  # largest k for leaderboards and decision statistics
MAX_POINTS = 20_000  # largest sample for scatter plots


# -- helpers ------------------------------------------------------------------------------------
def _run(store: Store, work: Any) -> Any:
    if store._db.dialect_name not in ("sqlite", "postgresql"):
        raise StorageError(f"result queries need SQLite or PostgreSQL, not {store._db.dialect_name}")
    return store._read(work)


def _search(s: Session, ref: SearchRef, where: str) -> SearchRecord:
    if isinstance(ref, SearchRecord):
        ref = ref.id
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise ValueError(f"a search is a name, an id or a SearchRecord, but got {ref!r}")
    row = SearchModel.find(s, ref) if isinstance(ref, int) else SearchModel.find_by_name(s, ref)
    if row is None:
        raise NotFound(f"no search {'with id' if isinstance(ref, int) else 'named'} {ref!r} in {where}")
    return row.to_record()


def _better(column: Any, than: Any, maximize: bool) -> ColumnElement[bool]:
    return column > than if maximize else column < than


def _best(maximize: bool) -> Any:
    return func.max if maximize else func.min


def _k(k: int, label: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"{label} must be an int in [1, {MAX_K}], but got {k!r}")
    return k


def _cost(cost: str) -> str:
    if cost not in COST_METRICS:
        raise ValueError(f"cost must be one of {', '.join(COST_METRICS)}, but got {cost!r}")
    return cost


def _elapsed(search: SearchRecord, at: dt.datetime | None) -> float | None:
    return None if at is None else round((at - search.created_at).total_seconds(), 3)


def resolve(store: Store, search: SearchRef) -> SearchRecord:
    """The search record of a name, an id or a record (NotFound if there is none)."""
    return _run(store, lambda s: _search(s, search, store._db.safe_url))


# -- leaderboard --------------------------------------------------------------------------------
def leaderboard(
    store: Store,
    search: SearchRef | None,
    k: int = 10,
    *,
    status: str | TrialStatus = TrialStatus.COMPLETED,
    proposer: str | None = None,
    strategy: str | None = None,
) -> list[TrialRecord]:
    """The ``k`` best trials by the primary objective, in its direction (ties: lower number first).

    For a ``status`` whose trials have no value (failed, infeasible, running, proposed): the ``k``
    most recent ones, newest first.

    ``search=None`` ranks the trials of every search (of ``strategy`` if given), which must then
    share their primary objective. ``status`` and ``proposer`` filter the trials.
    """
    k = _k(k)
    status = TrialStatus(status).value

    def work(s: Session) -> list[TrialRecord]:
        if search is not None:
            searches = [_search(s, search, store._db.safe_url)]
            if strategy is not None and searches[0].strategy != strategy:
                return []
        else:
            stmt = select(SearchModel).order_by(SearchModel.id)
            if strategy is not None:
                stmt = stmt.where(SearchModel.strategy == strategy)
            searches = [r.to_record() for r in s.scalars(stmt)]
        if not searches:
            return []
        if len({x.objectives[0] for x in searches}) > 1:
            shown = ", ".join(f"{x.name} ({x.objectives[0]})" for x in searches)
            raise ValueError(f"searches with different objectives cannot be ranked together: {shown}")
        maximize = searches[0].maximize
        # Trials with a value are ranked by it; the others (failed, running, ...) newest first.
        ranked = status in (TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value)
        by_value = TrialModel.value.desc() if maximize else TrialModel.value.asc()
        order = (by_value, TrialModel.number, TrialModel.id) if ranked else (TrialModel.number.desc(), TrialModel.id)
        ids: list[int] = []
        for x in searches:  # each search through its own index, then merged
            # `status || ''`: with statistics, SQLite would otherwise pick the (search_id, status)
            # index and sort every completed trial (~100 ms at 100k) instead of walking
            # (search_id, value) from the best end (< 1 ms).
            stmt = select(TrialModel.id).where(TrialModel.search_id == x.id, TrialModel.status.concat("") == status)
            if ranked:
                stmt = stmt.where(TrialModel.value.is_not(None))
            if proposer is not None:
                stmt = stmt.where(TrialModel.proposer == proposer)
            ids += s.scalars(stmt.order_by(*order).limit(k))
        if not ids:
            return []
        rows = s.scalars(select(TrialModel).where(TrialModel.id.in_(ids)).order_by(*order).limit(k))
        return [r.to_record() for r in rows]

    return _run(store, work)


# -- best so far --------------------------------------------------------------------------------
def _improvements(s: Session, search: SearchRecord, key: str) -> list[tuple[int, float]]:
    """(key, value) of each trial that beat every earlier one, ordered by ``key`` (number or result_seq)."""
    sid, maximize = search.id, search.maximize
    col = _CT.c[key]
    first = select(func.min(col)).where(_CT.c.search_id == sid, _CT.c.value.is_not(None), col.is_not(None))
    start = select(col.label("k"), _CT.c.value.label("v")).where(_CT.c.search_id == sid, col == first.scalar_subquery())
    curve = start.cte("curve", recursive=True)
    nxt, hit = _CT.alias("nxt"), _CT.alias("hit")
    next_key = (
        select(func.min(nxt.c[key]))
        .where(nxt.c.search_id == sid, nxt.c[key] > curve.c.k, _better(nxt.c.value, curve.c.v, maximize))
        .correlate(curve)  # also where it is nested in value_there
        .scalar_subquery()
    )
    value_there = select(hit.c.value).where(hit.c.search_id == sid, hit.c[key] == next_key).scalar_subquery()
    # Scalar subqueries over the previous row only (no join): both backends then probe the index
    # once per improvement. The last step yields (NULL, NULL), which stops the recursion.
    overall = select(_best(maximize)(_CT.c.value)).where(_CT.c.search_id == sid).scalar_subquery()
    # Stop at the overall best: no need to scan the rest of the index to find nothing better.
    step = select(next_key, value_there).where(curve.c.k.is_not(None), _better(overall, curve.c.v, maximize))
    curve = curve.union_all(step)
    rows = s.execute(select(curve.c.k, curve.c.v).where(curve.c.k.is_not(None)).order_by(curve.c.k))
    return [(int(a), float(b)) for a, b in rows]


def _curve(s: Session, search: SearchRecord, by: str) -> Curve:
    if by not in ("number", "time"):
        raise ValueError(f"by must be 'number' or 'time', but got {by!r}")
    key = "number" if by == "number" else "result_seq"
    found = _improvements(s, search, key)
    keys = [k for k, _ in found]
    trial = TrialModel
    meta = {
        r.number if by == "number" else r.result_seq: r
        for r in s.execute(
            select(trial.number, trial.result_seq, trial.finished_at).where(
                trial.search_id == search.id, getattr(trial, key).in_(keys)
            )
        )
    } if keys else {}  # fmt: skip
    points = tuple(
        CurvePoint(int(meta[k].number), v, meta[k].result_seq, _elapsed(search, meta[k].finished_at)) for k, v in found
    )
    last = s.execute(
        select(trial.number, trial.finished_at)
        .join(_CT, _CT.c.trial_id == trial.id)
        .where(_CT.c.search_id == search.id)
        .order_by(_CT.c[key].desc())
        .limit(1)
    ).first()
    return Curve(
        search,
        by,
        points,
        None if last is None else int(last.number),
        None if last is None else _elapsed(search, last.finished_at),
    )


def best_so_far(store: Store, search: SearchRef, *, by: Literal["number", "time"] = "number") -> Curve:
    """The best value so far after each trial (``by="number"``) or over time (``by="time"``,
    results in the order they were stored), as the list of improvements."""
    return _run(store, lambda s: _curve(s, _search(s, search, store._db.safe_url), by))


# -- Pareto front -------------------------------------------------------------------------------
def pareto(store: Store, search: SearchRef, cost: str = "params") -> list[ParetoPoint]:
    """The trials on the front of the objective (in its direction) against ``cost`` (lower is
    better): ``params``, ``flops`` or ``latency_ms``. Cheapest first; one trial per point."""
    cost = _cost(cost)

    def work(s: Session) -> list[ParetoPoint]:
        x = _search(s, search, store._db.safe_url)
        sid, best = x.id, _best(x.maximize)
        c = _CT.c[cost]
        live = (_CT.c.search_id == sid, _CT.c.value.is_not(None))
        cheapest = select(func.min(c)).where(*live, c.is_not(None)).scalar_subquery()
        start = select(c.label("c"), best(_CT.c.value).label("v")).where(*live, c == cheapest).group_by(c)
        front = start.cte("front", recursive=True)
        nxt, top = _CT.alias("nxt"), _CT.alias("top")
        next_cost = (
            select(func.min(nxt.c[cost]))
            .where(nxt.c.search_id == sid, nxt.c[cost] > front.c.c, _better(nxt.c.value, front.c.v, x.maximize))
            .correlate(front)
            .scalar_subquery()
        )
        best_there = select(best(top.c.value)).where(top.c.search_id == sid, top.c[cost] == next_cost)
        # As in _improvements: no join, and a last (NULL, NULL) row ends the recursion.
        overall = select(best(_CT.c.value)).where(*live, c.is_not(None)).scalar_subquery()
        more = (front.c.c.is_not(None), _better(overall, front.c.v, x.maximize))  # the best ends the front
        front = front.union_all(select(next_cost, best_there.scalar_subquery()).where(*more))
        first = select(func.min(_CT.c.number)).where(_CT.c.search_id == sid, c == front.c.c, _CT.c.value == front.c.v)
        stmt = select(first.scalar_subquery(), front.c.v, front.c.c).where(front.c.c.is_not(None))
        rows = s.execute(stmt.order_by(front.c.c))
        return [ParetoPoint(int(n), float(v), float(cc)) for n, v, cc in rows]

    return _run(store, work)


def available_costs(store: Store, search: SearchRef) -> list[str]:
    """The cost metrics that some completed trial of the search has."""

    def work(s: Session) -> list[str]:
        sid = _search(s, search, store._db.safe_url).id
        found = []
        for cost in COST_METRICS:
            probe = select(_CT.c.trial_id).where(_CT.c.search_id == sid, _CT.c[cost].is_not(None)).limit(1)
            if s.execute(probe).first() is not None:
                found.append(cost)
        return found

    return _run(store, work)


def _thinned(s: Session, sid: int, limit: int, *where: Any) -> list[Any]:
    """The rows of completed_trials matching ``where``, thinned to at most ``limit`` (every n-th)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_POINTS:
        raise ValueError(f"limit must be an int in [1, {MAX_POINTS}], but got {limit!r}")
    n = s.execute(select(func.count()).select_from(_CT).where(_CT.c.search_id == sid, *where)).scalar_one()
    every = max(1, math.ceil(n / limit))
    cond = [_CT.c.search_id == sid, *where]
    if every > 1:
        cond.append(_CT.c.number % every == 0)
    return cond


def cost_points(
    store: Store, search: SearchRef, cost: str = "params", *, limit: int = 2000
) -> list[tuple[int, float, float]]:
    """``(number, value, cost)`` of completed trials, at most ``limit`` of them (every n-th
    trial when there are more): the cloud behind a Pareto front."""
    cost = _cost(cost)

    def work(s: Session) -> list[tuple[int, float, float]]:
        sid = _search(s, search, store._db.safe_url).id
        cond = _thinned(s, sid, limit, _CT.c.value.is_not(None), _CT.c[cost].is_not(None))
        stmt = select(_CT.c.number, _CT.c.value, _CT.c[cost]).where(*cond).order_by(_CT.c.number).limit(limit)
        rows = s.execute(stmt)
        return [(int(n), float(v), float(c)) for n, v, c in rows]

    return _run(store, work)


def value_points(store: Store, search: SearchRef, *, limit: int = 2000) -> list[tuple[int, float, float | None]]:
    """``(number, value, elapsed seconds)`` of completed trials, at most ``limit`` (every n-th)."""

    def work(s: Session) -> list[tuple[int, float, float | None]]:
        x = _search(s, search, store._db.safe_url)
        cond = _thinned(s, x.id, limit, _CT.c.value.is_not(None))
        stmt = (
            select(_CT.c.number, _CT.c.value, TrialModel.finished_at)
            .join(TrialModel, TrialModel.id == _CT.c.trial_id)
            .where(*cond)
            .order_by(_CT.c.number)
            .limit(limit)
        )
        return [(int(n), float(v), _elapsed(x, f)) for n, v, f in s.execute(stmt)]

    return _run(store, work)


# -- one trial ----------------------------------------------------------------------------------
def trial_detail(store: Store, search: SearchRef, number: int, *, children_limit: int = 50) -> TrialDetail:
    """A trial with its per-step reports, its parent and its children (trials bred from it)."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"a trial number must be an int, but got {number!r}")

    def work(s: Session) -> TrialDetail:
        x = _search(s, search, store._db.safe_url)
        row = TrialModel.find(s, x.id, number)
        if row is None:
            raise NotFound(f"search {x.name!r} has no trial {number}")
        steps = s.scalars(select(StepModel).where(StepModel.trial_id == row.id).order_by(StepModel.step))
        parent = None if row.parent is None else TrialModel.find(s, x.id, row.parent)
        kids = select(TrialModel).where(TrialModel.search_id == x.id, TrialModel.parent == number)
        total = s.execute(select(func.count()).select_from(kids.subquery())).scalar_one()
        children = s.scalars(kids.order_by(TrialModel.number).limit(children_limit))
        return TrialDetail(
            x,
            row.to_record(),
            tuple(StepRecord(number, r.step, dict(r.metrics), r.value, r.created_at) for r in steps),
            None if parent is None else parent.to_record(),
            tuple(c.to_record() for c in children),
            int(total),
        )

    return _run(store, work)


# -- decision statistics ------------------------------------------------------------------------
def _option_text(j: Any, dialect: str) -> Any:
    """An option as JSON text, exactly as the triggers of migration 0002 write it."""
    if dialect == "sqlite":
        return case(
            (j.c.type.in_(("true", "false", "null")), j.c.type),
            (j.c.type == "text", func.json_quote(j.c.value)),
            else_=cast(j.c.value, Text),
        )
    return cast(j.c.value, Text)


def _order_like_space(search: SearchRecord, rows: list[DecisionStat]) -> list[DecisionStat]:
    declared = search.config.space_info.get("decisions")
    rank: dict[str, tuple[int, list[str]]] = {}
    for i, d in enumerate(declared or []):
        if isinstance(d, Mapping) and isinstance(d.get("name"), str):
            rank[d["name"]] = (i, [json.dumps(o, sort_keys=True) for o in d.get("options") or []])

    def key(r: DecisionStat) -> tuple[Any, ...]:
        i, options = rank.get(r.name, (len(rank), []))
        text = json.dumps(r.option, sort_keys=True)
        return (i, r.name, options.index(text) if text in options else len(options), text)

    return sorted(rows, key=key)


def decision_stats(store: Store, search: SearchRef, k: int | None = None) -> DecisionStats:
    """For each decision and option: its share among the ``k`` best completed trials and among
    all completed trials ("what the search learned"). Shares are of the trials that have the
    decision (a conditional decision exists only on some branches). ``k`` defaults to 10% of
    the completed trials (at least 1, at most 1,000)."""
    if k is not None:
        k = _k(k)

    def work(s: Session) -> DecisionStats:
        x = _search(s, search, store._db.safe_url)
        completed = s.execute(select(func.count()).select_from(_CT).where(_CT.c.search_id == x.id)).scalar_one()
        kk = k if k is not None else min(1000, max(1, completed // 10))
        dc = DecisionCountModel
        everyone = {
            (name, value): int(n)
            for name, value, n in s.execute(
                select(dc.name, dc.value, dc.completed).where(dc.search_id == x.id, dc.completed > 0)
            )
        }
        order = TrialModel.value.desc() if x.maximize else TrialModel.value.asc()
        top = (
            select(TrialModel.arch)
            .where(TrialModel.search_id == x.id, TrialModel.status == _COMPLETED, TrialModel.value.is_not(None))
            .order_by(order, TrialModel.number)
            .limit(kk)
            .subquery("top")
        )
        dialect = store._db.dialect_name
        columns = ("key", "value", "type") if dialect == "sqlite" else ("key", "value")
        j = func.json_each(top.c.arch).table_valued(*columns).alias("j")
        option = _option_text(j, dialect)
        stmt = select(j.c.key, option, func.count()).select_from(top).join(j, true()).group_by(j.c.key, option)
        best = {(name, value): int(n) for name, value, n in s.execute(stmt)}
        top_n = s.execute(select(func.count()).select_from(top)).scalar_one()
        return DecisionStats(x, int(top_n), int(completed), _stat_rows(x, everyone, best))

    return _run(store, work)


_Counts = dict[tuple[str, str], int]  # (decision, option JSON text) -> trials


def _ranges(search: SearchRecord) -> dict[str, tuple[float, ...]]:
    """Bin edges of the search's range decisions (floats, log integers), by decision name."""
    from search_spaces import Decision

    out = {}
    for d in search.config.space_info.get("decisions") or []:
        if isinstance(d, Mapping) and d.get("kind") in ("float", "integer") and d.get("low") is not None:
            try:
                decision = Decision.from_dict(d)
            except (KeyError, TypeError, ValueError):
                continue
            if decision.ranged:
                out[decision.name] = decision.bin_edges(10)
    return out


def _binned(counts: _Counts, ranges: Mapping[str, tuple[float, ...]]) -> _Counts:
    """A range decision's values gathered into its bins, labelled ``"[low, high)"``."""
    from search_spaces import Decision

    out: _Counts = {}
    for (name, text), n in counts.items():
        edges = ranges.get(name)
        value = json.loads(text) if edges is not None else None
        if edges is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            b = Decision.bin_of(value, edges)
            close = "]" if b == len(edges) - 2 else ")"
            text = json.dumps(f"[{edges[b]:.3g}, {edges[b + 1]:.3g}{close}")
        out[(name, text)] = out.get((name, text), 0) + n
    return out


def _stat_rows(search: SearchRecord, everyone: _Counts, best: _Counts) -> tuple[DecisionStat, ...]:
    # Post-processing of aggregated rows only (a few per decision; a range decision's in its bins).
    ranges = _ranges(search)
    if ranges:
        everyone, best = _binned(everyone, ranges), _binned(best, ranges)
    having: dict[str, int] = {}
    top_having: dict[str, int] = {}
    for (name, _), n in everyone.items():
        having[name] = having.get(name, 0) + n
    for (name, _), n in best.items():
        top_having[name] = top_having.get(name, 0) + n
    rows = []
    for key in sorted(set(everyone) | set(best)):
        name, text = key
        n_all, n_top = everyone.get(key, 0), best.get(key, 0)
        rows.append(
            DecisionStat(
                name=name,
                option=json.loads(text),
                top=n_top,
                top_share=n_top / top_having[name] if top_having.get(name) else 0.0,
                completed=n_all,
                share=n_all / having[name] if having.get(name) else 0.0,
            )
        )
    return tuple(_order_like_space(search, rows))


# -- searches side by side ----------------------------------------------------------------------
def _median(s: Session, sid: int, n: int) -> float | None:
    if n == 0:
        return None
    stmt = (
        select(_CT.c.value)
        .where(_CT.c.search_id == sid, _CT.c.value.is_not(None))
        .order_by(_CT.c.value)
        .offset((n - 1) // 2)
        .limit(2 - n % 2)
    )
    middle = [float(v) for v in s.scalars(stmt)]
    return sum(middle) / len(middle)


def _summary(s: Session, x: SearchRecord, by: str) -> SearchSummary:
    counts = {st.value: 0 for st in TrialStatus}
    for status, n in s.execute(
        select(TrialModel.status, func.count()).where(TrialModel.search_id == x.id).group_by(TrialModel.status)
    ):
        counts[status] = int(n)
    n = s.execute(
        select(func.count()).select_from(_CT).where(_CT.c.search_id == x.id, _CT.c.value.is_not(None))
    ).scalar_one()
    best = s.execute(
        select(_CT.c.number, _CT.c.value)
        .where(_CT.c.search_id == x.id, _CT.c.value.is_not(None))
        .order_by(_CT.c.value.desc() if x.maximize else _CT.c.value.asc(), _CT.c.number)
        .limit(1)
    ).first()
    return SearchSummary(
        x,
        counts,
        None if best is None else float(best.value),
        None if best is None else int(best.number),
        _median(s, x.id, int(n)),
        _curve(s, x, by),
    )


def summary(store: Store, search: SearchRef, *, by: Literal["number", "time"] = "number") -> SearchSummary:
    """Counts by status, best, median and the best-so-far curve of one search."""
    return _run(store, lambda s: _summary(s, _search(s, search, store._db.safe_url), by))


def compare(
    store: Store, searches: Sequence[SearchRef], *, by: Literal["number", "time"] = "number"
) -> list[SearchSummary]:
    """:func:`summary` of each search, in the order given."""
    if isinstance(searches, (str, bytes)) or not isinstance(searches, Sequence) or not searches:
        raise ValueError(f"compare needs a non-empty list of searches, but got {searches!r}")

    def work(s: Session) -> list[SearchSummary]:
        return [_summary(s, _search(s, ref, store._db.safe_url), by) for ref in searches]

    return _run(store, work)


def spent(store: Store, search: SearchRef, metric: str = "cost") -> float:
    """The summed ``metric`` of the search's finished trials (what ``--budget`` counts)."""

    def work(s: Session) -> float:
        x = _search(s, search, store._db.safe_url)
        total = s.execute(
            select(func.sum(TrialModel.metrics[metric].as_float())).where(
                TrialModel.search_id == x.id, TrialModel.status.in_(_SPENDING)
            )
        ).scalar_one()
        return float(total or 0.0)

    return _run(store, work)


_SPENDING = ("completed", "pruned", "failed", "infeasible")


def version(store: Store, search: SearchRef | None = None, number: int | None = None) -> str:
    """A short text that changes whenever the results shown for the searches (or one search, or
    one of its trials) change: trial and result counters, driver, and the trial's status and
    steps. The dashboard polls it to know when to refresh."""

    def work(s: Session) -> str:
        stmt = select(SearchModel.id, SearchModel.trial_count, SearchModel.result_count, SearchModel.driver)
        if search is not None:
            stmt = stmt.where(SearchModel.id == _search(s, search, store._db.safe_url).id)
        parts = [f"{i}:{t}:{r}:{int(d is not None)}" for i, t, r, d in s.execute(stmt.order_by(SearchModel.id))]
        if search is not None and number is not None:
            sid = _search(s, search, store._db.safe_url).id
            row = s.execute(
                select(TrialModel.status, func.count(StepModel.step))
                .outerjoin(StepModel, StepModel.trial_id == TrialModel.id)
                .where(TrialModel.search_id == sid, TrialModel.number == number)
                .group_by(TrialModel.id, TrialModel.status)
            ).first()
            parts.append("-" if row is None else f"{row[0]}:{row[1]}")
        return "|".join(parts)

    return _run(store, work)
