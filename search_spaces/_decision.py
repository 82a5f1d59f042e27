"""Decisions: what a space can ask, and the values an architecture may give each one.

Two families:

* **Option decisions** (``choice``, ``inputs`` and a linear ``integer``): a finite, ordered tuple
  of ``options``. Discovery runs the space once per option, so conditional decisions (a choice
  that exists only on one branch) hang off these.
* **Range decisions** (``float``, and an ``integer`` with ``log=True``): every number in
  ``[low, high]``, on a linear or a log scale; ``options`` is empty. They never branch discovery,
  so whether a decision is asked must not depend on a range decision's value.

:meth:`Decision.to_unit` and :meth:`Decision.from_unit` map a range decision's values to and from
``[0, 1]`` in its own scale (log for ``log=True``); strategies sample, perturb and bin there.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Decision", "InvalidArchitecture", "Kind", "SpaceError"]

Kind = Literal["choice", "integer", "inputs", "float"]


class SpaceError(ValueError):
    """The space itself is wrong (bad options, a decision asked twice differently, ...)."""


class InvalidArchitecture(ValueError):
    """An architecture does not fit its space; the message names the decision."""


@dataclass(frozen=True)
class Decision:
    """One decision of a space.

    ``kind`` says how it was asked: ``choice`` (categorical), ``integer`` (a range, also what
    ``repeat`` asks), ``inputs`` (``k`` of ``candidates``, for a node's inputs in a cell DAG; each
    option is a tuple) or ``float``. ``low``, ``high`` and ``log`` are set for ``integer`` and
    ``float``; ``options`` is empty for a range decision (see :attr:`ranged`).
    """

    name: str
    kind: Kind
    options: tuple[Any, ...] = ()
    low: float | None = None  # integer and float: smallest value (included)
    high: float | None = None  # integer and float: largest value (included)
    log: bool = False  # sampled, mutated and binned on a log scale

    def __post_init__(self) -> None:
        if self.kind in ("integer", "float") and not self.options and (self.low is None or self.high is None):
            raise SpaceError(
                f"decision '{self.name}': a {self.kind} range needs low and high, "
                f"got low={self.low!r}, high={self.high!r}"
            )
        if self.kind == "integer" and self.options and self.low is None and self.high is None:  # derived, once
            object.__setattr__(self, "low", self.options[0])
            object.__setattr__(self, "high", self.options[-1])

    @property
    def ranged(self) -> bool:
        """True for a range decision (a float, or a log-scale integer): no options, no branching."""
        return self.kind == "float" or (self.kind == "integer" and self.log)

    @property
    def cardinality(self) -> float:
        """How many values it can take: ``len(options)``, the integers in range, or ``inf``."""
        if self.kind == "float":
            return math.inf
        if self.ranged:
            return int(self.high) - int(self.low) + 1  # type: ignore[arg-type]
        return len(self.options)

    # -- values ----------------------------------------------------------------------------------
    def index(self, value: Any) -> int:
        """The option's position; raises :class:`InvalidArchitecture` naming this decision."""
        if self.ranged:
            raise InvalidArchitecture(f"decision '{self.name}' is a {self.kind} range: its values have no index")
        probe = tuple(value) if self.kind == "inputs" and isinstance(value, (list, tuple)) else value
        for i, option in enumerate(self.options):
            if _same(option, probe):
                return i
            if self.kind == "integer" and isinstance(probe, float) and probe.is_integer() and option == probe:
                return i
        shown = [list(o) if isinstance(o, tuple) else o for o in self.options]
        if len(shown) > 12:
            shown = [*shown[:5], "...", *shown[-2:]]
        raise InvalidArchitecture(f"decision '{self.name}' got {value!r}; expected one of {shown}")

    def json_value(self, index: int) -> Any:
        """The JSON form of option ``index`` (an ``inputs`` tuple becomes a list)."""
        option = self.options[index]
        return list(option) if isinstance(option, tuple) else option

    def check(self, value: Any) -> Any:
        """``value`` in its canonical JSON form, or :class:`InvalidArchitecture` naming the decision.

        An option decision takes one of its options; a float any finite number in ``[low, high]``
        (an int is taken as a float); a log-scale integer an int (or integral float) in range.
        """
        if not self.ranged:
            return self.json_value(self.index(value))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArchitecture(f"decision '{self.name}' got {value!r}; expected a number")
        if self.kind == "integer" and not float(value).is_integer():
            raise InvalidArchitecture(f"decision '{self.name}' got {value!r}; expected an integer")
        if not (math.isfinite(value) and self.low <= value <= self.high):  # type: ignore[operator]
            raise InvalidArchitecture(
                f"decision '{self.name}' got {value!r}; expected a value in [{self.low}, {self.high}]"
            )
        return int(value) if self.kind == "integer" else float(value)

    def sample(self, rng: np.random.Generator) -> Any:
        """A value drawn uniformly: an option, or uniform / log-uniform over the range."""
        if self.ranged:
            return self.from_unit(float(rng.random()))
        return self.json_value(int(rng.integers(len(self.options))))

    def default(self) -> Any:
        """The value discovery uses: the first option, or the middle of the range in its scale."""
        return self.from_unit(0.5) if self.ranged else self.json_value(0)

    # -- the unit interval of a range decision ---------------------------------------------------
    def _span(self) -> tuple[float, float]:
        # The interval in the decision's own scale that [0, 1] maps onto. An integer v owns
        # [v, v + 1), so the top integer is as likely as the others.
        if not self.ranged:
            raise ValueError(f"decision '{self.name}' has options, not a range")
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.kind == "integer":
            high += 1.0
        return (math.log(low), math.log(high)) if self.log else (low, high)

    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` in ``[0, 1]`` of the range, in its own scale (clipped)."""
        a, b = self._span()
        x = a + min(max(u, 0.0), 1.0) * (b - a)
        x = math.exp(x) if self.log else x
        if self.kind == "integer":
            return min(max(math.floor(x), int(self.low)), int(self.high))  # type: ignore[arg-type]
        return min(max(x, float(self.low)), float(self.high))  # type: ignore[arg-type]

    def to_unit(self, value: float) -> float:
        """Position of ``value`` in ``[0, 1]``; an integer's is the middle of its cell ``[v, v+1)``.

        ``from_unit(to_unit(v)) == v`` for every value in range.
        """
        a, b = self._span()
        if self.kind == "integer":
            v = float(value)
            x = (math.log(v) + math.log(v + 1.0)) / 2 if self.log else v + 0.5
        else:
            x = math.log(value) if self.log else float(value)
        return min(max((x - a) / (b - a), 0.0), 1.0) if b > a else 0.5

    def bin_edges(self, bins: int = 10) -> tuple[float, ...]:
        """Edges of up to ``bins`` bins of equal width on a range decision's own scale.

        Bin ``b`` is ``[edges[b], edges[b + 1])``, the last one including ``high``. For an
        integer the edges are whole, the last is ``high + 1``, and bins that would hold no integer
        are merged away (so there may be fewer). The RL policy's actions and the decision
        statistics of a range decision use these bins; :meth:`bin_of` finds a value's bin.
        """
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"`bins` must be a positive int, but got {bins!r}.")
        starts = {self.from_unit(b / bins) for b in range(bins)}
        end = int(self.high) + 1 if self.kind == "integer" else float(self.high)  # type: ignore[arg-type]
        return (*sorted(starts), end)

    @staticmethod
    def bin_of(value: float, edges: tuple[float, ...]) -> int:
        """The bin of ``value`` among ``edges`` (from :meth:`bin_edges`), clipped to the first and last."""
        return min(max(bisect.bisect_right(edges, value) - 1, 0), len(edges) - 2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The decision of :meth:`to_dict` (e.g. as stored with a search's configuration)."""
        kind = data["kind"]
        options = tuple(tuple(o) if kind == "inputs" else o for o in data.get("options") or ())
        return cls(data["name"], kind, options, data.get("low"), data.get("high"), bool(data.get("log", False)))

    def to_dict(self) -> dict[str, Any]:
        """JSON form: name, kind, options (empty for a range); low, high, log for numbers."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "options": [self.json_value(i) for i in range(len(self.options))],
        }
        if self.kind in ("integer", "float"):
            out.update(low=self.low, high=self.high, log=self.log)
        return out


def _same(x: Any, y: Any) -> bool:
    # bool is an int in Python (True == 1): keep True from matching 1, also inside a tuple of inputs.
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(map(_same, x, y))
    return type(x) is type(y) and x == y
