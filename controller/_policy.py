"""Policies over a space's decisions, for the policy-gradient proposers (``rl``, ``reinforce``).

A policy gives, step by step, the logits of the decision the space asks next; it never sees the
space itself, only decision positions (into ``space.decisions``) and chosen actions::

    state = policy.begin()
    logits, state = policy.logits(state, i)     # (n_i,) logits of decision i, given the past
    state = policy.advance(state, i, choice)    # feed the choice made for decision i

Two policies:

* :class:`LSTMPolicy` (Zoph & Le, ICLR 2017; ENAS, Pham et al. 2018): an autoregressive LSTM.
  Its input at each step is the embedding of the previous decision's chosen option (a learned
  start vector first); one linear head per decision, sized by its options. Logits are shaped as
  in ENAS, ``C * tanh(logits / T)``, which bounds them and keeps exploration alive.
* :class:`IndependentPolicy` (the NAS-Bench-201 paper's REINFORCE): one free vector of logits per
  decision, independent of the other choices.

:func:`log_prob` re-scores a sequence of choices (teacher forcing), differentiably.

Actions (:class:`Actions`). For an option decision the actions are its options. A range decision
(a float, a log-scale integer) is cut into ``bins`` bins of equal width on its own scale (log for
``log=True``; an integer range into as many non-empty bins of whole integers as fit): the policy
picks a bin, the value is drawn uniformly (log-uniformly) inside it. That density inside the bin
does not depend on the policy's parameters, so it cancels from REINFORCE's gradient and PPO's
ratio: log-probabilities are those of the bins. A discrete head was chosen over a Gaussian one so
that one LSTM, one embedding per action and one entropy bonus serve every decision alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces import Decision

__all__ = ["Actions", "IndependentPolicy", "LSTMPolicy", "Policy", "log_prob"]

State = Any
BINS = 10  # default number of bins of a range decision


@dataclass(frozen=True)
class Actions:
    """The policy's actions ``0 .. size - 1`` for one decision, and how they map to its values.

    ``edges``: for a range decision, ``size + 1`` increasing bin edges in value space (bin ``b``
    is ``[edges[b], edges[b + 1])``, the last bin includes ``high``; for an integer, the last edge
    is ``high + 1``); empty for an option decision, whose actions are its option indices.
    """

    decision: Decision
    edges: tuple[float, ...] = ()

    @classmethod
    def of(cls, decision: Decision, bins: int = BINS) -> Actions:
        return cls(decision, decision.bin_edges(bins) if decision.ranged else ())

    @property
    def size(self) -> int:
        return len(self.edges) - 1 if self.edges else len(self.decision.options)

    def encode(self, value: Any) -> int:
        """The action that gives ``value`` (its option index, or its bin)."""
        if not self.edges:
            return self.decision.index(value)
        return Decision.bin_of(value, self.edges)

    def decode(self, action: int, rng: np.random.Generator) -> Any:
        """A value of ``action``: its option (``rng`` unused), or a uniform draw inside its bin."""
        if not self.edges:
            return self.decision.json_value(action)
        lo, hi = self.edges[action], self.edges[action + 1]
        d = self.decision
        if d.kind == "integer":
            return int(rng.integers(int(lo), int(hi)))  # hi excluded: the next bin's first integer
        a, b = d.to_unit(lo), d.to_unit(hi)
        return d.from_unit(a + float(rng.random()) * (b - a))

    def fits(self, decision: Decision) -> bool:
        """True if these actions serve ``decision`` (the same one, or as many options)."""
        mine = self.decision
        if mine.ranged or decision.ranged:
            return mine == decision
        return len(mine.options) == len(decision.options)


class Policy(nn.Module):
    """Base class: a distribution over the decisions of a space, asked in define-by-run order."""

    def __init__(self, decisions: Sequence[Decision], *, bins: int = BINS) -> None:
        super().__init__()
        self.actions = tuple(Actions.of(d, bins) for d in decisions)
        self.names = tuple(d.name for d in decisions)
        self.sizes = tuple(a.size for a in self.actions)  # actions per decision
        self.position = {name: i for i, name in enumerate(self.names)}

    def begin(self) -> State:
        """The state before the first decision."""
        return None

    def logits(self, state: State, i: int) -> tuple[torch.Tensor, State]:
        """Logits of decision ``i`` (shape (n_i,)) and the state after reading them."""
        raise NotImplementedError

    def advance(self, state: State, i: int, choice: int) -> State:
        """The state after option ``choice`` was taken for decision ``i``."""
        return state


class IndependentPolicy(Policy):
    """One categorical distribution per decision, its logits the parameters (init ``init_std * N(0, 1)``).

    ``temperature`` / ``tanh_constant`` (None: off) shape logits as in :class:`LSTMPolicy`.
    """

    def __init__(
        self,
        decisions: Sequence[Decision],
        *,
        init_std: float = 1e-3,
        temperature: float | None = None,
        tanh_constant: float | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        bins: int = BINS,
    ) -> None:
        super().__init__(decisions, bins=bins)
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.theta = nn.ParameterList(
            nn.Parameter(init_std * torch.randn(n, generator=generator, dtype=dtype)) for n in self.sizes
        )

    def logits(self, state: State, i: int) -> tuple[torch.Tensor, State]:
        return _shape(self.theta[i], self.temperature, self.tanh_constant), state


class LSTMPolicy(Policy):
    """The autoregressive controller: an LSTM cell run once per decision, in the order asked.

    Parameters: ``start`` (H,), the first input; ``embed[i]`` (n_i, H), input after decision i;
    ``cell``, an ``LSTMCell(H, H)``; ``head[i]`` (H -> n_i). Every parameter is initialised
    uniformly in [-init_range, init_range] (ENAS: 0.1).
    """

    def __init__(
        self,
        decisions: Sequence[Decision],
        *,
        hidden: int = 32,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        init_range: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        bins: int = BINS,
    ) -> None:
        super().__init__(decisions, bins=bins)
        self.hidden = hidden
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.start = nn.Parameter(torch.empty(hidden, dtype=dtype))
        self.embed = nn.ModuleList(nn.Embedding(n, hidden, dtype=dtype) for n in self.sizes)
        self.cell = nn.LSTMCell(hidden, hidden, dtype=dtype)
        self.head = nn.ModuleList(nn.Linear(hidden, n, dtype=dtype) for n in self.sizes)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)

    def begin(self) -> State:
        zeros = self.start.new_zeros(1, self.hidden)
        return (self.start.unsqueeze(0), zeros, zeros)  # input x (1, H), h (1, H), c (1, H)

    def logits(self, state: State, i: int) -> tuple[torch.Tensor, State]:
        x, h, c = state
        h, c = self.cell(x, (h, c))  # (1, H) each
        return _shape(self.head[i](h)[0], self.temperature, self.tanh_constant), (x, h, c)

    def advance(self, state: State, i: int, choice: int) -> State:
        _, h, c = state
        return (self.embed[i].weight[choice].unsqueeze(0), h, c)


def _shape(logits: torch.Tensor, temperature: float | None, tanh_constant: float | None) -> torch.Tensor:
    # ENAS: logits / T, then C * tanh(.) bounds them to [-C, C].
    if temperature is not None:
        logits = logits / temperature
    if tanh_constant is not None:
        logits = tanh_constant * torch.tanh(logits)
    return logits


def log_prob(policy: Policy, steps: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log pi(choices), entropy)`` of a sequence ``[(decision position, option index), ...]``.

    Both are scalars summed over the steps; the entropy is that of each step's distribution given
    the choices before it (ENAS's entropy bonus). Differentiable with respect to the policy.
    """
    state = policy.begin()
    logp = torch.zeros((), dtype=_dtype(policy))
    entropy = torch.zeros((), dtype=_dtype(policy))
    for i, choice in steps:
        logits, state = policy.logits(state, i)
        log_p = torch.log_softmax(logits, dim=-1)  # (n_i,)
        logp = logp + log_p[choice]
        entropy = entropy - (log_p.exp() * log_p).sum()
        state = policy.advance(state, i, choice)
    return logp, entropy


def _dtype(policy: Policy) -> torch.dtype:
    return next(policy.parameters()).dtype
