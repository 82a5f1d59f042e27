"""Every registered strategy on every space: the proposer contract of ``controller.Proposer``.

Parametrized over ``controller.strategies()`` (a new strategy is checked without editing this
file) and over the built-in spaces (skipped until they exist) plus hand-made ones, one of them
with float and log-scale decisions (``mixed``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import controller
from controller import Proposal, Proposer, Result
from search_spaces import Arch, Space
from tests.controller._spaces import get_space, objective

STRATEGIES = controller.strategies()
SPACES = ["tiny", "cond", "mixed", "nb201", "cnn", "mlp"]

# Small populations, so that the short runs below reach the strategies' later phases.
QUICK = {"evolution": {"population_size": 5, "sample_size": 3}, "nsga2": {"population_size": 4}}

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Optuna's notes on a young study


def status_of(number: int) -> str:
    """A fixed schedule of outcomes, so every status reaches every proposer."""
    if number % 10 == 3:
        return "failed"
    if number % 10 == 7:
        return "pruned"
    if number % 17 == 11:
        return "infeasible"
    return "completed"


def result_for(p: Proposer, sp: Space, number: int, proposal: Proposal) -> Result:
    status = status_of(number)
    if status in ("failed", "infeasible"):
        return Result(number, proposal.arch, status, None, parent=proposal.parent, info=proposal.info)
    f = objective(sp, proposal.arch) * (0.5 if status == "pruned" else 1.0)
    scores = (f, len(proposal.arch) - f, *(-f * k for k in range(2, p.objectives)))[: p.objectives]
    return Result(number, proposal.arch, status, f, scores=scores, parent=proposal.parent, info=proposal.info)


def drive(p: Proposer, sp: Space, trials: int, *, k: int = 1, start: int = 0) -> list[Result]:
    """Ask/tell ``trials`` times with up to ``k`` in flight; results told in a scrambled order."""
    order = np.random.default_rng(start + 7)
    told: list[Result] = []
    flight: list[tuple[int, Proposal]] = []
    number = start
    while number < start + trials or flight:
        while len(flight) < k and number < start + trials:
            proposal = p.ask()
            assert proposal is not None
            sp.validate(proposal.arch)  # raises InvalidArchitecture, naming the decision
            assert json.loads(json.dumps(dict(proposal.info))) == dict(proposal.info)
            assert proposal.parent is None or 0 <= proposal.parent < number
            flight.append((number, proposal))
            number += 1
        n, proposal = flight.pop(int(order.integers(len(flight))))
        result = result_for(p, sp, n, proposal)
        p.tell(result)
        told.append(result)
    return told


def quick(strategy: str, sp: Space, seed: int) -> Proposer:
    return controller.make(strategy, sp, seed=seed, **QUICK.get(strategy, {}))


def json_roundtrip(state: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


def same_next(p: Proposer, q: Proposer, sp: Space, start: int, n: int = 6) -> None:
    """``p`` and ``q`` propose the same ``n`` next architectures, hearing the same results."""
    for number in range(start, start + n):
        a, b = p.ask(), q.ask()
        assert (a.arch, a.parent) == (b.arch, b.parent), f"proposal {number - start} differs"
        r = result_for(p, sp, number, a)
        p.tell(r)
        q.tell(replace(r, info=b.info))


@pytest.fixture(params=SPACES)
def space_(request: pytest.FixtureRequest) -> Space:
    return get_space(request.param)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_proposals_are_valid(strategy: str, space_: Space) -> None:
    p = controller.make(strategy, space_, seed=0)  # default options
    results = drive(p, space_, 50)
    assert len(results) == 50
    json.dumps(p.state_dict())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_four_in_flight(strategy: str, space_: Space) -> None:
    p = quick(strategy, space_, seed=1)
    results = drive(p, space_, 40, k=4)
    assert sorted(r.number for r in results) == list(range(40))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_state_roundtrip_gives_same_next_proposals(strategy: str, space_: Space) -> None:
    p = quick(strategy, space_, seed=2)
    results = drive(p, space_, 24)
    q = quick(strategy, space_, seed=12345)  # a different seed: the state decides
    q.load_state_dict(json_roundtrip(p.state_dict()))
    if q.replay:
        for r in results:
            q.tell(r)
    same_next(p, q, space_, start=24)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_resume_as_the_search_loop_does(strategy: str, space_: Space) -> None:
    """Checkpoint after result 14, results 15..23 stored after it, a crash, then a resume.

    The resumed proposer has the same model as the one that never stopped; only its generator
    differs (asks after the checkpoint moved the original's on), so with the original's generator
    it proposes the same architectures.
    """
    p = quick(strategy, space_, seed=3)
    results = drive(p, space_, 15)
    checkpoint = json_roundtrip(p.state_dict())
    results += drive(p, space_, 9, start=15)
    q = quick(strategy, space_, seed=3)
    if q.replay:  # the loop re-tells every stored result and loads no state
        heard = results
    else:
        q.load_state_dict(checkpoint)
        heard = results[15:]
    for r in heard:
        q.tell(r)
    p_state, q_state = json_roundtrip(p.state_dict()), json_roundtrip(q.state_dict())
    p_state.pop("rng"), q_state.pop("rng")
    assert p_state == q_state
    q.rng.bit_generator.state = p.rng.bit_generator.state
    same_next(p, q, space_, start=24)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ask_changes_no_saved_state_but_the_generator(strategy: str, space_: Space) -> None:
    p = quick(strategy, space_, seed=4)
    drive(p, space_, 15)
    before = json_roundtrip(p.state_dict())
    for _ in range(3):
        p.ask()
    after = json_roundtrip(p.state_dict())
    before.pop("rng")
    after.pop("rng")
    assert before == after


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_results_it_did_not_ask_for(strategy: str, space_: Space) -> None:
    """Results of trials proposed elsewhere (an earlier driver, another strategy) are learned from."""
    p = quick(strategy, space_, seed=5)
    rng = np.random.default_rng(0)
    for n in range(12):
        result = result_for(p, space_, n, Proposal(space_.sample(rng)))
        p.tell(result)
    drive(p, space_, 8, start=12)


def test_registry_lists_every_strategy() -> None:
    assert {"random", "evolution", "rl", "reinforce", "tpe", "nsga2"} <= set(controller.strategies())
    tiny = get_space("tiny")
    with pytest.raises(controller.UnknownStrategy, match="unknown strategy 'nope'"):
        controller.make("nope", tiny)
    with pytest.raises(controller.UnknownStrategy, match="populaton_size"):
        controller.make("evolution", tiny, populaton_size=3)
    for strategy, bad in [
        ("evolution", {"population_size": 0}),
        ("evolution", {"sample_size": 0}),
        ("evolution", {"mutations": 0}),
        ("rl", {"lr": -1.0}),
        ("rl", {"batch_size": 0}),
        ("rl", {"policy": "gru"}),
        ("reinforce", {"baseline_momentum": 1.0}),
        ("nsga2", {"objectives": 0}),
    ]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            controller.make(strategy, tiny, **bad)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_architectures_are_arch_objects(strategy: str) -> None:
    sp = get_space("cond")
    p = controller.make(strategy, sp, seed=6)
    proposal = p.ask()
    assert isinstance(proposal.arch, Arch)
