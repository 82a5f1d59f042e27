"""`automl export`: the demo's best trial (cnn on digits, trained, weights kept) as standalone models.

Each export is checked against the model rebuilt from the space with the kept weights: same
outputs (atol 1e-5) from TorchScript (``torch.jit.load``, also in a process that cannot import
automl), ONNX (onnxruntime when installed, else onnx's reference evaluator) and ``pt``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import automl
import search_spaces
from automl.results._export import export_trial
from evaluators import TrainConfig, TrainingEvaluator
from store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A demo-style search: cnn on digits, 1 epoch per child, trained weights kept."""
    root = tmp_path_factory.mktemp("export")
    url = f"sqlite:///{root / 'automl.db'}"
    config = TrainConfig(epochs=1, threads=1, weights_dir=str(root / "weights"))
    evaluator = TrainingEvaluator("cnn", "digits", config)
    automl.search("cnn", evaluator, strategy="random", trials=2, storage=url, name="demo", seed=3, progress=False)
    return url, root


def _best(url: str):  # type: ignore[no-untyped-def]
    with Store(url) as store:
        search = store.get_search("demo")
        number = int(automl.leaderboard("demo", storage=url, k=1)["number"][0])
        return search, store.get_trial(search.id, number)


def _reference(search, trial) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    """The model built from the space, with the weights the evaluator kept."""
    context = search.config.evaluator_info["context"]
    model = search_spaces.load("cnn").bind(
        input_shape=tuple(context["input_shape"]), num_classes=context["num_classes"]
    )
    net = model.build(trial.arch).eval()
    net.load_state_dict(torch.load(trial.metrics["weights"], weights_only=True))
    return net


def _inputs(n: int = 5) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_trained_weights_are_kept_and_found(demo: tuple[str, Path]) -> None:
    search, trial = _best(demo[0])
    assert Path(trial.metrics["weights"]).is_file() and trial.metrics["weights"].endswith(f"{trial.arch_key}.pt")
    assert search.config.evaluator_info["config"]["weights_dir"] == str(demo[1] / "weights")


def test_torchscript_matches_and_loads_without_automl(demo: tuple[str, Path], tmp_path: Path) -> None:
    search, trial = _best(demo[0])
    out = tmp_path / "best.ts"
    done = export_trial(search, trial, "torchscript", out)
    assert done.trained and "trained weights" in done.note
    x = _inputs()
    with torch.no_grad():
        expected = _reference(search, trial)(x)
        got = torch.jit.load(str(out))(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    extra = {"automl.json": ""}
    torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["automl.json"])["arch"] == dict(trial.arch)
    # A fresh interpreter in which importing any of our packages fails.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('automl', 'search_spaces', 'evaluators', 'store', 'controller'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import torch\n"
        f"m = torch.jit.load({str(out)!r})\n"
        "print(m(torch.zeros(3, 1, 8, 8)).shape)\n"
    )
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "torch.Size([3, 10])" in r.stdout


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:  # onnx's own reference implementation: slower, same semantics
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(str(path)).run(None, {"input": x})[0]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_onnx_matches_the_model(demo: tuple[str, Path], tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    search, trial = _best(demo[0])
    out = tmp_path / "best.onnx"
    export_trial(search, trial, "onnx", out)
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["automl.arch"]) == dict(trial.arch)
    x = _inputs(7)  # another batch size than the export's example: the batch axis is dynamic
    with torch.no_grad():
        expected = _reference(search, trial)(x).numpy()
    np.testing.assert_allclose(_run_onnx(out, x.numpy()), expected, atol=1e-5, rtol=0)


def test_pt_rebuilds_the_module(demo: tuple[str, Path], tmp_path: Path) -> None:
    search, trial = _best(demo[0])
    out = tmp_path / "best.pt"
    automl.export("demo", trial.number, out, format="pt", storage=demo[0])
    x = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(automl.load_pt(out)(x), _reference(search, trial)(x), atol=1e-5, rtol=0)
    blob = torch.load(out, weights_only=False)
    assert blob["arch"] == dict(trial.arch) and blob["trained"] and blob["space"] == "cnn"


def test_without_kept_weights_the_model_is_initialized_and_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    automl.search(
        "cnn", lambda arch: {"accuracy": 0.5}, strategy="random", trials=1, storage=url, name="f", progress=False
    )
    with Store(url) as store:
        search = store.get_search("f")
        trial = store.get_trial(search.id, 0)
    done = export_trial(search, trial, "torchscript", tmp_path / "m.ts")
    assert not done.trained and "freshly initialized" in done.note
    y = torch.jit.load(str(done.path))(torch.zeros(2, 1, 8, 8))  # the space's default shape: digits
    assert y.shape == (2, 10) and torch.isfinite(y).all()
