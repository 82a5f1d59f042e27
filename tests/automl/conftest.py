"""Fixtures for the search loop, API and CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from automl.cli import main

ROOT = Path(__file__).resolve().parents[2]

# A user evaluator: deterministic, fast, no training. Score = how many 3x3 convs, minus nones.
EVALUATOR_CODE = textwrap.dedent(
    """
    import os, time

    def score(arch):
        time.sleep(float(os.environ.get("AUTOML_TEST_SLEEP", "0")))
        ops = list(arch.values())
        return {"accuracy": ops.count("nor_conv_3x3") - 0.5 * ops.count("none"), "cost": 1.0}

    def broken(arch):
        raise RuntimeError("evaluator exploded")
    """
)


@pytest.fixture
def user_files(tmp_path: Path) -> Path:
    (tmp_path / "user_eval.py").write_text(EVALUATOR_CODE)
    return tmp_path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'automl.db'}"


def search_args(user_files: Path, url: str, *extra: str) -> list[str]:
    """``automl search`` over nb201 with the fast user evaluator of ``EVALUATOR_CODE``."""
    return ["search", "nb201", "--evaluator", f"{user_files}/user_eval.py:score", "--storage", url, "--no-progress",
            *extra]  # fmt: skip


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300):
    """Run the ``automl`` command in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "automl.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd or ROOT,
        timeout=timeout,
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """``automl ARGS`` in this process: exit code, stdout and stderr."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run
