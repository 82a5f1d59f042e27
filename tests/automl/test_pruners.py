"""The pruners: ASHA against Ray Tune's own rule, the defaults on crossing learning curves,
Hyperband's brackets (by hand and against Ray's brackets), the median rule on hand-made curves,
option errors, the stored reason, and the rebuild on resume."""

from __future__ import annotations

import doctest
import importlib
import random
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

import automl
from automl import UsageError
from automl.executors import Step
from automl.pruners import (
    PRUNED_KEY,
    ASHAPruner,
    HyperbandPruner,
    MedianPruner,
    PruneDecision,
    ask_pruner,
    default_min_resource,
    make_pruner,
    restore_pruner,
)
from evaluators import TrainConfig, TrainingEvaluator
from store import Store, TrialStatus
from tests.automl import _evaluators as evs

Curves = dict[int, Sequence[float]]  # trial number -> its value at steps 1, 2, ...


def run_curves(pruner: Any, curves: Curves, order: str = "sequential") -> dict[int, PruneDecision | int]:
    """Report ``curves`` to ``pruner`` one trial after another ("sequential") or epoch by epoch
    ("lockstep"); per trial, the decision that stopped it, or the last step it reached."""
    out: dict[int, PruneDecision | int] = {}
    if order == "sequential":
        reports = [(n, e) for n, curve in curves.items() for e in range(1, len(curve) + 1)]
    else:
        reports = [(n, e) for e in range(1, max(map(len, curves.values())) + 1) for n in curves if e <= len(curves[n])]
    for n, e in reports:
        if isinstance(out.get(n), PruneDecision):
            continue  # stopped
        decision = pruner.decide(Step(n, e, {"accuracy": curves[n][e - 1]}))
        out[n] = decision if decision.stop else e
    return out


# -- ASHA ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "rf"), [("max", 4), ("min", 3), ("max", 2)])
def test_asha_decides_as_ray_tunes_scheduler(mode: str, rf: int) -> None:
    tune = pytest.importorskip("ray.tune.schedulers")
    reference = tune.ASHAScheduler(
        time_attr="step", metric="acc", mode=mode, max_t=1000, grace_period=1, reduction_factor=rf
    )
    # The same settings: first rung 1, and a decision from the second trial at a rung on (Tune's rule).
    ours = ASHAPruner(min_resource=1, reduction_factor=rf, min_trials=1, objective="acc" if mode == "max" else "-acc")
    rng = random.Random(rf)
    trials = {n: SimpleNamespace(trial_id=f"t{n}", step=0, quality=rng.random(), stopped=False) for n in range(40)}
    for t in trials.values():
        reference.on_trial_add(None, t)
    decisions = 0
    while any(not t.stopped and t.step < 30 for t in trials.values()):
        t_number = rng.choice([n for n, t in trials.items() if not t.stopped and t.step < 30])  # asynchronous
        t = trials[t_number]
        t.step += 1
        value = t.quality * t.step + rng.gauss(0, 0.3)
        theirs = reference.on_trial_result(None, t, {"step": t.step, "acc": value}) == "STOP"
        mine = ours(Step(t_number, t.step, {"acc": value}), {})
        assert mine == theirs, (t_number, t.step)
        t.stopped = mine
        decisions += mine
    assert decisions > 10


