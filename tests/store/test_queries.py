"""store.queries on both backends, checked against plain-Python reference computations.

Trials are written through the Store API (the real write path, so the triggers that keep
``completed_trials`` and ``decision_counts`` are exercised), then each query's answer is compared
with the same quantity computed naively from ``store.trials``.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine

from store import NotFound, SearchConfig, SearchRecord, Store, TrialRecord, TrialStatus, queries
from store._schema import alembic_config

OPTIONS = {"op": ["conv", "pool", "skip"], "width": [16, 32, 64], "bn": [False, True], "drop": [0.0, 0.1, None]}


def _arch(rng: random.Random) -> dict[str, Any]:
    arch = {k: rng.choice(v) for k, v in OPTIONS.items()}
    if arch["op"] == "conv":  # a conditional decision, with list-valued options
        arch["kernel"] = rng.choice([[3, 3], [5, 5]])
    return arch


def _fill(
    store: Store,
    name: str,
    n: int,
    *,
    seed: int = 0,
    objectives: Sequence[str] = ("accuracy",),
    strategy: str = "random",
    value: Callable[[random.Random, dict[str, Any]], float] | None = None,
    failed_every: int = 7,
) -> SearchRecord:
    """A search of ``n`` trials (every ``failed_every``-th failed) finished in a shuffled order."""
    rng = random.Random(seed)
    config = {"space_info": {"decisions": [{"name": k, "options": v} for k, v in OPTIONS.items()]}}
    search = store.create_search(
        name, SearchConfig(space="toy", strategy=strategy, objectives=tuple(objectives), **config)
    )
    trials = []
    for i in range(n):
        arch = _arch(rng)
        parent = rng.randrange(i) if i > 3 and rng.random() < 0.7 else None
        trials.append(store.add_trial(search.id, arch=arch, arch_key=json.dumps(arch), proposer="p", parent=parent))
    order = list(range(n))
    rng.shuffle(order)
    for i in order:
        t = trials[i]
        store.start_trial(search.id, t.number)
        if i % failed_every == failed_every - 1:
            store.finish_trial(search.id, t.number, TrialStatus.FAILED, error="boom")
            continue
        v = value(rng, t.arch) if value else round(rng.random(), 2)  # rounded: ties happen
        params = rng.choice([1000, 2000, 3000, 4000, 5000])
        if t.parent is not None:  # per-step reports for some (the trial-detail test reads a child's)
            store.report_step(search.id, t.number, 1, {"accuracy": v / 2}, v / 2)
            store.report_step(search.id, t.number, 2, {"accuracy": v}, v)
        metrics = {"accuracy": v, "loss": 1 - v, "params": params, "flops": params * 10, "device": "cpu"}
        store.finish_trial(search.id, t.number, TrialStatus.COMPLETED, metrics=metrics, value=v)
    return store.get_search(name)


def _done(store: Store, search: SearchRecord) -> list[TrialRecord]:
    return [t for t in store.trials(search.id, statuses=[TrialStatus.COMPLETED]) if t.value is not None]


@pytest.fixture
def filled(store: Store) -> SearchRecord:
    return _fill(store, "q", 40)


def test_leaderboard_is_the_k_best_in_the_objectives_direction(store: Store, filled: SearchRecord) -> None:
    top = queries.leaderboard(store, filled.name, 5)
    expected = sorted(_done(store, filled), key=lambda t: (-t.value, t.number))[:5]  # type: ignore[operator]
    assert [t.number for t in top] == [t.number for t in expected]
    low = _fill(store, "low", 30, objectives=["-loss"], seed=3)
    worst_first = queries.leaderboard(store, low, 4)
    assert [t.number for t in worst_first] == [
        t.number
        for t in sorted(_done(store, low), key=lambda t: (t.value, t.number))[:4]  # type: ignore[arg-type, return-value]
    ]
    failed = queries.leaderboard(store, filled.id, 3, status="failed")  # no value: the newest first
    newest = sorted((t.number for t in store.trials(filled.id) if t.status is TrialStatus.FAILED), reverse=True)
    assert [t.number for t in failed] == newest[:3] and len(failed) == 3
    assert queries.leaderboard(store, filled, 3, proposer="nobody") == []
    with pytest.raises(ValueError, match="k must be an int"):
        queries.leaderboard(store, filled, 0)
    with pytest.raises(NotFound, match="no search named 'ghost'"):
        queries.leaderboard(store, "ghost")


def test_leaderboard_across_the_searches_of_a_strategy(store: Store, filled: SearchRecord) -> None:
    other = _fill(store, "evo", 20, seed=5, strategy="evolution")
    both = queries.leaderboard(store, None, 8)
    pool = _done(store, filled) + _done(store, other)
    expected = sorted(pool, key=lambda t: (-t.value, t.number, t.search_id))[:8]  # type: ignore[operator]
    assert [t.value for t in both] == [t.value for t in expected]
    only_evo = queries.leaderboard(store, None, 50, strategy="evolution")
    assert {t.search_id for t in only_evo} == {other.id} and len(only_evo) == len(_done(store, other))
    assert queries.leaderboard(store, filled, 3, strategy="evolution") == []
    _fill(store, "minimizer", 3, objectives=["-loss"])
    with pytest.raises(ValueError, match="different objectives"):
        queries.leaderboard(store, None)


def _reference_curve(trials: list[TrialRecord], key: str, maximize: bool) -> list[tuple[int, float]]:
    best, out = None, []
    for t in sorted(trials, key=lambda t: getattr(t, key)):
        if best is None or (t.value > best if maximize else t.value < best):  # type: ignore[operator]
            best = t.value
            out.append((t.number, t.value))
    return out


@pytest.mark.parametrize("objective", ["accuracy", "-loss"])
def test_best_so_far_by_number_and_by_time(store: Store, objective: str) -> None:
    search = _fill(store, "c", 50, objectives=[objective], seed=11)
    done = _done(store, search)
    for by, key in (("number", "number"), ("time", "result_seq")):
        curve = queries.best_so_far(store, search.name, by=by)  # type: ignore[arg-type]
        assert [(p.number, p.value) for p in curve.points] == _reference_curve(done, key, search.maximize)
        assert curve.last_number == max(done, key=lambda t: getattr(t, key)).number
    timed = queries.best_so_far(store, search, by="time")
    elapsed = [p.elapsed for p in timed.points]
    assert all(e is not None and e >= 0 for e in elapsed) and elapsed == sorted(elapsed)  # type: ignore[type-var]
    assert timed.best_at(10**9) == timed.points[-1].value and timed.best_at(-1) is None


def test_best_so_far_of_an_empty_search(store: Store) -> None:
    empty = store.create_search("empty", SearchConfig(space="toy", strategy="random", objectives=("accuracy",)))
    curve = queries.best_so_far(store, empty)
    assert curve.points == () and curve.last_number is None
    assert queries.pareto(store, empty) == [] and queries.decision_stats(store, empty).rows == ()
    (summary,) = queries.compare(store, [empty.name])
    assert summary.best is None and summary.median is None and summary.counts["completed"] == 0


def _reference_front(points: list[tuple[int, float, float]], maximize: bool) -> set[tuple[float, float]]:
    sign = 1 if maximize else -1
    front = set()
    for _, v, c in points:
        dominated = any(
            (c2 <= c and sign * v2 >= sign * v) and (c2 < c or sign * v2 > sign * v) for _, v2, c2 in points
        )
        if not dominated:
            front.add((v, c))
    return front


@pytest.mark.parametrize("objective", ["accuracy", "-loss"])
def test_pareto_front_matches_brute_force(store: Store, objective: str) -> None:
    search = _fill(store, "p", 60, objectives=[objective], seed=2)
    done = _done(store, search)
    for cost in ("params", "flops"):
        points = [(t.number, float(t.value), float(t.metrics[cost])) for t in done]  # type: ignore[arg-type]
        front = queries.pareto(store, search, cost)
        assert {(p.value, p.cost) for p in front} == _reference_front(points, search.maximize)
        assert [p.cost for p in front] == sorted(p.cost for p in front)
        for p in front:  # the smallest trial number at that point
            assert p.number == min(n for n, v, c in points if (v, c) == (p.value, p.cost))
    assert queries.pareto(store, search, "latency_ms") == []
    assert queries.available_costs(store, search) == ["params", "flops"]
    with pytest.raises(ValueError, match="cost must be one of"):
        queries.pareto(store, search, "accuracy; DROP TABLE trials")


def test_cost_and_value_points_are_thinned_in_the_database(store: Store, filled: SearchRecord) -> None:
    done = {t.number: t for t in _done(store, filled)}
    every = queries.cost_points(store, filled, "params", limit=1000)
    assert [(n, v, c) for n, v, c in every] == [
        (n, t.value, float(t.metrics["params"])) for n, t in sorted(done.items())
    ]
    few = queries.value_points(store, filled, limit=10)
    assert 0 < len(few) <= 10 and all(done[n].value == v for n, v, _ in few)


def test_decision_stats_match_counting_in_python(store: Store, filled: SearchRecord) -> None:
    done = sorted(_done(store, filled), key=lambda t: (-t.value, t.number))  # type: ignore[operator]
    stats = queries.decision_stats(store, filled, k=10)
    assert stats.k == 10 and stats.completed == len(done)
    got = {(r.name, json.dumps(r.option)): r for r in stats.rows}
    for group, attr, share in ((done, "completed", "share"), (done[:10], "top", "top_share")):
        counts = Counter((k, json.dumps(v)) for t in group for k, v in t.arch.items())
        having = Counter(k for t in group for k in t.arch)
        assert {key: getattr(r, attr) for key, r in got.items() if getattr(r, attr)} == dict(counts)
        for (name, text), n in counts.items():
            assert getattr(got[(name, text)], share) == pytest.approx(n / having[name])
    # Typed options survive: bools, None, floats and lists are JSON values again.
    assert {type(r.option) for r in stats.rows if r.name == "bn"} == {bool}
    assert None in {r.option for r in stats.rows if r.name == "drop"}
    assert {tuple(r.option) for r in stats.rows if r.name == "kernel"} <= {(3, 3), (5, 5)}
    # In the space's order: decisions as declared, then options as declared.
    assert [r.name for r in stats.rows][:3] == ["op"] * 3
    assert [r.option for r in stats.rows if r.name == "width"] == [16, 32, 64]


def test_top_k_and_all_agree_when_k_is_everything(store: Store, filled: SearchRecord) -> None:
    """The query computes option texts the way the triggers do, so the two sides line up."""
    stats = queries.decision_stats(store, filled, k=queries.MAX_K)
    assert stats.k == stats.completed
    assert all(r.top == r.completed and r.lift == pytest.approx(1.0) for r in stats.rows)


def test_trial_detail_has_steps_parent_and_children(store: Store, filled: SearchRecord) -> None:
    trials = store.trials(filled.id)
    parent = Counter(t.parent for t in trials if t.parent is not None).most_common(1)[0][0]
    detail = queries.trial_detail(store, filled.name, parent, children_limit=2)
    kids = sorted(t.number for t in trials if t.parent == parent)
    assert detail.children_total == len(kids) and [c.number for c in detail.children] == kids[:2]
    child = queries.trial_detail(store, filled, kids[0])
    assert child.parent is not None and child.parent.number == parent
    if child.trial.status is TrialStatus.COMPLETED:
        assert [s.step for s in child.steps] == [1, 2] and child.steps[-1].value == child.trial.value
    with pytest.raises(NotFound, match="has no trial 999"):
        queries.trial_detail(store, filled, 999)


def test_compare_gives_counts_best_median_and_curves(store: Store, filled: SearchRecord) -> None:
    other = _fill(store, "b", 25, seed=9)
    summaries = queries.compare(store, [other.name, filled.name])
    assert [s.search.name for s in summaries] == ["b", "q"]
    for s in summaries:
        done = _done(store, s.search)
        assert s.counts["completed"] == len(done) and s.counts["failed"] == len(store.trials(s.search.id)) - len(done)
        assert s.best == max(t.value for t in done)  # type: ignore[type-var]
        assert s.median == pytest.approx(statistics.median(t.value for t in done))  # type: ignore[misc]
        assert s.curve.points[-1].value == s.best
    with pytest.raises(ValueError, match="non-empty list"):
        queries.compare(store, "q")


def test_side_tables_follow_requeue_failure_and_delete(store: Store) -> None:
    search = store.create_search("life", SearchConfig(space="toy", strategy="random", objectives=("accuracy",)))
    t = store.add_trial(search.id, arch={"op": "conv"}, arch_key="a", proposer="p")
    store.start_trial(search.id, t.number)
    store.requeue_trials(search.id)
    assert queries.decision_stats(store, search).rows == ()
    store.start_trial(search.id, t.number)
    store.finish_trial(
        search.id, t.number, TrialStatus.COMPLETED, metrics={"accuracy": 0.5, "params": "many"}, value=0.5
    )
    (row,) = queries.decision_stats(store, search).rows
    assert (row.name, row.option, row.completed) == ("op", "conv", 1)
    assert queries.available_costs(store, search) == []  # a non-numeric metric is no cost
    before = queries.version(store, search)
    u = store.add_trial(search.id, arch={"op": "conv"}, arch_key="b", proposer="p")
    store.finish_trial(search.id, u.number, TrialStatus.INFEASIBLE, error="too big")
    assert queries.version(store, search) != before
    assert queries.decision_stats(store, search).rows[0].completed == 1
    store.delete_search("life")
    assert Counter(queries.leaderboard(store, None, 5)) == Counter()


def test_upgrade_fills_the_side_tables_of_an_older_database(store_url: str) -> None:
    with Store(store_url) as store:
        search = _fill(store, "old", 20, seed=4)
        expected = queries.decision_stats(store, search, k=5)
        curve = queries.best_so_far(store, search)
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
    finally:
        engine.dispose()
    with Store(store_url) as store:  # upgrades to head again: the migration backfills
        assert queries.decision_stats(store, "old", k=5) == expected
        assert queries.best_so_far(store, "old") == curve


def test_decision_stats_bin_range_decisions(store: Store) -> None:
    """A float (or log integer) decision is shown in its 10 bins, not one row per value."""
    lr = {"name": "lr", "kind": "float", "options": [], "low": 1e-4, "high": 1e-1, "log": True}
    act = {"name": "act", "kind": "choice", "options": ["relu", "gelu"]}
    search = store.create_search("bins", SearchConfig(space="toy", space_info={"decisions": [lr, act]}))
    rng = random.Random(0)
    for i in range(60):
        value = 10 ** rng.uniform(-4, -1)
        t = store.add_trial(
            search.id, arch={"lr": value, "act": ["relu", "gelu"][i % 2]}, arch_key=f"k{i}", proposer="p"
        )
        store.start_trial(search.id, t.number)
        store.finish_trial(search.id, t.number, TrialStatus.COMPLETED, value=-abs(math.log10(value) + 2.5))
    stats = queries.decision_stats(store, search.id, k=6)
    lr_rows = [r for r in stats.rows if r.name == "lr"]
    assert 5 <= len(lr_rows) <= 10 and sum(r.completed for r in lr_rows) == 60
    assert all(r.option.startswith("[") for r in lr_rows) and lr_rows[-1].option.endswith("]")
    assert abs(sum(r.share for r in lr_rows) - 1) < 1e-9
    best_bin = max(lr_rows, key=lambda r: r.top)  # the objective peaks at lr = 10**-2.5
    assert best_bin.option in ("[0.00158, 0.00316)", "[0.00316, 0.00631)")  # the two bins beside the peak
    assert {r.option for r in stats.rows if r.name == "act"} == {"relu", "gelu"}
