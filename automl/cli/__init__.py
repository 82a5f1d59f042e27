"""The ``automl`` command line.

Exit codes: 0 done, 2 bad input (one line on stderr, no traceback), 1 anything else,
130 interrupted. ``AUTOML_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from automl._errors import first_line
from automl._version import __version__

__all__ = ["main"]

# Each module has `register(subparsers)`, adding its commands with `set_defaults(func=...)`.
_COMMAND_MODULES = (
    "automl.cli._search",
    "automl.cli._results",
    "automl.cli._show",
    "automl.cli._final",
)
_OPTIONAL_COMMAND_MODULES = (
    "automl.cli._export",
    "automl.cli._dashboard",
    "automl.cli._bench",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="automl",
        description="Neural architecture search: propose, train, store, look at the results.",
        epilog="Run `automl search` with no arguments for a two-minute demo on the CPU.",
    )
    parser.add_argument("--version", action="version", version=f"automl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for name in _OPTIONAL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(sub)
    return parser


def _bad_input() -> tuple[type[BaseException], ...]:
    from automl._errors import UsageError
    from controller import UnknownStrategy
    from search_spaces import InvalidArchitecture, SpaceError
    from store import ConfigError, NotFound, SchemaError, SearchBusy

    found: list[type[BaseException]] = [
        UsageError,
        ConfigError,
        UnknownStrategy,
        SpaceError,
        InvalidArchitecture,
        NotFound,
        SchemaError,
        SearchBusy,
    ]
    try:
        from evaluators import DatasetError

        found.append(DatasetError)
    except ImportError:  # pragma: no cover - evaluators always has it
        pass
    return tuple(found)


def _line(e: BaseException) -> str:
    """The error as one line a terminal shows as it is (control characters made visible)."""
    from automl.cli._render import terminal_safe

    return terminal_safe(first_line(e), markup=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``automl`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    from automl._loop import SearchFailed
    from store import StorageError

    bad_input = _bad_input()
    try:
        return int(args.func(args) or 0)
    except bad_input as e:
        sys.stderr.write(f"automl: error: {_line(e)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("automl: interrupted\n")
        return 130
    except BrokenPipeError:  # the reader went away (`automl show --json | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        sys.stderr.write("automl: error: standard output was closed before everything was written\n")
        return 2
    except (SearchFailed, StorageError) as e:
        sys.stderr.write(f"automl: {_line(e)}\n")
        return 1
    except Exception as e:
        if os.environ.get("AUTOML_DEBUG"):
            raise
        sys.stderr.write(
            f"automl: unexpected error: {type(e).__name__}: {_line(e)} (AUTOML_DEBUG=1 shows the traceback)\n"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
