"""Random search: every decision uniform, each path of the space sampled as it is asked."""

from __future__ import annotations

from controller._base import Proposal, Proposer

__all__ = ["RandomProposer"]


class RandomProposer(Proposer):
    """Uniform random search, the baseline every strategy must beat.

    Conditional decisions are sampled only on the branch that asks them, so a space with
    variable depth is sampled uniformly per decision, not per architecture.

    >>> import search_spaces
    >>> p = RandomProposer(search_spaces.get("nb201"), seed=0)
    >>> len(p.ask().arch)
    6
    """

    name = "random"

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng))
