"""The error every layer raises for bad user input, and the one-line form errors are shown in."""

from __future__ import annotations

from pathlib import Path

__all__ = ["UsageError", "first_line", "install_hint"]


class UsageError(ValueError):
    """Bad input from the user; the CLI prints it as one line and exits with 2."""


def first_line(e: BaseException | str, limit: int | None = None) -> str:
    """The error's first non-blank line, whitespace collapsed (the type's name if it says nothing).

    A remote traceback (Ray) or a multi-line message becomes one readable line for a terminal
    or a table cell; ``limit`` cuts it to that many characters.
    """
    text = str(e)
    for line in text.splitlines():
        if line.strip():
            one = " ".join(line.split())
            return one[:limit] if limit else one
    return type(e).__name__ if isinstance(e, BaseException) else ""


def install_hint(extra: str) -> str:
    """How to install one of automl's extras (``dashboard``, ``export``, ``ray``).

    Never ``pip install 'automl[...]'``: that name on the public index is another project.
    automl installs from its checkout, so the hint names the checkout this module runs from.
    """
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        return f"pip install -e '{root}[{extra}]'"
    return f"reinstall automl from its checkout with the '{extra}' extra: pip install -e 'CHECKOUT[{extra}]'"
