"""Small checkers for what callers hand the store; each names the value it received."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from store._records import TrialStatus

__all__ = ["ORDERS", "json_value", "json_object", "objectives", "optional_float", "order", "status", "statuses"]

ORDERS = ("number", "-number", "result_seq", "-result_seq")


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
