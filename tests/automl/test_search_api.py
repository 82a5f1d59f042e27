"""automl.search / automl.load against a real SQLite store, with plain-function evaluators."""

from __future__ import annotations

import math

import pytest

import automl
from automl import UsageError
from controller import UnknownStrategy
from search_spaces import Space, SpaceError, space
from store import NotFound, Store, TrialStatus


def conv_count(arch):
    ops = list(arch.values())
    return {"accuracy": ops.count("nor_conv_3x3") - 0.5 * ops.count("none"), "cost": 10.0}


def test_search_stores_every_trial_and_finds_the_best(sqlite_url):
    res = automl.search("nb201", conv_count, strategy="random", trials=30, storage=sqlite_url, name="s1", seed=1)
    frame = res.trials
    assert len(frame) == 30
    assert set(frame["status"]) == {"completed"}
    assert sorted(frame["number"]) == list(range(30))
    # the best is the maximum of the stored values, and its metrics are what the evaluator said
    assert res.best.value == frame["value"].max()
    assert res.best.metrics == conv_count(res.best.arch)
    again = automl.load("s1", storage=sqlite_url)
    assert again.best.number == res.best.number


def test_resume_extends_a_search_without_redoing_trials(sqlite_url):
    calls = []

    def ev(arch):
        calls.append(dict(arch))
        return conv_count(arch)

    automl.search("nb201", ev, strategy="random", trials=5, storage=sqlite_url, name="grow", seed=0)
    first = automl.load("grow", storage=sqlite_url).trials
    automl.search("nb201", ev, strategy="random", trials=8, storage=sqlite_url, name="grow", seed=0)
    both = automl.load("grow", storage=sqlite_url).trials
    assert len(calls) == 8  # 5, then only the 3 missing ones
    assert len(both) == 8
    assert both.set_index("number").loc[first["number"], "value"].tolist() == first["value"].tolist()


def test_resume_reruns_orphaned_running_trials(sqlite_url):
    automl.search("nb201", conv_count, strategy="random", trials=3, storage=sqlite_url, name="orph", seed=0)
    store = Store(sqlite_url)
    sid = store.get_search("orph").id
    # a dead driver left a proposal and a running trial behind
    t = store.add_trial(
        sid,
        arch={"1<-0": "none", "2<-0": "none", "2<-1": "none", "3<-0": "none", "3<-1": "none", "3<-2": "nor_conv_3x3"},
        arch_key="k",
        proposer="random",
    )
    store.start_trial(sid, t.number, worker="dead")
    store.close()
    automl.search("nb201", conv_count, strategy="random", trials=5, storage=sqlite_url, name="orph", seed=0)
    store = Store(sqlite_url)
    trials = store.trials(sid)
    store.close()
    assert [x.status for x in trials] == [TrialStatus.COMPLETED] * 5
    assert trials[3].attempts == 2 and trials[3].value == conv_count(trials[3].arch)["accuracy"]


def test_failures_are_recorded_and_the_search_goes_on(sqlite_url):
    def flaky(arch):
        if arch["1<-0"] == "none":
            raise ValueError("no edge")
        if arch["1<-0"] == "skip_connect":
            return {"accuracy": math.nan}
        return conv_count(arch)

    res = automl.search("nb201", flaky, strategy="random", trials=10, storage=sqlite_url, seed=3, max_failures=50)
    frame = res.trials
    assert (frame["status"] == "completed").sum() == 10
    failed = frame[frame["status"] == "failed"]
    assert len(failed) >= 1
    assert all(("ValueError: no edge" in e) or ("is nan" in e) for e in failed["error"])


def test_too_many_failures_in_a_row_stop_the_search(sqlite_url):
    def always(arch):
        raise RuntimeError("boom")

    with pytest.raises(automl._loop.SearchFailed, match=r"5 trials failed in a row; last error.*RuntimeError: boom"):
        automl.search("nb201", always, strategy="random", trials=10, storage=sqlite_url, max_failures=5)


def test_missing_objective_metric_fails_the_trial_with_a_clear_error(sqlite_url):
    with pytest.raises(automl._loop.SearchFailed, match="no 'accuracy' metric \\(got: loss\\)"):
        automl.search("nb201", lambda a: {"loss": 1.0}, trials=3, storage=sqlite_url, max_failures=2)


def test_minimize_objective_and_budget(sqlite_url):
    res = automl.search(
        "nb201", conv_count, strategy="random", trials=100, objective="-accuracy", budget=55, storage=sqlite_url
    )
    frame = res.trials
    assert len(frame) == 6  # 10 simulated seconds each: trials start while spent < 55
    assert res.best.value == frame["value"].min()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"trials": 0}, UsageError, "trials must be a positive integer, got 0"),
        ({"trials": "5"}, UsageError, "trials must be a positive integer, got '5'"),
        ({"workers": -1}, UsageError, "workers must be a non-negative integer"),
        ({"seed": -2}, UsageError, "seed must be a non-negative integer"),
        ({"strategy": "nope"}, UnknownStrategy, "unknown strategy 'nope'"),
        ({"name": "bad name!"}, UsageError, "search name must be"),
        ({"objective": "1x"}, UsageError, "objective '1x' is not a metric name"),
        ({"storage": "not a url"}, UsageError, "not a url"),
        ({"budget": -1}, UsageError, "budget must be a positive number"),
    ],
)
def test_bad_input_is_refused_before_anything_is_stored(sqlite_url, kwargs, error, match):
    with pytest.raises(error, match=match):
        automl.search("nb201", conv_count, **{"storage": sqlite_url, **kwargs})
    if "storage" not in kwargs:
        store = Store(sqlite_url)
        assert store.list_searches() == []
        store.close()


