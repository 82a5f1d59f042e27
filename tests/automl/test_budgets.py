"""Stopping rules: trials, budget (summed cost) and time (driver seconds over resumes), alone and
together; whichever comes first stops the search (issues 10 and 11)."""

from __future__ import annotations

import time

import pytest

import automl
from automl import UsageError
from store import Store

COST = 10.0


def costly(arch):  # type: ignore[no-untyped-def]
    return {"accuracy": list(arch.values()).count("nor_conv_3x3") / 6, "cost": COST}


def slow(arch):  # type: ignore[no-untyped-def]
    time.sleep(0.15)
    return costly(arch)


def _run(url: str, evaluator=costly, **limits):  # type: ignore[no-untyped-def]
    return automl.search("nb201", evaluator, strategy="random", storage=url, name="b", seed=0, progress=False, **limits)


def _done(res) -> int:  # type: ignore[no-untyped-def]
    counts = res.counts()
    return counts.get("completed", 0) + counts.get("pruned", 0)


def test_trials_alone(sqlite_url: str) -> None:
    assert _done(_run(sqlite_url, trials=5)) == 5


def test_budget_alone_spends_it_within_one_evaluation_and_is_not_capped_by_a_default(sqlite_url: str) -> None:
    res = _run(sqlite_url, budget=1205)  # 121 evaluations: more than the default 100 trials
    spent = sum(res.trials["cost"])
    assert 1205 <= spent < 1205 + COST and _done(res) == 121
    assert res.search.config.trials is None


def test_time_alone_stops_proposing_and_counts_across_resumes(sqlite_url: str) -> None:
    res = _run(sqlite_url, slow, time=0.9)
    first = _done(res)
    with Store(sqlite_url) as store:
        elapsed = store.get_search("b").elapsed_seconds
    assert 0.9 <= elapsed < 3.0 and 2 <= first <= 8
    again = _run(sqlite_url, slow, time=0.9)  # the time is spent: nothing more is proposed
    assert _done(again) == first
    more = _run(sqlite_url, slow, time=1.8)  # a resume with more time goes on from the time spent
    assert first < _done(more) <= 2 * first + 3
    with Store(sqlite_url) as store:
        assert 1.8 <= store.get_search("b").elapsed_seconds < 5.0


@pytest.mark.parametrize(
    ("limits", "done"),
    [
        ({"trials": 3, "budget": 1000}, 3),  # trials first
        ({"trials": 100, "budget": 25}, 3),  # budget first: 30 >= 25 after the third
        ({"trials": 4, "time": 3600}, 4),
        ({"budget": 40, "time": 3600}, 4),
    ],
)
def test_whichever_comes_first(sqlite_url: str, limits: dict[str, float], done: int) -> None:
    assert _done(_run(sqlite_url, **limits)) == done


def test_a_search_needs_a_stopping_rule_and_positive_limits(sqlite_url: str) -> None:
    with pytest.raises(UsageError, match="time must be a positive number"):
        _run(sqlite_url, time=0)
    with pytest.raises(UsageError, match="budget must be a positive number"):
        _run(sqlite_url, budget=-1)


def test_cli_durations() -> None:
    from automl.cli._search import parse_duration

    assert [parse_duration(t) for t in ("600", "90s", "30m", "2h", "1.5h")] == [600, 90, 1800, 7200, 5400]
    for bad in ("", "m", "-5m", "soon", "nanh"):
        with pytest.raises(Exception, match=r"duration|positive"):
            parse_duration(bad)
