"""The ``local`` executor whatever the driver's main module is: standard input, ``python -c``, a script.

Spawn runs the driver's main module again in each worker; a program read from standard input has
no file to run (``<stdin>``), and its evaluator exists nowhere but in that program.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT

PROGRAM = textwrap.dedent(
    """
    import sys

    import automl
    from store import Store, TrialStatus

    SCALE = 2.0  # a global of the main module, which workers see only by value


    def evaluate(arch):
        ops = list(arch.values())
        return {"accuracy": SCALE * ops.count("nor_conv_3x3"), "pid": __import__("os").getpid()}


    class Evaluator:
        def __call__(self, arch):
            return evaluate(arch)


    url = sys.argv[1]
    automl.search(
        "nb201", Evaluator(), strategy="random", trials=6, storage=url, name="main", executor="local",
        workers=2, seed=0, progress=False,
    )
    with Store(url) as store:
        trials = store.trials(store.get_search("main").id)
    done = [t for t in trials if t.status is TrialStatus.COMPLETED]
    assert all(t.value == SCALE * list(t.arch.values()).count("nor_conv_3x3") for t in done)
    print(len(done), len(trials), len({t.metrics["pid"] for t in done}))
    """
)


def _run(args: list[str], tmp_path: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    return subprocess.run(
        [sys.executable, *args, url], input=stdin, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip


@pytest.mark.parametrize("how", ["stdin", "-c", "script"])
def test_local_runs_an_evaluator_defined_in_the_main_module(how: str, tmp_path: Path) -> None:
    if how == "stdin":
        proc = _run(["-"], tmp_path, stdin=PROGRAM)
    elif how == "-c":
        proc = _run(["-c", PROGRAM], tmp_path)
    else:  # a script is run again in each worker, so it keeps its work under the usual guard
        script = tmp_path / "user_script.py"
        script.write_text("if __name__ == '__main__':\n" + textwrap.indent(PROGRAM, "    "))
        proc = _run([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["6", "6", "2"]  # six completed trials, no failure, on two workers
