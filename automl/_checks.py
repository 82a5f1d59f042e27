"""Small checkers for user input: each raises :class:`UsageError` naming what it received."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["UsageError", "check_name", "check_objectives", "check_positive_int", "check_seed"]


class UsageError(ValueError):
    """Bad input from the user; the CLI prints it as one line and exits with 2."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{label} must be a positive integer, got {value!r}")
    return value


def check_seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"seed must be a non-negative integer, got {value!r}")
    return value


def check_budget(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"budget must be a positive number of (simulated) seconds, got {value!r}")
    return float(value)


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise UsageError(
            "search name must be 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit; "
            f"got {value!r}"
        )
    return value


def check_objectives(value: Any) -> tuple[str, ...]:
    """``"accuracy"``, ``"-loss"`` (minimize) or a list of them (several objectives)."""
    items: Sequence[Any] = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not items:
        raise UsageError(f"objective must be a metric name or a list of them, got {value!r}")
    out = []
    for item in items:
        if not isinstance(item, str) or not re.match(r"^-?[A-Za-z_][A-Za-z0-9_.]*$", item):
            raise UsageError(f"objective {item!r} is not a metric name (prefix '-' to minimize)")
        out.append(item)
    return tuple(out)
