"""Small checkers for user input that is not part of a :class:`store.SearchConfig`; each raises
:class:`UsageError` naming what it received."""

from __future__ import annotations

import re
from typing import Any

from automl._errors import UsageError

__all__ = ["check_name", "check_positive_int", "check_seed"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


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


def check_name(value: Any) -> str:
    """A search name: 1-128 ASCII letters, digits, ``_``, ``-`` or ``.``, starting with a letter or digit."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        shown = value if not isinstance(value, str) or len(value) <= 60 else value[:57] + "..."
        raise UsageError(
            "search name must be 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit; "
            f"got {shown!r}"
        )
    return value
