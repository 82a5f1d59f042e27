"""Architectures: immutable, JSON-able mappings from decision name to value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Arch", "arch_key"]


def _canonical(value: Any) -> Any:
    # Tuples and lists are the same to JSON; keep one form so keys agree.
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


class Arch(dict):
    """An architecture: decision name -> value, immutable and hashable.

    It is a real ``dict`` (so ``json.dumps`` takes it as is) whose mutating methods
    raise. ``arch.key`` is a short canonical hash used for de-duplication.

    >>> a = Arch({"depth": 2, "op": "conv"})
    >>> a == {"op": "conv", "depth": 2}, len(a.key)
    (True, 16)
    """

    __slots__ = ("_key",)

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__((str(k), _canonical(v)) for k, v in dict(items).items())
        self._key = _key_of(self)

    @property
    def key(self) -> str:
        return self._key

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Arch, (dict(self),))

    def _immutable(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Arch is immutable; build a new one with Arch({**arch, name: value})")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _immutable  # type: ignore[assignment]
    __ior__ = _immutable  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Arch({dict.__repr__(self)})"


def _key_of(arch: Mapping[str, Any]) -> str:
    text = json.dumps({k: _canonical(v) for k, v in arch.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def arch_key(arch: Mapping[str, Any]) -> str:
    """The canonical key of any architecture mapping (equal mappings, equal keys)."""
    return arch.key if isinstance(arch, Arch) else _key_of(arch)
