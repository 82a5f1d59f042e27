"""From what a user typed to live objects: the store, the space, the evaluator, the objectives.

Every error here is a :class:`UsageError` naming what was wrong, raised before anything is
stored or printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import search_spaces
from automl._errors import UsageError
from evaluators import Evaluator, as_evaluator
from search_spaces import InvalidArchitecture, Space, SpaceError, import_file_attribute
from store import ConfigError, SearchConfig, Store

__all__ = [
    "config",
    "default_storage",
    "discover",
    "evaluator_from_spec",
    "load_from_file",
    "objectives_from_text",
    "open_store",
    "resolve_space",
    "space_spec",
]

# Metrics that are better low: a bare name of one of these must say its direction.
_LOWER_IS_BETTER = ("loss", "error", "err", "latency", "latency_ms", "params", "flops", "cost", "train_seconds")


def default_storage() -> str:
    """``$AUTOML_STORAGE`` or a SQLite file in the current directory."""
    return os.environ.get("AUTOML_STORAGE") or "sqlite:///automl.db"


def open_store(url: str | None = None, *, read_only: bool = False) -> Store:
    """Open the store at ``url``; a URL that is not one becomes a :class:`UsageError`."""
    url = url or default_storage()
    try:
        return Store(url, read_only=read_only)
    except ValueError as e:
        raise UsageError(str(e)) from e


def config(**fields: Any) -> SearchConfig:
    """A :class:`SearchConfig`; a field that cannot be right is a :class:`UsageError`."""
    try:
        return SearchConfig(**fields)
    except ConfigError as e:
        raise UsageError(str(e)) from e


def space_spec(text: str) -> str:
    """A built-in name as it is; ``path/file.py:fn`` with the path made absolute, so that the
    stored search can be found again (export, resume) from any directory."""
    path, sep, attr = text.rpartition(":")
    if sep and (path.endswith(".py") or "/" in path):
        return f"{Path(path).resolve()}:{attr}"
    return text


def resolve_space(space: str | Space) -> tuple[Space, str]:
    """The space and the text stored to find it again (built-in name or absolute file spec)."""
    if isinstance(space, Space):
        return space, space.name
    if not isinstance(space, str):
        raise UsageError(f"space must be a built-in name, 'path/file.py:function' or a Space, got {space!r}")
    spec = space_spec(space)
    return search_spaces.load(spec), spec


def discover(space: Space) -> None:
    """List the space's decisions now, so a broken space fails before anything is stored."""
    try:
        decisions = space.decisions
    except (SpaceError, InvalidArchitecture):
        raise
    except Exception as e:
        raise SpaceError(f"space {space.name!r} raised {type(e).__name__}: {e}") from e
    if not decisions:
        raise SpaceError(f"space {space.name!r} asks no decision: there is nothing to search")


def objectives_from_text(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"accuracy"``, ``"-loss"`` (minimize), ``"+x"`` (maximize), ``"a,-b"`` or a list of them.

    A bare name that is better low (loss, error, latency, params, ...) must say its direction:
    maximizing a loss silently is never what was meant.
    """
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"objective {item!r} is not a metric name (prefix '-' to minimize)")
        name = item.lstrip("+-")
        if item == name and (name in _LOWER_IS_BETTER or name.endswith(("_loss", "_error"))):
            raise UsageError(f"objective {name!r} is better low: give '-{name}' to minimize it (or '+{name}')")
        out.append(item[1:] if item.startswith("+") else item)
    return tuple(out)


def load_from_file(spec: str, what: str) -> Any:
    """The object ``function`` of ``path/to/file.py:function``; errors name the problem."""
    try:
        obj, _, _ = import_file_attribute(spec, what, "_automl_user_eval_")
    except SpaceError as e:
        raise UsageError(str(e)) from e
    return obj


def evaluator_from_spec(
    spec: str,
    space: Space,
    *,
    dataset: str | None = "digits",
    epochs: int | None = None,
    seed: int | None = None,
    weights_dir: str | None = None,
    recipe: Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
) -> Evaluator:
    """``train`` (train on ``dataset``), ``shared[:POOL_DIR]`` (weight sharing on ``dataset``),
    ``table`` / ``table:PATH`` (NAS-Bench-201 lookup) or ``path/file.py:function``. A dataset
    name or ``.npz`` path alone also means "train on it".

    ``recipe`` holds :class:`evaluators.TrainConfig` fields (lr, optimizer, schedule, ...) and
    ``data_options`` what :func:`evaluators.datasets.load` takes (target, image_size).
    """
    if spec == "table" or spec.startswith("table:"):
        from evaluators import TabularEvaluator

        path = spec.partition(":")[2] or None
        try:
            return TabularEvaluator.nb201(path)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(str(e)) from e
    if spec == "shared" or spec.startswith("shared:"):
        return _shared_evaluator(space, dataset or "digits", spec.partition(":")[2] or None, seed, recipe)
    if ".py:" in spec:
        evaluator = load_from_file(spec, "evaluator")
        if isinstance(evaluator, Space):
            raise UsageError(f"evaluator {spec!r} is a search space, not an evaluator (a function arch -> metrics)")
        try:
            return as_evaluator(evaluator)
        except TypeError as e:
            raise UsageError(f"evaluator {spec!r}: {e}") from e
    return _training_evaluator(space, (dataset or "digits") if spec == "train" else spec, epochs=epochs, seed=seed,
                               weights_dir=weights_dir, recipe=recipe, data_options=data_options)  # fmt: skip


def _shared_evaluator(
    space: Space, dataset: str, pool_dir: str | None, seed: int | None, recipe: Mapping[str, Any] | None
) -> Evaluator:
    """Children trained a few steps on weights shared by place (``evaluators.SharedWeightsEvaluator``)."""
    import dataclasses

    from evaluators import DatasetError, SharedConfig, SharedWeightsEvaluator

    known = {f.name for f in dataclasses.fields(SharedConfig)}
    fields = {k: v for k, v in dict(recipe or {}).items() if k in known}
    try:
        config = SharedConfig(**fields, seed=seed or 0, pool_dir=str(Path(pool_dir).resolve()) if pool_dir else None)
        return SharedWeightsEvaluator(space, dataset, config)
    except (TypeError, ValueError, DatasetError) as e:
        raise UsageError(str(e)) from e


def _training_evaluator(
    space: Space,
    dataset: str,
    *,
    epochs: int | None,
    seed: int | None,
    weights_dir: str | None,
    recipe: Mapping[str, Any] | None,
    data_options: Mapping[str, Any] | None,
) -> Evaluator:
    from evaluators import DatasetError, TrainConfig, TrainingEvaluator

    fields = {**dict(recipe or {}), "epochs": epochs, "seed": seed, "weights_dir": weights_dir}
    try:
        train_config = TrainConfig(**{k: v for k, v in fields.items() if v is not None})
    except (TypeError, ValueError) as e:  # an unknown field or a bad value: the user's input
        raise UsageError(str(e).replace("__init__() got an ", "")) from e
    try:
        return TrainingEvaluator(space, dataset, config=train_config, data_options=data_options)
    except DatasetError as e:
        raise UsageError(str(e)) from e
