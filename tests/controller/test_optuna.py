"""Optuna-backed proposers: distributions, statuses, results from elsewhere, replay."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from controller import Result
from controller._optuna import NSGA2Proposer, TPEProposer, distribution
from search_spaces import Decision
from tests.controller._spaces import cond, mixed, objective, tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _evaluated(p) -> list:  # type: ignore[no-untyped-def]
    """The study's trials but those closed as duplicates (never proposed)."""
    return [t for t in p.study.trials if not t.user_attrs.get("automl:duplicate")]


def test_distributions() -> None:
    assert distribution(Decision("op", "choice", ("a", "b", "c"))) == CategoricalDistribution((0, 1, 2))
    assert distribution(Decision("units", "integer", (16, 32, 48, 64))) == IntDistribution(16, 64, step=16)
    assert distribution(Decision("one", "integer", (5,))) == CategoricalDistribution((0,))
    pairs = Decision("skip", "inputs", ((0, 1), (0, 2), (1, 2)))
    assert distribution(pairs) == CategoricalDistribution((0, 1, 2))
    lr = Decision("lr", "float", (), 1e-4, 1e-1, log=True)
    assert distribution(lr) == FloatDistribution(1e-4, 1e-1, log=True)
    assert distribution(Decision("p", "float", (), 0.0, 0.5)) == FloatDistribution(0.0, 0.5)
    assert distribution(Decision("batch", "integer", (), 16, 512, log=True)) == IntDistribution(16, 512, log=True)
    assert distribution(mixed.decision("warmup")) == IntDistribution(1, 1000, log=True)


@pytest.mark.parametrize("strategy", [TPEProposer, NSGA2Proposer])
def test_range_decisions_through_optuna(strategy: type) -> None:
    p = strategy(mixed, seed=0, **({"population_size": 6} if strategy is NSGA2Proposer else {}))
    for n in range(40):
        proposal = p.ask()
        arch = mixed.validate(proposal.arch).arch  # in bounds, or InvalidArchitecture
        assert arch == proposal.arch and isinstance(arch["lr"], float) and isinstance(arch["batch"], int)
        f = objective(mixed, arch)
        p.tell(Result(n, arch, "completed", f, scores=(f, -f)[: p.objectives], info=proposal.info))
    lr = [t.params["lr"] for t in _evaluated(p)]
    assert len(set(lr)) > 10 and all(1e-4 <= v <= 1e-1 for v in lr)  # NSGA-II children inherit values
    assert next(t.distributions["lr"] for t in _evaluated(p)) == FloatDistribution(1e-4, 1e-1, log=True)


def test_statuses_map_to_trial_states() -> None:
    p = TPEProposer(tiny, seed=0)
    for n, status in enumerate(["completed", "failed", "pruned", "infeasible", "completed"]):
        proposal = p.ask()
        score = None if status in ("failed", "infeasible") else 1.0
        p.tell(Result(n, proposal.arch, status, score, info=proposal.info))  # type: ignore[arg-type]
    assert [t.state for t in _evaluated(p)] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    proposal = p.ask()
    p.tell(Result(5, proposal.arch, "completed", None, info=proposal.info))  # no score: nothing to learn
    assert _evaluated(p)[-1].state == TrialState.FAIL


def test_results_from_an_earlier_driver_are_added_with_their_parameters() -> None:
    earlier = TPEProposer(cond, seed=0)
    results = []
    for n in range(6):
        proposal = earlier.ask()
        results.append(Result(n, proposal.arch, "completed", objective(cond, proposal.arch), info=proposal.info))
    later = TPEProposer(cond, seed=0)
    for r in results:
        later.tell(r)
    trials = later.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert [t.value for t in trials] == [r.score for r in results]
    for t, r in zip(trials, results, strict=True):
        assert set(t.params) == set(r.arch)  # conditional decisions: only those asked
        assert cond.validate(r.arch)
    assert "skip" in trials[0].params and trials[0].distributions["skip"] == CategoricalDistribution((0, 1, 2))


def test_in_flight_trials_stay_running_for_the_constant_liar() -> None:
    p = TPEProposer(tiny, seed=0)
    flight = [p.ask() for _ in range(3)]
    assert [t.state for t in _evaluated(p)] == [TrialState.RUNNING] * 3
    p.tell(Result(1, flight[1].arch, "completed", 1.0, info=flight[1].info))
    assert [t.state for t in _evaluated(p)] == [TrialState.RUNNING, TrialState.COMPLETE, TrialState.RUNNING]


def test_tpe_finds_the_best_of_a_small_space() -> None:
    p = TPEProposer(tiny, seed=0)
    best = max(
        objective(tiny, tiny.validate({"op": o, "width": w, "act": a}).arch)
        for o in ("conv", "pool", "id")
        for w in (1, 2, 3, 4)
        for a in ("relu", "gelu", "tanh", "silu", "none")
    )
    found = 0.0
    for n in range(40):
        proposal = p.ask()
        score = objective(tiny, proposal.arch)
        found = max(found, score)
        p.tell(Result(n, proposal.arch, "completed", score, info=proposal.info))
    assert found == best


def test_nsga2_takes_several_scores_and_checks_their_number() -> None:
    p = NSGA2Proposer(tiny, seed=0, population_size=4)
    assert p.objectives == 2
    for n in range(10):
        proposal = p.ask()
        f = objective(tiny, proposal.arch)
        p.tell(Result(n, proposal.arch, "completed", f, scores=(f, -f), info=proposal.info))
    assert p.study.trials[-1].values == [f, -f]
    proposal = p.ask()
    with pytest.raises(ValueError, match="2 objective"):
        p.tell(Result(10, proposal.arch, "completed", 1.0, scores=(1.0,), info=proposal.info))
    three = NSGA2Proposer(tiny, seed=0, objectives=3)
    assert three.objectives == 3 and len(three.study.directions) == 3


def test_bad_sampler_options_fail_at_construction() -> None:
    with pytest.raises(TypeError):
        TPEProposer(tiny, sampler_options={"no_such_option": 1})


@pytest.mark.parametrize("make", [TPEProposer, lambda sp, seed: NSGA2Proposer(sp, seed=seed, population_size=4)])
def test_dedup_never_proposes_a_seen_architecture(make) -> None:  # type: ignore[no-untyped-def]
    p = make(tiny, seed=0)
    keys = []
    for n in range(55):  # of 60 architectures: late asks need the random fallback
        proposal = p.ask()
        keys.append(proposal.arch.key)
        scores = (objective(tiny, proposal.arch),) * p.objectives
        p.tell(Result(n, proposal.arch, "completed", scores[0], scores=scores, info=proposal.info))
    assert len(set(keys)) == 55
    retired = [t for t in p.study.trials if t.user_attrs.get("automl:duplicate")]
    assert retired and all(t.state == TrialState.FAIL for t in retired)
    flight = [p.ask() for _ in range(5)]  # the last five, in flight together
    assert len({f.arch.key for f in flight} | set(keys)) == 60


def test_without_dedup_tpe_repeats_itself() -> None:
    p = TPEProposer(tiny, seed=0, dedup=False)
    keys = []
    for n in range(40):
        proposal = p.ask()
        keys.append(proposal.arch.key)
        p.tell(Result(n, proposal.arch, "completed", objective(tiny, proposal.arch), info=proposal.info))
    assert len(set(keys)) < 40
