"""Aging evolution: its parts on hand-made inputs (expected answers in comments), then the proposer."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from controller import Result
from controller._evolution import (
    AgingSurvival,
    EvolutionProposer,
    Member,
    TournamentSelection,
    mutate,
    mutate_once,
    perturb,
    tournament,
)
from search_spaces import Arch
from tests.controller._spaces import cond, mixed, tiny


# -- selection ------------------------------------------------------------------------------------
def test_tournament_picks_the_best_of_the_sample() -> None:
    scores = [0.1, 0.9, 0.5, 0.9, 0.3]  # oldest first
    assert tournament(scores, [0, 2, 4]) == 2  # 0.5 beats 0.1 and 0.3
    assert tournament(scores, [0, 1]) == 1  # 0.9
    assert tournament(scores, [4]) == 4  # a sample of one wins
    assert tournament(scores, [1, 3, 0]) == 3  # tie 0.9 / 0.9: the younger (position 3) wins
    assert tournament(np.array([-5.0, -1.0, -3.0]), np.array([0, 1, 2])) == 1  # negative scores: -1 best
    with pytest.raises(ValueError, match="empty sample"):
        tournament(scores, [])


def test_selection_samples_distinct_members() -> None:
    rng = np.random.default_rng(0)
    scores = np.array([3.0, 1.0, 2.0])
    # S = P: every member is in the tournament, so the best (position 0) always wins.
    assert {TournamentSelection(3).select(scores, rng) for _ in range(50)} == {0}
    # S = 1: the parent is uniform over the population.
    picks = [TournamentSelection(1).select(scores, rng) for _ in range(600)]
    assert np.bincount(picks, minlength=3).min() > 150
    # S = 2 of 3: the worst (position 1) can never win, the best wins 2/3 of the time.
    picks = [TournamentSelection(2).select(scores, rng) for _ in range(600)]
    counts = np.bincount(picks, minlength=3)
    assert counts[1] == 0 and 330 < counts[0] < 470


# -- mutation -------------------------------------------------------------------------------------
def test_mutation_changes_exactly_one_decision_of_an_unconditional_space() -> None:
    rng = np.random.default_rng(0)
    changed = set()
    for _ in range(300):
        parent = tiny.sample(rng)
        child = mutate_once(tiny, parent, rng)
        tiny.validate(child)
        diff = [k for k in parent if parent[k] != child[k]]
        assert len(diff) == 1, (parent, child)  # never a no-op, never two
        assert set(child) == set(parent)
        changed.add(diff[0])
    assert changed == {"op", "width", "act"}  # every decision gets mutated


def test_mutation_respects_the_conditional_structure() -> None:
    rng = np.random.default_rng(1)
    structural = 0
    for _ in range(300):
        parent = cond.sample(rng)
        child = mutate_once(cond, parent, rng)
        cond.validate(child)  # only decisions of the child's branch, every one of them
        common = set(parent) & set(child)
        # Exactly one decision both have changes (the mutated one); the rest keep their values.
        assert sum(parent[k] != child[k] for k in common) == 1, (parent, child)
        structural += set(parent) != set(child)
    assert structural > 30  # depth / kind / head mutations add or remove decisions


def test_mutation_keeps_values_after_a_depth_change() -> None:
    # depth 1 -> the child of a mutation of "depth" keeps layer0 and samples layer1 (and layer2).
    parent = Arch({"depth": 1, "layer0.kind": "conv", "layer0.kernel": 7, "skip": [0, 2], "head": False})
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(200):
        child = mutate_once(cond, parent, rng)
        if child["depth"] != 1:
            seen += 1
            assert child["layer0.kind"] == "conv" and child["layer0.kernel"] == 7
            assert child["skip"] == [0, 2] and child["head"] is False
            assert all(f"layer{i}.kind" in child for i in range(child["depth"]))
    assert seen > 0


def test_mutation_of_a_space_without_choices_is_refused() -> None:
    from search_spaces import space

    @space
    def fixed(a):  # type: ignore[no-untyped-def]
        a.choice("only", ["one"])

    with pytest.raises(ValueError, match="no decision with two or more options"):
        mutate_once(fixed, {"only": "one"}, np.random.default_rng(0))


def test_several_mutations_stay_valid() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        cond.validate(mutate(cond, cond.sample(rng), rng, mutations=3))


# -- survival -------------------------------------------------------------------------------------
def test_the_oldest_dies_whatever_its_score() -> None:
    pop = AgingSurvival(3)
    members = [Member(n, Arch({"op": "id"}), score) for n, score in enumerate([9.0, 1.0, 2.0, 3.0, 4.0])]
    dead = [pop.add(m) for m in members]
    assert [m.number for m in pop.members] == [2, 3, 4]  # the last three, oldest first
    assert dead[:3] == [None, None, None]
    assert [d.number for d in dead[3:]] == [0, 1]  # trial 0 (score 9, the best) died first
    assert pop.scores().tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="population_size"):
        AgingSurvival(0)


# -- the proposer ---------------------------------------------------------------------------------
def _tell(p: EvolutionProposer, n: int, proposal, score: float | None, status: str = "completed") -> None:  # type: ignore[no-untyped-def]
    p.tell(Result(n, proposal.arch, status, score, parent=proposal.parent))  # type: ignore[arg-type]


def test_random_until_the_population_is_full_then_children_of_members() -> None:
    p = EvolutionProposer(tiny, seed=0, population_size=4, sample_size=2)
    for n in range(4):
        proposal = p.ask()
        assert proposal.parent is None
        _tell(p, n, proposal, None, "failed")  # failures never join the population
    for n in range(4, 8):
        proposal = p.ask()
        assert proposal.parent is None  # still random: 0 completed so far, then 1, 2, 3
        _tell(p, n, proposal, float(n))
    for n in range(8, 20):
        proposal = p.ask()
        members = {m.number: m for m in p.population.members}
        assert proposal.parent in members  # one of the last four completed
        parent_arch = members[proposal.parent].arch
        assert sum(parent_arch[k] != proposal.arch[k] for k in parent_arch) >= 1
        _tell(p, n, proposal, float(n))


def test_dedup_never_proposes_a_seen_architecture() -> None:
    p = EvolutionProposer(tiny, seed=0, population_size=5, sample_size=2)
    keys = []
    for n in range(55):  # of 60 architectures
        proposal = p.ask()
        keys.append(proposal.arch.key)
        _tell(p, n, proposal, float(len(keys) % 7))
    assert len(set(keys)) == 55


def test_dedup_includes_architectures_in_flight() -> None:
    p = EvolutionProposer(tiny, seed=3, population_size=3, sample_size=3)
    for n in range(3):
        _tell(p, n, p.ask(), float(n))
    flight = [p.ask() for _ in range(20)]  # 20 in flight, all children of the same best member
    assert len({f.arch.key for f in flight}) == 20
    state = p.state_dict()
    assert len(state["seen"]) == 3  # in flight is not saved state
    for n, f in enumerate(flight, start=3):
        _tell(p, n, f, 0.0)
    assert len(p.state_dict()["seen"]) == 23


def test_without_dedup_repeats_happen() -> None:
    p = EvolutionProposer(tiny, seed=0, population_size=3, sample_size=3, dedup=False)
    keys = []
    for n in range(60):
        proposal = p.ask()
        keys.append(proposal.arch.key)
        _tell(p, n, proposal, 1.0 if proposal.arch["op"] == "conv" else 0.0)
    assert len(set(keys)) < 60


def test_state_holds_the_population_in_order() -> None:
    p = EvolutionProposer(tiny, seed=0, population_size=3)
    for n in range(5):
        _tell(p, n, p.ask(), float(10 - n))
    state = p.state_dict()
    assert [m[0] for m in state["population"]] == [2, 3, 4]
    assert [m[2] for m in state["population"]] == [8.0, 7.0, 6.0]


# -- range decisions ------------------------------------------------------------------------------
def test_perturbing_a_log_decision_stays_in_bounds_changes_the_value_and_works_in_log_space() -> None:
    lr = mixed.decision("lr")  # log-uniform on [1e-4, 1e-1]: three decades
    rng = np.random.default_rng(0)
    for start in (1e-4, 3e-3, 1e-1):  # both bounds, where clipping would give the same value
        children = [perturb(lr, start, rng) for _ in range(500)]
        assert all(1e-4 <= c <= 1e-1 and c != start for c in children)
    # From the geometric middle, steps are symmetric in log space: as many children halve it as
    # double it (a linear-scale step would mostly go up, the range being 1e-1 - 3e-3 above).
    middle = math.sqrt(1e-4 * 1e-1)
    children = np.array([perturb(lr, middle, rng) for _ in range(2000)])
    assert abs(np.mean(children > middle) - 0.5) < 0.05
    # sigma = 0.1 of the range = 0.3 decades: ~95% of children within 0.6 decades.
    assert np.mean(np.abs(np.log10(children / middle)) < 0.6) > 0.9


def test_perturbing_a_small_log_integer_always_moves() -> None:
    batch = mixed.decision("batch")  # 2..5
    rng = np.random.default_rng(1)
    for start in (2, 3, 5):
        children = {perturb(batch, start, rng) for _ in range(200)}
        assert start not in children and children <= {2, 3, 4, 5}


def test_mutating_a_mixed_architecture() -> None:
    rng = np.random.default_rng(2)
    arch = mixed.sample(3)
    changed = Counter()
    for _ in range(400):
        child = mutate_once(mixed, arch, rng)
        mixed.validate(child)
        assert child != arch
        diff = [k for k in arch if child.get(k) != arch[k]]
        changed.update(diff[:1])
    assert {"lr", "dropout", "batch", "op", "optimizer"} <= set(changed)  # ranges are mutated too
