"""Policy-gradient proposers: the REINFORCE gradient against independent computations, and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from controller import Result
from controller._policy import Actions, IndependentPolicy, LSTMPolicy, log_prob
from controller._rl import ReinforceProposer, RLProposer, surrogate_loss
from search_spaces import Decision, space
from tests.controller._spaces import cond, mixed

DECISIONS = [
    Decision("a", "choice", ("x", "y", "z")),
    Decision("b", "choice", (1, 2, 3, 4)),
    Decision("c", "choice", (True, False)),
]
STEPS = [(0, 1), (1, 3), (2, 0)]  # a = "y", b = 4, c = True


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


# -- the independent-categorical policy: hand-derived gradients ------------------------------------
def _independent() -> IndependentPolicy:
    policy = IndependentPolicy(DECISIONS, init_std=1.0, generator=torch.Generator().manual_seed(0))
    return policy


def test_reinforce_gradient_is_advantage_times_onehot_minus_softmax() -> None:
    policy = _independent()
    advantage = 2.5
    # On-policy (logp_old None, or equal to the current log pi): the loss -A * log pi(arch) has
    # d/d theta_j = -A * (onehot(a_j) - softmax(theta_j)).
    for logp_old in (None, float(log_prob(policy, STEPS)[0].detach())):
        policy.zero_grad()
        surrogate_loss(policy, [(STEPS, advantage, logp_old)], entropy_weight=0.0).backward()
        for (_, choice), theta in zip(STEPS, policy.theta, strict=True):
            t = theta.detach().numpy()
            expected = -advantage * (np.eye(len(t))[choice] - _softmax(t))
            np.testing.assert_allclose(theta.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_stale_child_is_importance_weighted_then_clipped() -> None:
    policy = _independent()
    logp = float(log_prob(policy, STEPS)[0].detach())
    advantage = 1.5
    # ratio = pi_now / pi_old = 1.1, inside [0.8, 1.2]: gradient of -ratio * A * log pi = 1.1 x on-policy.
    policy.zero_grad()
    surrogate_loss(policy, [(STEPS, advantage, logp - math.log(1.1))], clip=0.2).backward()
    for (_, choice), theta in zip(STEPS, policy.theta, strict=True):
        t = theta.detach().numpy()
        np.testing.assert_allclose(theta.grad.numpy(), -1.1 * advantage * (np.eye(len(t))[choice] - _softmax(t)))
    # ratio = 1.5 > 1.2 with A > 0: the clipped term wins, no gradient (the child pushed enough).
    policy.zero_grad()
    surrogate_loss(policy, [(STEPS, advantage, logp - math.log(1.5))], clip=0.2).backward()
    assert all(float(theta.grad.abs().max()) == 0.0 for theta in policy.theta)
    # ratio = 1.5 with A < 0: min() keeps the unclipped term, gradient 1.5 x on-policy.
    policy.zero_grad()
    surrogate_loss(policy, [(STEPS, -advantage, logp - math.log(1.5))], clip=0.2).backward()
    t = policy.theta[0].detach().numpy()
    np.testing.assert_allclose(policy.theta[0].grad.numpy(), 1.5 * advantage * (np.eye(3)[1] - _softmax(t)))


def test_entropy_bonus_gradient() -> None:
    policy = _independent()
    beta = 0.3
    policy.zero_grad()
    surrogate_loss(policy, [(STEPS, 0.0, None)], entropy_weight=beta).backward()
    # H = -sum p log p; dH/dtheta_k = -p_k (log p_k + H); the loss is -beta * H.
    for theta in policy.theta:
        p = _softmax(theta.detach().numpy())
        h = -(p * np.log(p)).sum()
        np.testing.assert_allclose(theta.grad.numpy(), beta * p * (np.log(p) + h), rtol=1e-10, atol=1e-12)


def test_batch_loss_is_the_mean() -> None:
    policy = _independent()
    samples = [(STEPS, 1.0, None), ([(0, 2), (1, 0), (2, 1)], -2.0, None)]
    policy.zero_grad()
    surrogate_loss(policy, samples).backward()
    t = policy.theta[0].detach().numpy()
    expected = -(1.0 * (np.eye(3)[1] - _softmax(t)) - 2.0 * (np.eye(3)[2] - _softmax(t))) / 2
    np.testing.assert_allclose(policy.theta[0].grad.numpy(), expected, rtol=1e-12, atol=1e-12)


# -- the LSTM policy: a NumPy re-implementation and finite differences ----------------------------
def _numpy_logp(params: dict[str, np.ndarray], steps, temperature: float, tanh_c: float, hidden: int) -> float:  # type: ignore[no-untyped-def]
    """log pi(steps) for the LSTM controller, written from the LSTM equations (gate order i, f, g, o)."""

    def sigmoid(z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-z))

    x, h, c = params["start"], np.zeros(hidden), np.zeros(hidden)
    total = 0.0
    for i, choice in steps:
        z = (
            params["cell.weight_ih"] @ x
            + params["cell.bias_ih"]
            + params["cell.weight_hh"] @ h
            + params["cell.bias_hh"]
        )
        gi, gf, gg, go = np.split(z, 4)
        c = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gg)
        h = sigmoid(go) * np.tanh(c)
        logits = params[f"head.{i}.weight"] @ h + params[f"head.{i}.bias"]
        logits = tanh_c * np.tanh(logits / temperature)
        total += logits[choice] - np.log(np.exp(logits).sum())
        x = params[f"embed.{i}.weight"][choice]
    return total


def test_lstm_gradient_matches_finite_differences_of_an_independent_implementation() -> None:
    hidden, temperature, tanh_c = 4, 1.5, 2.5
    policy = LSTMPolicy(
        DECISIONS,
        hidden=hidden,
        temperature=temperature,
        tanh_constant=tanh_c,
        init_range=0.8,
        generator=torch.Generator().manual_seed(3),
    )
    params = {k: v.detach().numpy().copy() for k, v in policy.state_dict().items()}
    np.testing.assert_allclose(
        _numpy_logp(params, STEPS, temperature, tanh_c, hidden), float(log_prob(policy, STEPS)[0].detach()), rtol=1e-12
    )
    advantage = 0.7
    policy.zero_grad()
    surrogate_loss(policy, [(STEPS, advantage, None)]).backward()
    grads = {k: p.grad for k, p in policy.named_parameters()}
    eps = 1e-6
    checked = 0
    for name, value in params.items():
        grad = grads[name].numpy() if grads[name] is not None else np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus, minus = {**params, name: value.copy()}, {**params, name: value.copy()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            # d(loss)/d(param) = -A * d log pi / d param
            fd = (
                -advantage
                * (
                    _numpy_logp(plus, STEPS, temperature, tanh_c, hidden)
                    - _numpy_logp(minus, STEPS, temperature, tanh_c, hidden)
                )
                / (2 * eps)
            )
            assert abs(grad[idx] - fd) < 1e-7, (name, idx, grad[idx], fd)
            checked += 1
    assert checked == sum(p.numel() for p in policy.parameters())


# -- learning -------------------------------------------------------------------------------------
@space
def bandit(a):  # type: ignore[no-untyped-def]
    """Option 2 of "first" is worth 1, everything else 0 (plus a little for "second")."""
    a.choice("first", [0, 1, 2, 3])
    a.choice("second", ["p", "q", "r"])
    a.choice("third", [0, 1, 2, 3, 4])


def _first_prob(p: RLProposer, option: int) -> float:
    with torch.no_grad():
        logits, _ = p.policy.logits(p.policy.begin(), p.policy.position["first"])
        return float(torch.softmax(logits, -1)[option])


@pytest.mark.parametrize("strategy", [RLProposer, ReinforceProposer])
def test_the_best_option_becomes_likely(strategy: type[RLProposer]) -> None:
    p = strategy(bandit, seed=0)
    before = _first_prob(p, 2)
    assert abs(before - 0.25) < 0.05
    for n in range(80):
        proposal = p.ask()
        score = float(proposal.arch["first"] == 2) + 0.1 * (proposal.arch["second"] == "q")
        p.tell(Result(n, proposal.arch, "completed", score, info=proposal.info))
    after = _first_prob(p, 2)
    assert after > 0.6, (before, after)


def test_learning_with_results_in_flight_and_batches() -> None:
    p = RLProposer(bandit, seed=1, batch_size=4, lr=0.05)
    n = 0
    for _ in range(30):
        flight = [p.ask() for _ in range(4)]  # sampled under one policy version
        assert len({f.info["version"] for f in flight}) == 1
        for proposal in reversed(flight):
            score = float(proposal.arch["first"] == 2)
            p.tell(Result(n, proposal.arch, "completed", score, info=proposal.info))
            n += 1
    assert p.step == 30
    assert _first_prob(p, 2) > 0.5


def test_stale_results_use_the_logp_they_were_sampled_with() -> None:
    p = RLProposer(bandit, seed=2, batch_size=1)
    first, second = p.ask(), p.ask()  # both under version 0
    p.tell(Result(0, first.arch, "completed", 1.0, info=first.info))
    p.tell(Result(1, first.arch, "completed", 0.0, info=first.info))  # an update: version 1 -> 2
    assert p.step == 2 and second.info["version"] == 0
    # The logp of ``second`` under version 0 differs from its logp now: the ratio is not 1.
    assert abs(math.log(p.probability(second.arch)) - second.info["logp"]) > 1e-6
    p.tell(Result(2, second.arch, "completed", 0.5, info=second.info))
    assert p.step == 3


def test_baseline_reward_function_and_failures() -> None:
    p = RLProposer(bandit, seed=0, baseline_momentum=0.5)
    arch = p.ask().arch
    p.tell(Result(0, arch, "completed", 4.0))
    assert p.baseline == pytest.approx(4.0)  # bias-corrected: the first reward itself
    p.tell(Result(1, arch, "completed", 1.0))
    assert p.baseline == pytest.approx((0.5 * 0.5 * 4.0 + 0.5 * 1.0) / (0.5 * 0.5 + 0.5))
    assert p.state_dict()["pending"] == [] and p.step == 2
    p.tell(Result(2, arch, "failed", None))  # no failure_reward: nothing learned
    assert p.step == 2
    q = RLProposer(bandit, seed=0, failure_reward=0.0, reward=None)
    q.tell(Result(0, arch, "infeasible", None))
    assert q.step == 1 and q.baseline == 0.0
    r = RLProposer(bandit, seed=0, reward=lambda res: None if res.score is None else -res.score, batch_size=2)
    r.tell(Result(0, arch, "completed", 3.0))
    assert r.baseline == -3.0 and len(r.state_dict()["pending"]) == 1 and r.step == 0


def test_conditional_space_log_prob_covers_only_the_asked_decisions() -> None:
    p = RLProposer(cond, seed=0)
    for _ in range(20):
        proposal = p.ask()
        # The logp stored at sampling equals the teacher-forced one of the current policy.
        assert math.log(p.probability(proposal.arch)) == pytest.approx(proposal.info["logp"], abs=1e-12)


# -- range decisions: bins ---------------------------------------------------------------------------
def test_bins_of_a_log_float_are_equal_in_log_space() -> None:
    lr = mixed.decision("lr")  # [1e-4, 1e-1], log
    actions = Actions.of(lr, bins=3)
    assert actions.size == 3
    np.testing.assert_allclose(actions.edges, [1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-12)  # one decade each
    rng = np.random.default_rng(0)
    for b in range(3):
        values = [actions.decode(b, rng) for _ in range(300)]
        assert all(actions.edges[b] <= v <= actions.edges[b + 1] and actions.encode(v) == b for v in values)
    assert actions.encode(1e-4) == 0 and actions.encode(1e-1) == 2  # both bounds belong to a bin


def test_bins_of_a_log_integer_are_whole_and_cover_the_range() -> None:
    warmup = mixed.decision("warmup")  # 1..1000, log
    actions = Actions.of(warmup, bins=10)
    # Bin b starts at 1001 ** (b / 10) floored (an integer v owns [v, v + 1) on the log scale):
    # 1, 1.99, 3.98, 7.94, 15.8, ...; bins 0 and 1 both start at 1, so they are one. Last edge: 1001.
    assert actions.edges == (1, 3, 7, 15, 31, 63, 125, 251, 501, 1001)
    assert list(actions.edges) == sorted(set(actions.edges)) and actions.edges[-1] == 1001
    assert [actions.encode(v) for v in range(1, 1001)] == sorted(actions.encode(v) for v in range(1, 1001))
    assert {actions.encode(v) for v in range(1, 1001)} == set(range(actions.size))  # no empty bin
    rng = np.random.default_rng(1)
    for b in range(actions.size):
        assert all(actions.encode(actions.decode(b, rng)) == b for _ in range(50))
    small = Actions.of(mixed.decision("batch"), bins=10)  # 2..5: fewer integers than bins
    assert small.size == 4 and small.edges == (2, 3, 4, 5, 6)


@pytest.mark.parametrize("strategy", [RLProposer, ReinforceProposer])
def test_range_decisions_log_prob_and_learning(strategy: type[RLProposer]) -> None:
    p = strategy(mixed, seed=0, bins=5)
    assert p.policy.sizes[p.policy.position["lr"]] == 5
    for n in range(120):
        proposal = p.ask()
        # The logp stored at sampling is the teacher-forced one of the policy that sampled it.
        if n < 5:
            assert math.log(p.probability(proposal.arch)) == pytest.approx(proposal.info["logp"], abs=1e-12)
        score = -abs(math.log10(proposal.arch["lr"]) + 3.5)  # best lr: 10 ** -3.5, in the lowest bin
        p.tell(Result(n, proposal.arch, "completed", score, info=proposal.info))
    lr_bin = torch.softmax(p.policy.logits(_state_at(p, "lr"), p.policy.position["lr"])[0], -1)
    assert int(lr_bin.argmax()) == 0, lr_bin  # [1e-4, 10 ** -3.4): the bin of the best lr


def _state_at(p: RLProposer, name: str) -> object:
    """The policy's state when ``name`` is asked, after the decisions before it took option 0."""
    state = p.policy.begin()
    for i in range(p.policy.position[name]):
        _, state = p.policy.logits(state, i)
        state = p.policy.advance(state, i, 0)
    return state


def test_bins_must_be_positive() -> None:
    with pytest.raises(ValueError, match="`bins` must be a positive int, but got 0"):
        RLProposer(mixed, bins=0)
