"""Small checkers for what callers hand the store; each names the value it received."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from store._records import TrialStatus

__all__ = [
    "NAME_LENGTH",
    "ORDERS",
    "arch",
    "json_object",
    "json_value",
    "objectives",
    "optional_float",
    "optional_short_text",
    "order",
    "search_name",
    "short_text",
    "status",
    "statuses",
]

ORDERS = ("number", "-number", "result_seq", "-result_seq")
# The length of the String(255) columns: searches.name / strategy / driver, trials.arch_key /
# proposer / worker, and decision_counts.name, where every decision name of a completed trial
# lands. PostgreSQL refuses a longer value (and only when the row is written: for a decision
# name, when the trial completes); SQLite stores it. So the store refuses it first, on every
# backend alike, before anything is written.
NAME_LENGTH = 255


def short_text(value: Any, where: str, *, limit: int = NAME_LENGTH) -> str:
    """``str(value)``, or ``ValueError`` naming ``where`` when it is longer than ``limit`` characters."""
    text = str(value)
    if len(text) > limit:
        shown = repr(text) if len(text) <= 60 else repr(text[:50]) + "..."
        raise ValueError(f"{where} must be at most {limit} characters long, but got {len(text)}: {shown}")
    return text


def optional_short_text(value: Any, where: str, *, limit: int = NAME_LENGTH) -> str | None:
    """None, or :func:`short_text`."""
    return None if value is None else short_text(value, where, limit=limit)


def search_name(value: Any) -> str:
    """A non-empty search name that fits its column."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a search name must be a non-empty string, but got {value!r}")
    return short_text(value, "a search name")


def arch(value: Mapping[str, Any] | None, where: str = "arch") -> dict[str, Any]:
    """Like :func:`json_object`, and every decision name (a top-level key) fits its column."""
    out = json_object(value, where)
    for name in out:
        short_text(name, f"a decision name in {where}")
    return out


def json_value(value: Any, where: str) -> Any:
    """A plain JSON copy of ``value`` (dicts, lists, str, int, float, bool, None).

    Numpy and torch scalars and arrays become Python numbers and lists. NaN and infinities become
    None: JSON cannot hold them and PostgreSQL refuses them (a diverged loss stays visible as null).
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has key {key!r} of type {type(key).__name__}; JSON keys must be str")
            out[key] = json_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return json_value(value.tolist(), where)
    if hasattr(value, "item"):
        return json_value(value.item(), where)
    raise TypeError(f"{where} must be JSON-able (dict, list, str, number, bool, None), but got {value!r}")


def json_object(value: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Like :func:`json_value` for a mapping; None gives ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a mapping, but got {value!r}")
    return json_value(value, where)


def optional_float(value: Any, where: str) -> float | None:
    """None, or a float; NaN becomes None (SQLite cannot store NaN, it would read back as NULL)."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where} must be a number or None, but got {value!r}") from None
    return None if math.isnan(out) else out


def objectives(value: Sequence[str]) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"objectives must be a sequence of metric names like ['accuracy', '-loss'], but got {value!r}")
    names = list(value)
    if not names or not all(isinstance(n, str) and n.lstrip("-") for n in names):
        raise ValueError(f"objectives must be non-empty metric names like ['accuracy', '-params'], but got {value!r}")
    return names


def status(value: TrialStatus | str) -> TrialStatus:
    try:
        return TrialStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in TrialStatus)
        raise ValueError(f"unknown trial status {value!r}; expected one of: {valid}") from None


def statuses(values: Iterable[TrialStatus | str]) -> list[str]:
    if isinstance(values, (str, TrialStatus)):
        values = [values]
    return [status(v).value for v in values]


def order(value: str) -> str:
    if value not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(map(repr, ORDERS))}, but got {value!r}")
    return value
