"""The define-by-run search-space DSL.

A space is ordinary Python/PyTorch code that builds a model and, wherever the model has a
choice, asks the :class:`Chooser` ``a`` for a decision::

    @space(input_shape=(1, 8, 8), num_classes=10)
    def tiny(a, input_shape, num_classes):
        width = a.choice("width", [16, 32])
        layers = [nn.Conv2d(input_shape[0], width, 3, padding=1), nn.ReLU()]
        for i in a.repeat("depth", 1, 3):
            layers += [nn.Conv2d(width, width, a.choice(f"k{i}", [3, 5]), padding="same"), nn.ReLU()]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(num_classes))

The same code serves three purposes: *sampling* (a proposer picks each value as it is asked,
so conditional decisions exist only on the branch that asks them), *validation* (an
architecture is replayed; a missing, wrong or unused decision is refused by name) and
*building* (architecture -> the same ``nn.Module`` every time).

Numbers to tune with the architecture (learning rate, weight decay, dropout) are range
decisions: ``a.float("lr", 1e-4, 1e-1, log=True)``, ``a.integer("batch", 16, 512, log=True)``.
A range decision never branches discovery: conditional decisions hang off option decisions
(``choice``, ``inputs``, a linear ``integer``) only.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from search_spaces._arch import Arch
from search_spaces._decision import Decision, InvalidArchitecture, SpaceError

__all__ = [
    "Chooser",
    "Decision",
    "InvalidArchitecture",
    "Place",
    "Space",
    "SpaceError",
    "SpaceSize",
    "Trace",
    "current_chooser",
    "space",
]

_SCALARS = (str, int, float, bool, type(None))
_MAX_DISCOVERY_RUNS = 20_000
_VALIDATION_CACHE = 100_000


Choose = Callable[[Decision], Any]


class Place(NamedTuple):
    """Where a space function is while it runs (see :attr:`Chooser.place`)."""

    scope: str  # the current scope, e.g. "block0" or "cell1.node2"; "" outside any scope
    decisions: tuple[tuple[str, Any], ...]  # (full name, value) of the decisions asked under it so far


# The Chooser of the space function running in each thread (a stack: a space may run another).
_running = threading.local()


def current_chooser() -> Chooser | None:
    """The :class:`Chooser` of the space function running in this thread (innermost), or None.

    A hook for tools that observe a build from outside the space function: the shared-weights
    evaluator (``evaluators._shared``) reads :attr:`Chooser.place` whenever a module registers a
    parameter, to know where in the space that module was created. Read only.
    """
    stack = getattr(_running, "stack", None)
    return stack[-1] if stack else None


class Chooser:
    """What a space function receives as ``a``: asks decisions, records the answers."""

    def __init__(self, choose: Choose | None, arch: Mapping[str, Any] | None, *, tracing: bool) -> None:
        self._choose = choose
        self._arch = arch
        self._tracing = tracing
        self._prefix: list[str] = []
        self.values: dict[str, Any] = {}
        self.decisions: dict[str, Decision] = {}

    @property
    def tracing(self) -> bool:
        """True while only decisions are recorded (sampling, validation), False while building.

        A space whose model is costly to construct may ``return None`` once ``a.tracing`` is
        true and every decision has been asked: sampling then costs microseconds.
        """
        return self._tracing

    @property
    def place(self) -> Place:
        """The current scope and the decisions asked under it so far, in asking order.

        Under ``a.scope("block0")`` the decisions are those named ``block0.*`` (nested scopes
        included); outside any scope, every decision asked so far. Read only: a snapshot.
        """
        scope = ".".join(self._prefix)
        head = scope + "." if scope else ""
        return Place(scope, tuple((k, v) for k, v in self.values.items() if k.startswith(head)))

    @contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        """Prefix the names of the decisions asked inside the block with ``prefix.``."""
        _check_name(prefix)
        self._prefix.append(prefix)
        try:
            yield
        finally:
            self._prefix.pop()

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        """One of ``options`` (JSON scalars: str, int, float, bool or None)."""
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
            raise SpaceError(f"choice '{name}': options must be a list, got {options!r}")
        opts = tuple(options)
        if not opts:
            raise SpaceError(f"choice '{name}': options must not be empty")
        for o in opts:
            if not isinstance(o, _SCALARS):
                raise SpaceError(f"choice '{name}': option {o!r} is not a JSON scalar (str, int, float, bool, None)")
        if len({(type(o), o) for o in opts}) != len(opts):
            raise SpaceError(f"choice '{name}': options repeat, got {list(opts)}")
        return self._decide(Decision(self._full(name), "choice", opts))

    def integer(self, name: str, low: int, high: int, step: int = 1, *, log: bool = False) -> int:
        """An integer in ``[low, high]`` (both included) on a grid of ``step``.

        ``log=True`` (``step`` 1, ``low >= 1``): a range decision sampled log-uniformly, e.g. a
        batch size; it has no options and does not branch discovery.
        """
        for label, v in (("low", low), ("high", high), ("step", step)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise SpaceError(f"integer '{name}': {label} must be an int, got {v!r}")
        if not (low <= high and step > 0):
            raise SpaceError(f"integer '{name}': `low <= high` and `step > 0` must hold, got {low=}, {high=}, {step=}")
        if not log:
            return self._decide(Decision(self._full(name), "integer", tuple(range(low, high + 1, step)), low, high))
        if step != 1:
            raise SpaceError(f"`step == 1` must hold for decision '{self._full(name)}' with log=True, but got {step=}")
        if low <= 0:
            raise SpaceError(f"`low > 0` must hold for decision '{self._full(name)}' with log=True, but got {low=}")
        return self._decide(Decision(self._full(name), "integer", (), low, high, log=True))

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        """A float in ``[low, high]``, sampled uniformly, or log-uniformly with ``log=True``.

        A range decision: it has no options and does not branch discovery (see the module docs).
        """
        full = self._full(name)
        for label, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise SpaceError(f"float '{full}': {label} must be a finite number, got {v!r}")
        if not low < high:
            raise SpaceError(f"`low < high` must hold for decision '{full}', but got {low=}, {high=}")
        if log and low <= 0:
            raise SpaceError(f"`low > 0` must hold for decision '{full}' with log=True, but got {low=}")
        return self._decide(Decision(full, "float", (), float(low), float(high), log=bool(log)))

    def repeat(self, name: str, low: int, high: int) -> range:
        """A variable depth: ``for i in a.repeat("depth", 1, 4): ...``."""
        return range(self.integer(name, low, high))

    def inputs(self, name: str, candidates: Sequence[Any], k: int = 1) -> list[Any]:
        """``k`` distinct inputs of a node, chosen among ``candidates`` (kept in candidate order)."""
        cands = tuple(candidates)
        if not cands or any(not isinstance(c, _SCALARS) for c in cands) or len(set(cands)) != len(cands):
            raise SpaceError(f"inputs '{name}': candidates must be distinct JSON scalars, got {list(cands)}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(cands):
            raise SpaceError(f"inputs '{name}': k must be in [1, {len(cands)}], got {k!r}")
        return list(self._decide(Decision(self._full(name), "inputs", tuple(itertools.combinations(cands, k)))))

    def _full(self, name: str) -> str:
        _check_name(name)
        return ".".join([*self._prefix, name])

    def _decide(self, decision: Decision) -> Any:
        full = decision.name
        if full in self.decisions:
            if self.decisions[full] != decision:
                raise SpaceError(f"decision '{full}' is asked twice with different options")
            return self.values[full]
        if self._arch is not None:
            if full not in self._arch:
                if decision.ranged:
                    what = f"range: [{decision.low}, {decision.high}]"
                else:
                    what = f"options: {[decision.json_value(i) for i in range(min(len(decision.options), 8))]}"
                raise InvalidArchitecture(f"architecture has no value for decision '{full}' ({what})")
            value = decision.check(self._arch[full])
        else:
            assert self._choose is not None
            value = decision.check(self._choose(decision))
        if decision.kind == "inputs":
            value = tuple(value)  # the option itself: the space function gets a fresh list
        self.decisions[full] = decision
        self.values[full] = value
        return value

    def arch(self) -> Arch:
        return Arch(self.values)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or name.strip() != name:
        raise SpaceError(f"a decision name must be a non-empty string without surrounding spaces, got {name!r}")


@dataclass(frozen=True)
class Trace:
    """One run of a space: the architecture and its decisions in the order they were asked."""

    arch: Arch
    decisions: tuple[Decision, ...]


@dataclass(frozen=True)
class SpaceSize:
    """Number of architectures.

    ``exact`` is False where conditional decisions made it an estimate; ``continuous`` is True
    where a float decision makes it infinite (``count`` is then ``inf``, printed "continuous").
    """

    count: float
    exact: bool
    continuous: bool = False

    def __str__(self) -> str:
        if self.continuous:
            return "continuous"
        if self.exact:
            return f"{int(self.count):,}"
        return f"~{self.count:.3g}"


def _uniform(rng: np.random.Generator) -> Choose:
    return lambda d: d.sample(rng)


@dataclass
class _Memo:
    """What a :class:`Space` learns about itself by running (never part of its identity)."""

    cache: dict[str, Trace | InvalidArchitecture] = field(default_factory=dict)  # arch key -> validation
    discovered: tuple[Decision, ...] | None = None  # every decision, once discovery has run
    conditional: bool = False  # set by discovery


@dataclass(frozen=True, eq=False)
class Space:
    """A search space: a function ``fn(a, **context) -> nn.Module`` plus its default context.

    Immutable: :meth:`bind` returns another space. Two spaces are equal when they have the same
    function (or, for spaces loaded from a file, the same origin), name, context and description.

    Fields:
      * ``fn``: the space function ``fn(a, **context)``.
      * ``name``: defaults to the function's name.
      * ``context``: the keyword arguments the function takes besides ``a`` (typically
        ``input_shape`` and ``num_classes``), kept as a read-only mapping.
      * ``description``: defaults to the first line of the function's docstring.
      * ``origin`` (keyword only): ``"path/to/file.py:function"`` when the space was loaded from
        a user's file (:func:`search_spaces.load` sets it); pickling then sends this text and a
        worker process loads the file again. ``None`` for spaces found by module and name.
    """

    fn: Callable[..., Any]
    name: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    origin: str | None = field(default=None, kw_only=True)
    _memo: _Memo = field(init=False, repr=False, compare=False)  # set in __post_init__ only
    _params: frozenset[str] | None = field(init=False, repr=False, compare=False)  # what fn takes

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise SpaceError(f"a space needs a callable, got {self.fn!r}")
        if self.origin is not None and not isinstance(self.origin, str):
            raise SpaceError(f"a space's origin must be 'path/to/file.py:function' or None, got {self.origin!r}")
        # Derived defaults and private memos: set here once, never after construction.
        init = object.__setattr__
        init(self, "name", self.name or getattr(self.fn, "__name__", "space"))
        init(self, "description", self.description or (inspect.getdoc(self.fn) or "").split("\n")[0])
        init(self, "context", MappingProxyType(dict(self.context)))
        init(self, "_memo", _Memo())
        init(self, "_params", _parameters(self.fn))  # once: inspect.signature would dominate a sample's cost

    def _identity(self) -> tuple[Any, ...]:
        # A space loaded from a file is that file's function wherever it is loaded again (a
        # worker, an unpickled copy): its origin names it. Other spaces are their function.
        return (self.origin or self.fn, self.name, self.description)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return self._identity() == other._identity() and dict(self.context) == dict(other.context)

    def __hash__(self) -> int:
        # Context values may be unhashable (lists): equal spaces still hash alike without them.
        return hash(self._identity())

    def __reduce__(self) -> tuple[Any, ...]:
        # `@space` rebinds the function's module-level name to this Space, so pickle cannot find
        # the function by its name: send where to find it instead (a worker process imports the
        # module, or loads the user's file again). Local functions go by value (cloudpickle).
        qualname = getattr(self.fn, "__qualname__", "<")
        where = self.origin or (self.fn if "<" in qualname else (self.fn.__module__, qualname))
        return (_restore, (where, self.name, dict(self.context), self.description))

    # -- running the function ------------------------------------------------------------
    def _run(self, a: Chooser, context: Mapping[str, Any]) -> Any:
        kwargs = {**self.context, **context}
        if self._params is not None:  # pass only the context the function takes
            kwargs = {k: v for k, v in kwargs.items() if k in self._params}
        stack = _running.__dict__.setdefault("stack", [])
        stack.append(a)  # for current_chooser()
        try:
            return self.fn(a, **kwargs)
        finally:
            stack.pop()

    def trace(self, choose: Choose) -> Trace:
        """Run the space, asking ``choose(decision)`` for each value as it is asked."""
        a = Chooser(choose, None, tracing=True)
        self._run(a, {})
        return Trace(a.arch(), tuple(a.decisions.values()))

    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """A uniformly random path through the space (range decisions uniform or log-uniform)."""
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.trace(_uniform(gen)).arch

    def validate(self, arch: Mapping[str, Any]) -> Trace:
        """Replay ``arch``; raises :class:`InvalidArchitecture` naming the first wrong decision."""
        if not isinstance(arch, Mapping):
            raise InvalidArchitecture(f"an architecture must be a mapping of decision name to value, got {arch!r}")
        try:
            key = Arch(arch).key
        except (TypeError, ValueError) as e:
            raise InvalidArchitecture(f"an architecture must be JSON-able, got {arch!r} ({e})") from e
        cache = self._memo.cache
        cached = cache.get(key)
        if cached is None:
            a = Chooser(None, arch, tracing=True)
            try:
                self._run(a, {})
                extra = sorted(set(arch) - set(a.decisions), key=str)
                if extra:
                    raise InvalidArchitecture(
                        f"decision '{extra[0]}' is not in space '{self.name}' (or not active on this branch)"
                    )
                cached = Trace(a.arch(), tuple(a.decisions.values()))
            except InvalidArchitecture as e:
                cached = e
            if len(cache) >= _VALIDATION_CACHE:
                cache.clear()
            cache[key] = cached
        if isinstance(cached, InvalidArchitecture):
            raise InvalidArchitecture(str(cached))
        return cached

    def build(self, arch: Mapping[str, Any], **context: Any) -> Any:
        """The ``nn.Module`` of ``arch`` (validated first); ``context`` overrides the defaults."""
        # Validate under the context the model is built with: it may change which decisions exist.
        (self.bind(**context) if context else self).validate(arch)
        a = Chooser(None, arch, tracing=False)
        return self._run(a, context)

    def bind(self, **context: Any) -> Space:
        """The same space (same origin) with other default context (e.g. another dataset's shape)."""
        return dataclasses.replace(self, context={**self.context, **context})

    # -- what can be known without training ---------------------------------------------
    @property
    def decisions(self) -> tuple[Decision, ...]:
        """Every decision the space can ask, in first-seen order (conditional ones included).

        Found by running the space once per option of each newly seen option decision (a range
        decision takes its middle value and never branches), so a decision that appears only
        under a combination of two unrelated choices may be missed.
        """
        memo = self._memo
        if memo.discovered is None:
            memo.discovered, memo.conditional = self._discover()
        return memo.discovered

    @property
    def conditional(self) -> bool:
        """True if some decision exists only on some branches."""
        self.decisions  # noqa: B018 - discovery sets the flag
        return self._memo.conditional

    def decision(self, name: str) -> Decision:
        for d in self.decisions:
            if d.name == name:
                return d
        raise InvalidArchitecture(f"decision '{name}' is not in space '{self.name}'")

    def _discover(self) -> tuple[tuple[Decision, ...], bool]:
        known: dict[str, Decision] = {}
        name_sets: set[frozenset[str]] = set()
        queue: list[dict[str, Any]] = [{}]
        runs = 0
        while queue and runs < _MAX_DISCOVERY_RUNS:
            forced = queue.pop()
            runs += 1
            trace = self.trace(lambda d, f=forced: f.get(d.name, d.default()))
            name_sets.add(frozenset(trace.arch))
            prefix: dict[str, Any] = {}
            for d in trace.decisions:
                if d.name not in known:
                    known[d.name] = d
                    for i in range(1, len(d.options)):  # a range decision has no options: no branch
                        queue.append({**prefix, d.name: d.json_value(i)})
                prefix[d.name] = trace.arch[d.name]
        return tuple(known.values()), len(name_sets) > 1

    def size(self, samples: int = 2000) -> SpaceSize:
        """Number of architectures: exact when nothing is conditional, else Knuth's estimate.

        Knuth's estimator: along a random path, the product of the branching factors is an
        unbiased estimate of the number of leaves (architectures) of the decision tree. A float
        decision makes the space continuous (``SpaceSize.continuous``, ``count`` infinite); a
        log-scale integer counts its integers.
        """
        if any(d.kind == "float" for d in self.decisions):
            return SpaceSize(math.inf, False, continuous=True)
        if not self.conditional:
            return SpaceSize(math.prod(int(d.cardinality) for d in self.decisions), True)  # an int: stays exact
        rng = np.random.default_rng(0)
        total = 0.0
        for _ in range(samples):
            total += math.prod(d.cardinality for d in self.trace(_uniform(rng)).decisions)
        return SpaceSize(total / samples, False)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: name, description, decisions."""
        return {
            "name": self.name,
            "description": self.description,
            "conditional": self.conditional,
            "decisions": [d.to_dict() for d in self.decisions],
        }


def _restore(where: Any, name: str, context: dict[str, Any], description: str) -> Space:
    """Unpickle a :class:`Space` (see ``Space.__reduce__``)."""
    fn = where
    if isinstance(where, str):  # a user's file, loaded again
        from search_spaces._registry import load  # here: _registry imports this module

        fn = load(where).fn
    elif isinstance(where, tuple):  # (module, qualname) of a module-level function or Space
        fn = importlib.import_module(where[0])
        for part in where[1].split("."):
            fn = getattr(fn, part)
        fn = fn.fn if isinstance(fn, Space) else fn
    origin = where if isinstance(where, str) else None
    return Space(fn, name=name, context=context, description=description, origin=origin)


def _parameters(fn: Callable[..., Any]) -> frozenset[str] | None:
    """The names ``fn`` takes; None where it takes any (``**kwargs``) or cannot be inspected."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)


def space(fn: Callable[..., Any] | None = None, *, name: str = "", description: str = "", **context: Any) -> Any:
    """Decorator: turn ``fn(a, **context)`` into a :class:`Space`.

    ``@space`` or ``@space(input_shape=(1, 8, 8), num_classes=10)``.
    """

    def wrap(f: Callable[..., Any]) -> Space:
        return Space(f, name=name, context=context, description=description)

    return wrap(fn) if fn is not None else wrap