@pytest.mark.parametrize("module", ["_asha", "_hyperband", "_median"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"automl.pruners.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_default_rungs_follow_the_training_length() -> None:
    # max(ceil(R / 9), min(R // 3, 3)): two reductions before the end, never before epoch 3
    # unless the training is shorter than 9 epochs (then a third of it).
    expected = {1: 1, 2: 1, 3: 1, 6: 2, 9: 3, 10: 3, 27: 3, 30: 4, 100: 12}
    assert {r: default_min_resource(r, 3) for r in expected} == expected
    assert ASHAPruner(max_resource=10).rungs() == [3, 9]  # not epoch 1
    assert ASHAPruner(max_resource=100).rungs() == [12, 36]
    assert ASHAPruner(max_resource=1).rungs() == []  # a single epoch: nothing to judge
    for r in range(1, 200):
        rungs = ASHAPruner(max_resource=r).rungs()
        assert all(x < r for x in rungs), r  # never at or after the end
    asha = ASHAPruner()
    assert (asha.reduction_factor, asha.min_resource, asha.min_trials, asha.rungs(30)) == (3, 1, 3, [1, 3, 9, 27])


def test_asha_rungs_and_restore() -> None:
    asha = ASHAPruner(min_resource=2, reduction_factor=3, max_resource=20, min_trials=1)
    assert asha.rungs(100) == [2, 6, 18]
    assert ASHAPruner(min_resource=1, reduction_factor=3, max_resource=9).rungs(9) == [1, 3]  # none at the last epoch
    with pytest.raises(RuntimeError, match="no objective"):
        asha(Step(0, 2, {"acc": 1.0}), {})
    asha.bind("-loss")
    history = [(0, 2, 0.5), (1, 2, 0.4), (2, 2, 0.3), (0, 6, 0.2)]
    live = ASHAPruner(min_resource=2, reduction_factor=3, max_resource=20, min_trials=1, objective="-loss")
    for n, s, v in history:
        live(Step(n, s, {"loss": v}), {})
    asha.restore(history)
    for probe in (0.1, 0.35, 0.9):  # a new trial at rung 2 is judged the same by both
        assert asha(Step(9, 2, {"loss": probe}), {}) == live(Step(9, 2, {"loss": probe}), {})
        asha._rungs[2].pop(9), live._rungs[2].pop(9)
    assert asha(Step(9, 2, {"loss": 0.9}), {}) is True  # worse than the best third: stopped
    with pytest.raises(ValueError, match="min_resource must be None or an integer >= 1, got 0"):
        ASHAPruner(min_resource=0)


def test_asha_decides_nothing_until_reduction_factor_trials_reached_a_rung() -> None:
    asha = ASHAPruner(min_resource=1, max_resource=10, objective="accuracy")  # eta 3: 3 trials per decision
    assert [asha(Step(n, 1, {"accuracy": a})) for n, a in enumerate([0.9, 0.1, 0.05])] == [False, False, True]
    # The second trial (0.1 after 0.9) goes on: one value decides nothing.
    reason = asha.decide(Step(3, 1, {"accuracy": 0.2}))
    # Earlier values [0.9, 0.1, 0.05]: their 2/3 quantile is 0.1 + (0.9 - 0.1) / 3 = 0.3667.
    assert (reason.stop, reason.rung, reason.value, reason.peers) == (True, 1, 0.2, 3)
    assert reason.threshold == pytest.approx(0.3667, abs=1e-4)


def test_minimizing_is_the_mirror_of_maximizing() -> None:
    values = [0.3, 0.8, 0.5, 0.9, 0.1, 0.6, 0.7, 0.2]
    up = ASHAPruner(min_resource=1, max_resource=10, objective="accuracy")
    down = ASHAPruner(min_resource=1, max_resource=10, objective="loss", maximize=False)
    dash = ASHAPruner(min_resource=1, max_resource=10, objective="-loss")
    for n, v in enumerate(values):
        a, b = up.decide(Step(n, 1, {"accuracy": v})), down.decide(Step(n, 1, {"loss": -v}))
        c = dash(Step(n, 1, {"loss": -v}))
        assert a.stop == b.stop == c
        if a.threshold is not None:
            assert b.threshold == pytest.approx(-a.threshold) and b.maximize is False and b.metric == "loss"


_SLOW = [0.10, 0.70, 0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995]  # at chance after epoch 1, ends best


def _fast(q: float) -> list[float]:
    """Starts high, plateaus lower than the slow starter: q + 0.06 * (1 - 2**-epoch)."""
    return [q + 0.06 * (1 - 0.5**e) for e in range(1, 11)]


@pytest.mark.parametrize("order", ["sequential", "lockstep"])
def test_default_asha_keeps_a_slow_starter_that_wins(order: str) -> None:
    qualities = [0.84, 0.88, 0.81, 0.86, 0.80, 0.85, 0.87, 0.82, 0.83]  # nine fast starters, 0.83 .. 0.93 at epoch 1
    curves: Curves = {n: _fast(q) for n, q in enumerate(qualities)}
    curves[9] = _SLOW  # the last to arrive: judged against all nine
    default = run_curves(ASHAPruner(max_resource=10, objective="accuracy"), curves, order)  # rungs 3, 9
    assert default[9] == 10  # past rung 3 (0.95, the best there) and rung 9: it completes
    assert any(isinstance(d, PruneDecision) for d in default.values())  # and poorer fast ones stopped
    # Yesterday's defaults (first rung 1, top quarter, any two trials decide) stopped it at chance:
    old = run_curves(ASHAPruner(min_resource=1, reduction_factor=4, min_trials=1, objective="accuracy"), curves, order)
    assert isinstance(old[9], PruneDecision) and (old[9].rung, old[9].value) == (1, 0.10)


def test_default_asha_still_prunes_clearly_bad_trials() -> None:
    # Even numbers learn (0.90 + 0.001 n at every epoch), odd ones stay at chance (0.10).
    curves: Curves = {n: [0.90 + 0.001 * n if n % 2 == 0 else 0.10] * 10 for n in range(12)}
    out = run_curves(ASHAPruner(max_resource=10, objective="accuracy"), curves)
    assert out[1] == 10  # the second trial at each rung: too few to decide, it completes
    for n in range(3, 12, 2):  # every later one is stopped at the first rung, below the top third
        assert isinstance(out[n], PruneDecision) and (out[n].rung, out[n].value) == (3, 0.10), n
        assert out[n].threshold > 0.5 and out[n].rule == "top 1/3"
    assert all(out[n] == 10 for n in range(0, 12, 2))  # no good one is stopped


# -- Hyperband ----------------------------------------------------------------------------------------------
def test_hyperband_brackets_by_hand() -> None:
    hb = HyperbandPruner(max_resource=27, reduction_factor=3, objective="accuracy")
    # R = 27, eta = 3: s_max = 3; bracket s starts at 27 / 3**s: s=0: 27, s=1: 9, s=2: 3, s=3: 1,
    # and rungs go up by 3 below 27: s=3: 1, 3, 9; s=2: 3, 9; s=1: 9; s=0: none (trained in full).
    assert [b.min_resource for b in hb.brackets] == [27, 9, 3, 1]
    assert [b.rungs() for b in hb.brackets] == [[], [9], [3, 9], [1, 3, 9]]
    # Round robin from the most aggressive, from the trial number alone: the same in any pruner.
    assert [hb.bracket_of(n) for n in range(9)] == [3, 2, 1, 0, 3, 2, 1, 0, 3]
    again = HyperbandPruner(max_resource=27, objective="-loss")
    assert [again.bracket_of(n) for n in range(100)] == [hb.bracket_of(n) for n in range(100)]
    # 10 epochs: s_max = 2 (3**2 <= 10 < 3**3); bracket starts round(10 / 3**s) = 10, 3, 1.
    assert [b.rungs() for b in HyperbandPruner(max_resource=10).brackets] == [[], [3, 9], [1, 3, 9]]
    assert [b.rungs() for b in HyperbandPruner(max_resource=27, min_resource=3).brackets] == [[], [9], [3, 9]]


def test_hyperband_judges_each_trial_in_its_bracket() -> None:
    rng = random.Random(7)
    curves: Curves = {n: [rng.random() * e / 27 for e in range(1, 28)] for n in range(40)}
    hb = HyperbandPruner(max_resource=27, objective="accuracy")
    out = run_curves(hb, curves, "lockstep")
    stopped = {n: d for n, d in out.items() if isinstance(d, PruneDecision)}
    assert stopped and all(d.pruner == "hyperband" and d.bracket == hb.bracket_of(n) for n, d in stopped.items())
    assert all(d.rung in hb.brackets[d.bracket].rungs() for d in stopped.values())
    assert all(out[n] == 27 for n in range(3, 40, 4))  # bracket 0 has no rung: its trials all complete
    assert {d.rung for n, d in stopped.items() if hb.bracket_of(n) == 2} <= {3, 9}  # never at 1 there
    # Its rungs, per bracket, hold exactly the trials of that bracket.
    for s, bracket in enumerate(hb.brackets):
        assert all(hb.bracket_of(n) == s for rung in bracket._rungs.values() for n in rung)


def test_each_hyperband_bracket_decides_as_ray_tunes_bracket() -> None:
    pytest.importorskip("ray.tune.schedulers")
    from ray.tune.schedulers.async_hyperband import _Bracket

    # Tune's bracket s' starts at min_t * eta**s'; ours s starts at 27 / 3**s: s' = 3 - s.
    hb = HyperbandPruner(max_resource=27, min_trials=1, objective="acc")
    theirs = [_Bracket(1, 27, 3, 3 - s) for s in range(4)]
    rng = random.Random(3)
    trials = {n: SimpleNamespace(trial_id=f"t{n}", step=0, quality=rng.random(), stopped=False) for n in range(60)}
    decisions = 0
    while live := [n for n, t in trials.items() if not t.stopped and t.step < 26]:  # below max_resource
        n = rng.choice(live)
        t = trials[n]
        t.step += 1
        value = t.quality * t.step + rng.gauss(0, 0.3)
        expected = theirs[hb.bracket_of(n)].on_result(t, t.step, value) == "STOP"
        assert hb(Step(n, t.step, {"acc": value})) == expected, (n, t.step)
        t.stopped = expected
        decisions += expected
    assert decisions > 10


# -- median -------------------------------------------------------------------------------------------------
def test_median_rule_on_hand_made_curves() -> None:
    median = MedianPruner(n_startup_trials=2, n_warmup_steps=1, objective="accuracy")
    curves: Curves = {
        0: [0.5, 0.6, 0.7, 0.8, 0.9],  # first: nobody to compare with -> completes
        1: [0.4, 0.5, 0.6, 0.7, 0.8],  # one other trial at each step (< 2) -> completes
        # step 1 is warm-up; step 2: others 0.6, 0.5 -> median 0.55 > best 0.45 -> stopped at 2
        2: [0.3, 0.45, 0.5, 0.6, 0.7],
        # step 2: others .6 .5 .45 -> median .5, but its best so far is 0.9 (step 1) -> on;
        # step 3: others .7 .6 -> .65 < .9 -> on; and so on: a good start protects it
        3: [0.9, 0.2, 0.2, 0.2, 0.2],
        # step 2: others .6 .5 .45 .2 -> .475 < .55 on; step 3: .7 .6 .2 -> .6 < .62 on;
        # step 4: .8 .7 .2 -> .7 > .62 -> stopped at 4 (it would have ended at 0.99)
        4: [0.1, 0.55, 0.62, 0.5, 0.99],
        # step 1: the worst of six, but warm-up -> on; step 2: others .6 .5 .45 .2 .55 -> .5 > 0 -> stopped
        5: [0.0, 0.0, 0.0, 0.0, 0.0],
    }
    out = run_curves(median, curves)
    assert {n: (d.step, d.value, d.threshold) if isinstance(d, PruneDecision) else d for n, d in out.items()} == {
        0: 5, 1: 5, 2: (2, 0.45, pytest.approx(0.55)), 3: 5, 4: (4, 0.62, pytest.approx(0.7)), 5: (2, 0.0, 0.5),
    }  # fmt: skip
    assert out[2].rule == "median" and out[2].peers == 2 and out[5].peers == 5


def test_median_never_judges_the_last_step_and_minimizes() -> None:
    # t1: step 1: 0.6 >= 0.5 on; step 2 is max_resource: its best 0.7 < 0.9 would stop it, but it has finished.
    curves: Curves = {0: [0.5, 0.9], 1: [0.6, 0.7]}
    bounded = MedianPruner(n_startup_trials=1, n_warmup_steps=0, max_resource=2, objective="accuracy")
    assert run_curves(bounded, curves) == {0: 2, 1: 2}
    unbounded = run_curves(MedianPruner(n_startup_trials=1, n_warmup_steps=0, objective="accuracy"), curves)
    assert isinstance(unbounded[1], PruneDecision) and unbounded[1].step == 2
    # A loss: lower is better. t1's best so far is 0.3 (step 1) < median 0.4 of t0 at step 2 -> on.
    loss = MedianPruner(n_startup_trials=1, n_warmup_steps=0, objective="-loss")
    assert [loss(Step(n, s, {"loss": v})) for n, s, v in [(0, 1, 0.5), (0, 2, 0.4), (1, 1, 0.3), (1, 2, 0.6)]] == [
        False, False, False, False,
    ]  # fmt: skip
    assert loss(Step(2, 1, {"loss": 0.45})) is True  # above the median (0.4) of 0.5 and 0.3
    assert MedianPruner(max_resource=10).n_warmup_steps == 2  # first judged at 3, ASHA's first rung


# -- by name, with options ----------------------------------------------------------------------------------
def _trained(epochs: int) -> Any:
    return SimpleNamespace(config=SimpleNamespace(epochs=epochs))


def test_make_pruner_by_name_with_options() -> None:
    assert make_pruner(None, None, "accuracy") is None and make_pruner("none", None, "accuracy") is None
    asha = make_pruner("asha", _trained(10), "accuracy", True, {"reduction_factor": 2, "min_resource": 2})
    assert (asha.reduction_factor, asha.min_resource, asha.max_resource, asha.min_trials) == (2, 2, 10, 2)
    assert make_pruner("asha", _trained(10), "accuracy").rungs() == [3, 9]
    assert make_pruner("asha", _trained(10), "accuracy", True, {"max_resource": 30}).max_resource == 30
    loss = make_pruner("asha", _trained(10), "loss", False)  # SearchConfig.objective has no "-": maximize says it
    assert (loss.metric, loss.maximize) == ("loss", False)
    assert make_pruner("asha", None, "-loss").maximize is False
    hb = make_pruner("hyperband", _trained(27), "accuracy", True, {"min_trials": 1})
    assert isinstance(hb, HyperbandPruner) and len(hb.brackets) == 4 and hb.brackets[3].min_trials == 1
    median = make_pruner("median", _trained(10), "accuracy", True, {"n_startup_trials": 3})
    assert (median.n_startup_trials, median.n_warmup_steps, median.max_resource) == (3, 2, 10)
    trained = make_pruner("asha", TrainingEvaluator("cnn", "digits", TrainConfig(epochs=8)), "-loss")
    assert (trained.max_resource, trained.metric, trained.maximize, trained.rungs()) == (8, "loss", False, [2, 6])
    mine = ASHAPruner(reduction_factor=2, objective="acc")
    assert make_pruner(mine, None, "accuracy") is mine and mine.metric == "acc"  # bound already: kept
    assert make_pruner(ASHAPruner(), None, "err", False).maximize is False
    assert make_pruner(lambda step, metrics: False, None, "accuracy") is not None


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("fast", {}, "unknown pruner 'fast'; choose one of none, asha, hyperband, median"),
        ("asha", {"grace": 2}, "unknown option 'grace' for pruner 'asha'; it takes min_resource, reduction_factor"),
        ("median", {"eta": 3, "x": 1}, "unknown options 'eta', 'x' for pruner 'median'"),
        ("asha", {"reduction_factor": 1}, "pruner 'asha': reduction_factor must be an integer >= 2, got 1"),
        ("hyperband", {"reduction_factor": 1}, "pruner 'hyperband': reduction_factor must be an integer >= 2, got 1"),
        ("asha", {"min_resource": "2"}, "pruner 'asha': min_resource must be None or an integer >= 1, got '2'"),
        ("asha", {"min_trials": 0}, "pruner 'asha': min_trials must be None or an integer >= 1, got 0"),
        ("median", {"n_warmup_steps": -1}, "pruner 'median': n_warmup_steps must be None or an integer >= 0, got -1"),
        ("hyperband", {}, "pruner 'hyperband': max_resource is required"),  # the evaluator has no epochs
        ("none", {"reduction_factor": 3}, "pruner options reduction_factor given without a pruner"),
        (ASHAPruner(), {"min_resource": 2}, "pruner options apply to a pruner given by name"),
        (42, {}, "pruner must be None, one of asha, hyperband, median or a callable"),
    ],
)
def test_make_pruner_refuses_bad_input_naming_it(spec: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_pruner(spec, None, "accuracy", True, options)


def test_a_plain_callable_stop_is_recorded_at_its_step() -> None:
    assert ask_pruner(None, Step(0, 1, {})) is None
    assert ask_pruner(lambda step, metrics: False, Step(0, 1, {})) is None
    assert ask_pruner(lambda step, metrics: step.step == 2, Step(0, 2, {"accuracy": 0.5})) == {
        "pruner": "python", "rung": 2, "step": 2, "value": None, "threshold": None, "bracket": None,
    }  # fmt: skip


# -- through the search loop --------------------------------------------------------------------------------
def _steps(url: str, name: str) -> tuple[list[Any], dict[int, list[Any]]]:
    with Store(url) as store:
        search = store.get_search(name)
        trials = store.trials(search.id)
        return trials, {t.number: store.steps(search.id, t.number) for t in trials}


@pytest.mark.parametrize("kind", ["asha", "hyperband", "median"])
def test_a_pruned_trial_stores_why_with_its_last_step(sqlite_url: str, kind: str) -> None:
    # A Python evaluator has no epochs: ASHA's rungs are 1, 3, 9, ...; the others get max_resource here.
    pruner = {"asha": "asha", "hyperband": HyperbandPruner(max_resource=10), "median": MedianPruner(max_resource=10)}
    automl.search(
        "nb201", evs.Curves(steps=10), strategy="random", trials=16, storage=sqlite_url, name="why", seed=3,
        pruner=pruner[kind],
    )  # fmt: skip
    trials, steps = _steps(sqlite_url, "why")
    pruned = [t for t in trials if t.status is TrialStatus.PRUNED]
    assert pruned and len(pruned) < len(trials)
    for t in trials:
        *before, last = steps[t.number]
        assert all(PRUNED_KEY not in s.metrics for s in before)
        if t.status is not TrialStatus.PRUNED:
            assert PRUNED_KEY not in last.metrics and last.step == 10
            continue
        why = last.metrics[PRUNED_KEY]
        assert why["pruner"] == kind and why["metric"] == "accuracy" and why["maximize"] is True
        assert (why["rung"], why["step"], why["value"]) == (last.step, last.step, last.metrics["accuracy"])
        assert why["threshold"] > why["value"] and why["peers"] >= (5 if kind == "median" else 2)
        assert why["bracket"] == (pruner["hyperband"].bracket_of(t.number) if kind == "hyperband" else None)


def _state(pruner: Any) -> Any:
    if isinstance(pruner, HyperbandPruner):
        return [b._rungs for b in pruner.brackets]
    if isinstance(pruner, MedianPruner):
        return pruner._values, pruner._best
    return pruner._rungs


@pytest.mark.parametrize(
    "build",
    [
        lambda: ASHAPruner(reduction_factor=2),
        lambda: HyperbandPruner(max_resource=4, reduction_factor=2, min_trials=1),
        lambda: MedianPruner(n_startup_trials=2, max_resource=4),
    ],
    ids=["asha", "hyperband", "median"],
)
def test_a_pruner_is_rebuilt_from_the_store_on_resume(sqlite_url: str, build: Any) -> None:
    live = build()
    automl.search(
        "nb201", evs.Curves(steps=4), strategy="random", trials=12, storage=sqlite_url, name="re", seed=5, pruner=live
    )
    rebuilt = make_pruner(build(), None, "accuracy")
    with Store(sqlite_url) as store:
        assert any(t.status is TrialStatus.PRUNED for t in store.trials(store.get_search("re").id))
        restore_pruner(rebuilt, store, store.get_search("re").id)
    assert _state(rebuilt) == _state(live)