def test_bad_spaces_are_refused(sqlite_url):
    with pytest.raises(SpaceError, match="unknown space 'nope'"):
        automl.search("nope", conv_count, storage=sqlite_url)

    def raises(a):
        a.choice("x", [1, 2])
        raise ZeroDivisionError("oops")

    with pytest.raises(SpaceError, match="raised ZeroDivisionError: oops"):
        automl.search(Space(raises), conv_count, storage=sqlite_url)


def test_resuming_with_other_options_is_refused(sqlite_url):
    automl.search("nb201", conv_count, strategy="random", trials=2, storage=sqlite_url, name="x")
    with pytest.raises(UsageError, match="exists with strategy 'random', not 'evolution'"):
        automl.search("nb201", conv_count, strategy="evolution", trials=2, storage=sqlite_url, name="x")


def test_load_unknown_search(sqlite_url, tmp_path):
    with pytest.raises(NotFound, match="no database file"):  # and none is made
        automl.load("ghost", storage=sqlite_url)
    assert not (tmp_path / "automl.db").exists()
    automl.search("nb201", conv_count, strategy="random", trials=1, storage=sqlite_url, name="x")
    with pytest.raises(NotFound, match="no search named 'ghost'"):
        automl.load("ghost", storage=sqlite_url)


def test_repr_hides_the_password():
    res = automl.SearchResult("x", "postgresql+psycopg://me:s3cret@db.example/automl", None)  # type: ignore[arg-type]
    assert "s3cret" not in repr(res) and "***" in repr(res)


def test_resume_refuses_other_strategy_options_before_changing_anything(sqlite_url):
    automl.search("nb201", conv_count, strategy="evolution", trials=2, storage=sqlite_url, name="x",
                  strategy_options={"population_size": 5})  # fmt: skip
    with pytest.raises(UsageError, match="exists with strategy options"):
        automl.search("nb201", conv_count, strategy="evolution", trials=9, storage=sqlite_url, name="x",
                      strategy_options={"population_size": 6})  # fmt: skip
    assert automl.load("x", storage=sqlite_url).search.config.trials == 2


def test_loss_like_objective_needs_a_direction(sqlite_url):
    with pytest.raises(UsageError, match="objective 'loss' is better low: give '-loss'"):
        automl.search("nb201", conv_count, objective="loss", trials=1, storage=sqlite_url)
    res = automl.search("nb201", lambda a: {"loss": 1.0, "accuracy": 0.5}, objective="+loss", trials=1,
                        storage=sqlite_url, name="up")  # fmt: skip
    assert res.search.objectives == ("loss",) and res.search.maximize


def test_conditional_user_space(sqlite_url):
    @space
    def branchy(a):
        if a.choice("kind", ["wide", "deep"]) == "wide":
            return {"w": a.choice("width", [1, 2, 3])}
        return {"d": sum(a.integer(f"l{i}", 0, 2) for i in a.repeat("depth", 1, 3))}

    def ev(arch):
        return {"accuracy": float(arch.get("width", 0) + arch.get("depth", 0))}

    res = automl.search(branchy, ev, strategy="random", trials=15, storage=sqlite_url, seed=0)
    for arch in res.trials["arch"]:
        branchy.validate(arch)
        assert ("width" in arch) == (arch["kind"] == "wide")


def test_rl_policy_is_checkpointed_after_each_update_and_resumes_from_it(sqlite_url, monkeypatch):
    saved = []
    original = Store.save_checkpoint

    def spy(self, search_id, result_seq, state):
        saved.append((result_seq, state["step"]))
        return original(self, search_id, result_seq, state)

    monkeypatch.setattr(Store, "save_checkpoint", spy)
    opts = {"batch_size": 2}
    automl.search("nb201", conv_count, strategy="rl", trials=7, storage=sqlite_url, name="rl", strategy_options=opts)
    # an update after every 2 results, each stored at once; the 7th result is saved at exit
    assert saved == [(2, 1), (4, 2), (6, 3), (7, 3)]
    saved.clear()
    automl.search("nb201", conv_count, strategy="rl", trials=9, storage=sqlite_url, name="rl", strategy_options=opts)
    assert saved == [(8, 4), (9, 4)]  # resumed from step 3 with the 7th result pending: 7+8 -> step 4


@pytest.mark.parametrize("strategy", ["random", "evolution", "rl", "reinforce", "tpe"])
def test_every_strategy_completes_a_search_and_resumes(sqlite_url, strategy):
    automl.search("nb201", conv_count, strategy=strategy, trials=25, storage=sqlite_url, name="s", seed=0)
    res = automl.search("nb201", conv_count, strategy=strategy, trials=30, storage=sqlite_url, name="s", seed=0)
    frame = res.trials
    assert sorted(frame["number"]) == list(range(30)) and set(frame["status"]) == {"completed"}
    assert res.best.value == frame["value"].max()


def test_nsga2_takes_several_objectives(sqlite_url):
    def two(arch):
        return {**conv_count(arch), "params": float(list(arch.values()).count("nor_conv_3x3") ** 2)}

    res = automl.search(
        "nb201",
        two,
        strategy="nsga2",
        objective=["accuracy", "-params"],
        trials=30,
        storage=sqlite_url,
        strategy_options={"population_size": 8},
    )
    assert len(res.trials) == 30
    with pytest.raises(UsageError, match="optimizes several objectives"):
        automl.search("nb201", two, strategy="nsga2", trials=3, storage=sqlite_url)
