"""Pause and promote: ASHA's stopped trials keep a checkpoint, promoted ones go on from it.

The promotion rule by hand, then whole searches: stored steps continue where the pause left them
(never restart), real training resumed from its checkpoint ends exactly as a training that never
stopped, files exist for every checkpoint the store names (and only those), and a driver that dies
between pause and promotion, or during a promoted run, loses no checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from torch import nn

import automl
import search_spaces
from automl.executors import Step
from automl.pruners import PRUNED_KEY, ASHAPruner, HyperbandPruner, PruneDecision, Pruner
from evaluators import TrainConfig, TrainingEvaluator
from store import CHECKPOINT_KEY, Store, TrialStatus
from tests.automl import _evaluators as evs


def fading() -> evs.PausableCurves:
    """Curves where later trials are weaker, so that early pauses get promoted."""
    return evs.PausableCurves(steps=9, fade=0.97)


# -- the rule -----------------------------------------------------------------------------------------------
def test_a_paused_trial_is_promoted_once_it_is_in_the_top_third_of_its_rung() -> None:
    asha = ASHAPruner(max_resource=9, objective="accuracy")
    assert asha.rungs() == [3]
    for number, value in enumerate([0.5, 0.6, 0.4]):  # the third is judged against two: stopped
        decision = asha.decide(Step(number, 3, {"accuracy": value}))
    assert decision.stop and asha.promotion({2: 3}) is None  # 1 of 3 may go on: 0.6, which did
    for number, value in enumerate([0.1, 0.2, 0.3], start=3):
        assert asha.decide(Step(number, 3, {"accuracy": value})).stop
    # 6 values: the top 2 (0.6, 0.5) went on; 0.4 is third, not yet promotable.
    assert asha.promotion({2: 3, 3: 3, 4: 3, 5: 3}) is None
    for number, value in enumerate([0.05, 0.15, 0.25], start=6):
        asha.decide(Step(number, 3, {"accuracy": value}))
    # 9 values: the top 3 now holds trial 2; the others stay paused.
    assert asha.promotion({2: 3, 3: 3, 4: 3, 5: 3, 6: 3}) == 2
    assert asha.promotion({3: 3, 4: 3}) is None


def test_promotion_minimizes_and_prefers_the_highest_rung() -> None:
    asha = ASHAPruner(min_resource=1, max_resource=9, objective="-loss")  # rungs 1, 3
    for number, loss in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]):
        asha.decide(Step(number, 1, {"loss": loss}))
    for number, loss in enumerate([0.5, 0.7, 0.9]):
        asha.decide(Step(number, 3, {"loss": loss}))
    # Paused: trial 1 at rung 1 (second best of 6: promotable) and trial 2 at rung 3 (third of 3: not).
    assert asha.promotion({1: 1}) == 1 and asha.promotion({2: 3}) is None
    for number, loss in enumerate([0.8, 1.1, 1.2, 1.3, 1.4, 1.5], start=3):
        asha.decide(Step(number, 3, {"loss": loss}))
    # Rung 3 has 9 values; the third best (0.8, trial 3) is promotable and beats rung 1's candidate.
    assert asha.promotion({1: 1, 3: 3}) == 3


def test_hyperband_promotes_within_each_trials_bracket() -> None:
    hb = HyperbandPruner(max_resource=9, objective="accuracy")  # brackets: rungs [], [3], [1, 3]
    aggressive = [n for n in range(60) if hb.bracket_of(n) == 2][:9]
    for rank, number in enumerate(aggressive):
        hb.decide(Step(number, 1, {"accuracy": 0.9 - rank * 0.1}))
    # Trial aggressive[2] is third of 9 at rung 1 in its bracket: promotable; other brackets hold none.
    assert hb.promotion({aggressive[2]: 1, aggressive[5]: 1}) == aggressive[2]
    assert hb.promotion({aggressive[5]: 1}) is None


# -- whole searches -----------------------------------------------------------------------------------------
def _trials(url: str, name: str) -> tuple[list[Any], dict[int, list[Any]]]:
    with Store(url) as store:
        search = store.get_search(name)
        trials = store.trials(search.id)
        return trials, {t.number: store.steps(search.id, t.number) for t in trials}


def check_pause_and_promote(url: str, name: str, steps: int) -> list[Any]:
    """What must hold after any search that paused and promoted: the promoted trials, checked."""
    trials, reports = _trials(url, name)
    promoted = [t for t in trials if t.metrics.get("resumed_from")]
    assert promoted, "no trial was promoted"
    named = set()
    for t in trials:
        numbers = [s.step for s in reports[t.number]]
        assert numbers == list(range(1, len(numbers) + 1)), (t.number, numbers)  # continued, never restarted
        held = t.metrics.get(CHECKPOINT_KEY)
        if t.status is TrialStatus.COMPLETED:
            assert held is None and numbers[-1] == steps
        if held is not None:  # paused: its file is there, at the step it stopped after
            assert t.status is TrialStatus.PRUNED and held["step"] == numbers[-1]
            assert Path(held["path"]).read_bytes().startswith(f"{held['step']}:".encode())
            named.add(Path(held["path"]).name)
    for t in promoted:
        start = t.metrics["resumed_from"]
        assert t.metrics["steps_run"] == steps - start  # trained only the steps after its checkpoint
        assert PRUNED_KEY in reports[t.number][start - 1].metrics  # the pause, kept in its history
    folder = {Path(t.metrics[CHECKPOINT_KEY]["path"]).parent for t in trials if CHECKPOINT_KEY in t.metrics}
    on_disk = {p.name for d in folder for p in d.iterdir()}
    assert on_disk == named  # promoted and completed trials' files are gone
    return promoted


def test_asha_pauses_and_promotes_and_steps_continue(sqlite_url: str, tmp_path: Path) -> None:
    automl.search(
        "nb201", fading(), strategy="random", trials=40, storage=sqlite_url, name="pp", seed=1,
        pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    check_pause_and_promote(sqlite_url, "pp", 9)
    trials, _ = _trials(sqlite_url, "pp")
    assert (
        sum(t.status is TrialStatus.COMPLETED for t in trials) + sum(t.status is TrialStatus.PRUNED for t in trials)
        == 40
    )  # the trials target counts architectures, promotions included
    # Beside the SQLite file by default.
    held = next(t.metrics[CHECKPOINT_KEY]["path"] for t in trials if CHECKPOINT_KEY in t.metrics)
    assert Path(held).parent == tmp_path / "automl-checkpoints" / f"pp-{1}"


def test_show_tells_a_paused_trial_and_a_promoted_one(sqlite_url: str, cli: Any) -> None:
    automl.search(
        "nb201", fading(), strategy="random", trials=30, storage=sqlite_url, name="pp", seed=1,
        pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    promoted = check_pause_and_promote(sqlite_url, "pp", 9)[0]
    trials, _ = _trials(sqlite_url, "pp")
    paused = next(t for t in trials if CHECKPOINT_KEY in t.metrics)
    out = cli("show", f"pp/{promoted.number}", "--storage", sqlite_url).stdout
    assert f"(step {promoted.metrics['resumed_from']}" in out
    assert "promoted later, it went on from its checkpoint" in out
    out = cli("show", f"pp/{paused.number}", "--storage", sqlite_url).stdout
    held = paused.metrics[CHECKPOINT_KEY]
    assert f"paused: its training state after step {held['step']} is kept" in " ".join(out.split())
    assert "_checkpoint" not in out  # said in words, not as a raw metric
    n_paused = sum(CHECKPOINT_KEY in t.metrics for t in trials)
    n_pruned = sum(t.status is TrialStatus.PRUNED for t in trials)
    assert n_paused > 0
    status = cli("status", "--storage", sqlite_url)
    assert f"{n_pruned} ({n_paused} paused)" in status.stdout, status.stdout
    (row,) = json.loads(cli("status", "--json", "--storage", sqlite_url).stdout)
    assert row["paused"] == n_paused and row["counts"]["pruned"] == n_pruned


def test_the_median_pruner_and_plain_evaluators_never_pause(sqlite_url: str) -> None:
    automl.search(
        "nb201", evs.PausableCurves(steps=6), strategy="random", trials=20, storage=sqlite_url, name="m", seed=1,
        pruner="median", pruner_options={"max_resource": 6},
    )  # fmt: skip
    automl.search("nb201", evs.Curves(steps=9), strategy="random", trials=20, storage=sqlite_url, name="c", seed=1,
                  pruner="asha", pruner_options={"max_resource": 9})  # fmt: skip
    for name in ("m", "c"):
        trials, _ = _trials(sqlite_url, name)
        assert any(t.status is TrialStatus.PRUNED for t in trials)
        assert not any(CHECKPOINT_KEY in t.metrics or t.metrics.get("resumed_from") for t in trials)


def test_a_checkpoint_that_cannot_be_written_prunes_for_good(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AUTOML_CHECKPOINTS", str(blocker))
    automl.search(
        "nb201", fading(), strategy="random", trials=30, storage=sqlite_url, name="full", seed=1,
        pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    trials, _ = _trials(sqlite_url, "full")
    assert any(t.status is TrialStatus.PRUNED for t in trials)
    assert not any(CHECKPOINT_KEY in t.metrics or t.metrics.get("resumed_from") for t in trials)


def test_a_driver_that_dies_before_or_during_a_promotion_loses_no_checkpoint(sqlite_url: str) -> None:
    kwargs: dict[str, Any] = dict(
        strategy="random", storage=sqlite_url, name="crash", seed=2, pruner="asha",
        pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    automl.search("nb201", evs.PausableCurves(steps=9, fade=0.97), trials=12, **kwargs)
    with Store(sqlite_url) as store:
        sid = store.get_search("crash").id
        paused = [t for t in store.trials(sid, statuses=[TrialStatus.PRUNED]) if CHECKPOINT_KEY in t.metrics]
        assert paused
        # A driver promoted one, it reported a step past its checkpoint, and the driver was killed.
        victim = paused[0]
        at = victim.metrics[CHECKPOINT_KEY]["step"]
        store.promote_trial(sid, victim.number, worker="dead")
        store.report_step(sid, victim.number, at + 1, {"accuracy": 0.0}, 0.0)
    # The next driver finds it running: paused again at its checkpoint, the later report dropped.
    automl.search("nb201", evs.PausableCurves(steps=9, fade=0.97), trials=30, **kwargs)
    check_pause_and_promote(sqlite_url, "crash", 9)
    trials, reports = _trials(sqlite_url, "crash")
    t = next(t for t in trials if t.number == victim.number)
    if t.status is TrialStatus.COMPLETED:
        assert t.metrics["resumed_from"] >= at
    else:
        assert [s.step for s in reports[t.number]][-1] >= at and CHECKPOINT_KEY in t.metrics


def test_a_promoted_run_that_fails_transiently_pauses_again_and_is_retried(sqlite_url: str) -> None:
    flaky = evs.PausableCurves(steps=9, fade=0.97, flaky=True)
    result = automl.search(
        "nb201", flaky, strategy="random", trials=30, storage=sqlite_url, name="flaky", seed=1, retries=1,
        pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    promoted = check_pause_and_promote(sqlite_url, "flaky", 9)
    assert len(flaky._failed) >= len(promoted)  # each promotion failed once, then went on from its checkpoint
    counts = result.counts()
    assert counts.get("completed", 0) + counts.get("pruned", 0) == 30 and not counts.get("failed")


def test_requeue_puts_a_promoted_trial_back_to_its_checkpoint(sqlite_url: str) -> None:
    automl.search(
        "nb201", fading(), strategy="random", trials=12, storage=sqlite_url, name="rq", seed=2,
        pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    with Store(sqlite_url) as store:
        sid = store.get_search("rq").id
        t = next(t for t in store.trials(sid, statuses=[TrialStatus.PRUNED]) if CHECKPOINT_KEY in t.metrics)
        held = t.metrics[CHECKPOINT_KEY]
        done = next(u for u in store.trials(sid) if u.status is TrialStatus.COMPLETED)
        with pytest.raises(ValueError, match=f"trial {done.number} of search 'rq' is completed with no checkpoint"):
            store.promote_trial(sid, done.number)
        running = store.promote_trial(sid, t.number, worker="w")
        assert running.status is TrialStatus.RUNNING and running.metrics[CHECKPOINT_KEY] == held
        store.report_step(sid, t.number, held["step"] + 1, {"accuracy": 0.1}, 0.1)
        (back,) = store.requeue_trials(sid, [t.number])
        assert back.status is TrialStatus.PRUNED and back.metrics[CHECKPOINT_KEY] == held
        assert [s.step for s in store.steps(sid, t.number)] == list(range(1, held["step"] + 1))
        assert Path(held["path"]).exists()


# -- real training ------------------------------------------------------------------------------------------
@search_spaces.space
def _mlp(a: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    width = a.choice("width", [4, 8, 16, 32, 64])
    depth = a.choice("depth", [1, 2])
    act = a.choice("act", ["relu", "tanh"])
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.LazyLinear(width), nn.ReLU() if act == "relu" else nn.Tanh()]
    return nn.Sequential(*layers, nn.LazyLinear(num_classes))


class _PauseOnceAt(Pruner):
    """Stops every trial once, at ``step``, and promotes each paused trial at the next chance."""

    name, options, promotes = "pause-once", (), True

    def __init__(self, step: int) -> None:
        super().__init__("accuracy")
        self.step = step
        self.paused_once: set[int] = set()

    def _decide(self, number: int, step: int, value: float) -> PruneDecision:
        stop = step == self.step and number not in self.paused_once
        if stop:
            self.paused_once.add(number)
        return self._decision(stop, step=step, rung=step, value=value)

    def promotion(self, paused: Mapping[int, int]) -> int | None:
        return min(paused, default=None)


def test_a_promoted_training_ends_exactly_as_one_that_never_stopped(sqlite_url: str) -> None:
    config = TrainConfig(epochs=5, batch_size=64, lr=3e-3, threads=1, device="cpu", schedule="cosine", augment="none")
    ev = TrainingEvaluator(_mlp, "digits", config)
    pause = _PauseOnceAt(2)
    automl.search(_mlp, ev, strategy="random", trials=3, storage=sqlite_url, name="real", seed=0, pruner=pause)
    trials, reports = _trials(sqlite_url, "real")
    assert [(t.status, t.metrics["resumed_from"]) for t in trials] == [(TrialStatus.COMPLETED, 2)] * 3
    for t in trials:
        assert [s.step for s in reports[t.number]] == [1, 2, 3, 4, 5]
        assert PRUNED_KEY in reports[t.number][1].metrics
        straight = ev.evaluate(t.arch)  # the same recipe and seed, never paused
        assert (t.metrics["accuracy"], t.metrics["loss"]) == (straight["accuracy"], straight["loss"])
        assert [s.metrics["accuracy"] for s in reports[t.number]][-1] == straight["accuracy"]
