"""A stored trial as a standalone model: PyTorch (``pt``), TorchScript, ONNX, or its decisions as JSON.

The model is rebuilt from the search's space (``search.space``: a built-in name or
``path/file.py:fn``) bound to the data's shape (``input_shape``, ``num_classes`` from the stored
evaluator description, else from the stored dataset, else the space's defaults). Its weights are
the trained ones when the evaluator kept them (``TrainConfig(weights_dir=...)`` stores the path as
the trial's ``weights`` metric), else freshly initialized (seeded), which :class:`Exported` says.

Formats:

- ``torchscript``: ``torch.jit.trace`` of the model in eval mode, saved with ``torch.jit.save``;
  loads with ``torch.jit.load(path)`` alone, no automl or search-space code. Any batch size.
  The decisions travel in the archive as the extra file ``automl.json``.
- ``onnx``: ``torch.onnx.export`` (opset 18, dynamic batch axis; input ``input``, output
  ``logits``); runs in onnxruntime or any ONNX runtime. The decisions are in the model's
  ``metadata_props`` (``automl.arch`` ...). Needs the ``onnx`` and ``onnxscript`` packages.
- ``pt``: ``torch.save`` of a dict ``{"format": "automl.pt/1", "space", "context", "arch",
  "state_dict", "trained", "search", "trial", "metrics"}``: weights plus what rebuilds the module;
  :func:`load_pt` rebuilds it (this needs the space's code, e.g. automl installed). A state_dict
  is kept rather than a pickled module, which would need the same classes at the same import paths.
- ``json``: ``{"search", "trial", "space", "context", "objective", "value", "arch", "arch_key",
  "metrics"}``; ``arch`` is the decisions (``automl train SPACE --arch "$(jq -c .arch f.json)"``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl._errors import UsageError, install_hint
from automl._files import atomic_write
from store import SearchRecord, TrialRecord

__all__ = ["FORMATS", "Exported", "build_model", "export", "export_trial", "load_pt", "model_context"]

FORMATS = ("pt", "torchscript", "onnx", "json")
_PT_FORMAT = "automl.pt/1"
_INIT_SEED = 0


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    trained: bool  # False: freshly initialized weights (see ``note``)
    note: str  # one line for people: where the weights came from


def model_context(search: SearchRecord) -> tuple[dict[str, Any], str]:
    """``{"input_shape": [...], "num_classes": n}`` of the search's data, and where it came from."""
    if search.config.context:
        return search.config.context, "evaluator"
    dataset = search.config.data
    if isinstance(dataset, str) and dataset:
        from evaluators import DatasetError, datasets

        try:
            data = datasets.load(dataset)
        except DatasetError:
            pass
        else:
            return {"input_shape": list(data.input_shape), "num_classes": data.num_classes}, f"dataset {dataset}"
    return {}, "the space's defaults"


def build_model(
    search: SearchRecord, trial: TrialRecord, weights: str | None = None
) -> tuple[Any, dict[str, Any], bool, str]:
    """(model in eval mode, context, trained?, note) of a stored trial; ``weights`` (a final
    training's) instead of the search's."""
    import torch

    import search_spaces

    space = search_spaces.load(search.space)  # SpaceError (a missing user file) -> exit 2 in the CLI
    context, source = model_context(search)
    bound = space.bind(**{k: tuple(v) if k == "input_shape" else v for k, v in context.items()})
    context = {k: list(v) if isinstance(v, tuple) else v for k, v in bound.context.items()}  # JSON-able
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_INIT_SEED)
        model = bound.build(trial.arch)
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"space {search.space!r} builds a {type(model).__name__}, not a torch.nn.Module")
    model.eval()
    shape = context.get("input_shape")
    if shape:  # initializes lazy modules (LazyLinear ...) before weights are loaded or exported
        with torch.no_grad():
            model(torch.zeros(1, *shape))
    weights = weights or trial.metrics.get("weights")
    if isinstance(weights, str) and Path(weights).is_file():
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model, context, True, f"trained weights from {weights}"
    why = "the evaluator kept no weights" if not weights else f"weights file {weights} is gone"
    note = (
        f"freshly initialized weights (seed {_INIT_SEED}): {why}; train with TrainConfig(weights_dir=...) to keep them"
    )
    return model, context, False, f"{note} (input shape from {source})"


def _check_output(path: Path) -> Path:
    """Refuse, before any work, what :func:`atomic_write` would refuse after it."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.is_dir():
        raise UsageError(f"-o {str(path)!r} is a directory; give a file name")
    if target.exists() and not target.is_file():
        raise UsageError(f"refusing to write {str(path)!r}: it is not a regular file")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {str(path)!r}: permission denied")
    return path


def _meta(search: SearchRecord, trial: TrialRecord, context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "search": search.name,
        "trial": trial.number,
        "space": search.space,
        "context": dict(context),
        "objective": search.objectives[0],
        "value": trial.value,
        "arch": dict(trial.arch),
        "arch_key": trial.arch_key,
    }


def export_trial(
    search: SearchRecord, trial: TrialRecord, fmt: str, path: str | os.PathLike[str], *, weights: str | None = None
) -> Exported:
    """Write trial ``trial`` of ``search`` to ``path`` in format ``fmt`` (see the module doc).

    Raises :class:`UsageError` for an unknown format or a path that cannot be written.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = _check_output(Path(path))
    if fmt == "json":
        payload = {**_meta(search, trial, model_context(search)[0]), "metrics": dict(trial.metrics)}
        atomic_write(out, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n"))
        return Exported(out, fmt, False, "decisions only")
    import torch

    model, context, trained, note = build_model(search, trial, weights)
    meta = _meta(search, trial, context)
    shape = context.get("input_shape")
    if fmt in ("torchscript", "onnx") and not shape:
        raise UsageError(f"format {fmt} needs the input shape, and search {search.name!r} does not record it")
    if fmt == "pt":
        blob = {"format": _PT_FORMAT, **meta, "state_dict": model.state_dict(), "trained": trained}
        blob["metrics"] = dict(trial.metrics)
        atomic_write(out, lambda tmp: torch.save(blob, tmp))
    elif fmt == "torchscript":
        example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
        files = {"automl.json": json.dumps(meta)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch 2.13 marks TorchScript deprecated; it still loads everywhere
            traced = torch.jit.trace(model, example)
            atomic_write(out, lambda tmp: torch.jit.save(traced, str(tmp), _extra_files=files))
    else:
        _export_onnx(model, shape, meta, out)
    return Exported(out, fmt, trained, note)


def _export_onnx(model: Any, shape: list[int], meta: Mapping[str, Any], out: Path) -> None:
    import torch

    try:
        import onnx
        import onnxscript  # noqa: F401 - the exporter needs it
    except ImportError as e:
        raise UsageError(f"format onnx needs the onnx and onnxscript packages ({e}); {install_hint('export')}") from e
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))

    def write(tmp: Path) -> None:
        batch = torch.export.Dim("batch", min=1)
        # The exporter logs a line per torchvision op it cannot register; torchvision is not needed.
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=({0: batch},),
                opset_version=18,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        proto = onnx.load(str(tmp))
        for key in ("search", "trial", "space", "arch", "context"):
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"automl.{key}", json.dumps(meta[key])
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))

    atomic_write(out, write)


def export(
    search: str, number: int, path: str | os.PathLike[str], *, format: str = "torchscript", storage: str | None = None
) -> Exported:
    """Write trial ``number`` of search ``search`` to ``path`` (``format``: pt, torchscript, onnx
    or json; see :mod:`automl.results._export`). The returned record says whether the weights are trained.

    >>> automl.export("demo", 17, "best.ts", format="torchscript")   # doctest: +SKIP
    >>> torch.jit.load("best.ts")(x)                                   # doctest: +SKIP
    """
    from automl._resolve import open_store

    store = open_store(storage, read_only=True)
    try:
        record = store.get_search(search)
        trial = store.get_trial(record.id, number)
    finally:
        store.close()
    return export_trial(record, trial, format, path)


def load_pt(path: str | os.PathLike[str]) -> Any:
    """The ``torch.nn.Module`` (eval mode) of a ``pt`` export: rebuilt from its space, weights loaded."""
    import torch

    import search_spaces

    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("format") != _PT_FORMAT:
        raise ValueError(f"{str(path)!r} is not an automl pt export (format {_PT_FORMAT})")
    context = dict(blob["context"])
    if "input_shape" in context:
        context["input_shape"] = tuple(context["input_shape"])
    model = search_spaces.load(blob["space"]).build(blob["arch"], **context)
    model.eval()
    if context.get("input_shape"):
        with torch.no_grad():
            model(torch.zeros(1, *context["input_shape"]))
    model.load_state_dict(blob["state_dict"])
    return model
